//! `SessionStore`: cookie sessions (secure tokens, idle and absolute expiry, rotation, per-user index,
//! sign out everywhere), one round trip per operation.

use std::rc::Rc;

use js_sys::{Promise, Reflect};
use redge::client::FetchTransport;
use redge::session::{Revoke, SessionCache, SessionConfig, SessionStore as Store};
use wasm_bindgen::prelude::*;

use crate::client::{Client, Inner as RedisClient};
use crate::convert::{self, JsResult, invalid, type_name};
use crate::options::{SessionOptions, SignInOptions, UpdateOptions};
use crate::shapes;

/// Sessions kept in Redis, identified by an unguessable token in a `__Host-` cookie.
///
/// A malformed or unknown token is "no session" (`null`), decided without a round trip when
/// malformed. When Redis cannot be reached the call rejects with an `UnavailableError`: answer 503 and
/// leave the cookie alone, so a Redis restart signs nobody out.
#[wasm_bindgen]
pub struct SessionStore {
    pub(crate) client: Rc<RedisClient>,
    pub(crate) setup: Rc<Setup>,
}

/// What a `SessionStore` keeps across calls: its configuration, and the sessions it read recently
/// (`cacheMs`) when that cache is on.
pub(crate) struct Setup {
    config: SessionConfig,
    cache: Option<Rc<SessionCache>>,
}

impl Setup {
    /// The library's store for one call, on `client`, serving from the cache when there is one.
    pub(crate) fn open<'c>(&self, client: &'c RedisClient) -> Store<'c, FetchTransport> {
        let store = Store::new(client, self.config.clone());
        match &self.cache {
            Some(cache) => store.with_cache(Rc::clone(cache)),
            None => store,
        }
    }
}

#[wasm_bindgen]
impl SessionStore {
    /// A store with `{ idleMs, absoluteMs, prefix, cookieName, insecureDev, maxDataBytes }` (all
    /// optional: 30 minutes idle, 12 hours absolute, `__Host-redge_session`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        client: &Client,
        #[wasm_bindgen(unchecked_optional_param_type = "SessionStoreOptions")] options: JsValue,
    ) -> JsResult<SessionStore> {
        let options = convert::options::<SessionOptions>(options, "SessionStore options", true)?;
        let cache = options
            .cache()
            .map_err(|e| invalid("SessionStore options", e))?
            .map(|(max_age_ms, max_entries)| SessionCache::new(max_age_ms, max_entries));
        let config = options
            .config()
            .map_err(|e| invalid("SessionStore options", e))?;
        Ok(SessionStore {
            client: Rc::clone(&client.inner),
            setup: Rc::new(Setup { config, cache }),
        })
    }

    /// Signs `user` in: a new session holding `data` (any JSON value), and the `Set-Cookie` value to
    /// send. With `replacing` (the current token), that session ends in the same step, and if it is the
    /// same user's its data is kept (rotation on sign-in).
    #[wasm_bindgen(js_name = signIn, unchecked_return_type = "Promise<IssuedSession>")]
    pub fn sign_in(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] user: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SignInOptions")] options: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let user = convert::string(&user, "signIn: user")?;
            // `data` is any JSON value, read on its own; the rest is a plain options object.
            let (data, rest) = if options.is_object() && !options.is_function() {
                let rest = js_sys::Object::assign(&js_sys::Object::new(), options.unchecked_ref());
                let data = Reflect::get(&rest, &JsValue::from_str("data")).unwrap_or_default();
                let _ = Reflect::delete_property(&rest, &JsValue::from_str("data"));
                (data, rest.into())
            } else {
                (JsValue::UNDEFINED, options)
            };
            let o: SignInOptions = convert::options(rest, "signIn options", true)?;
            let data = if data.is_undefined() {
                serde_json::json!({})
            } else {
                convert::json(&data, "signIn options: data")?
            };
            let store = setup.open(&client);
            let issued = store
                .sign_in(&user, &data, o.replacing.as_deref())
                .await
                .map_err(|e| convert::redge_error(&e))?;
            let cookie = store.set_cookie(&issued.token, &issued.session);
            convert::to_value(&shapes::issued(&issued, cookie))
        })
    }

    /// The session of `token` (from the cookie; `null` and `undefined` mean none), refreshed when
    /// due; `null` when there is no valid session. When `refreshed`, send `setCookie` again.
    #[wasm_bindgen(unchecked_return_type = "Promise<LoadedSession | null>")]
    pub fn load(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] token: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let Some(token) = convert::optional_string(&token, "load: token")? else {
                return Ok(JsValue::NULL);
            };
            let store = setup.open(&client);
            let loaded = store
                .load(&token)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            match loaded {
                None => Ok(JsValue::NULL),
                Some(l) => {
                    let cookie = store.refresh_cookie(&token, &l.session);
                    convert::to_value(&shapes::loaded(&l, cookie))
                }
            }
        })
    }

    /// Replaces the session's data. With `expectedVersion` (the `version` you read), only if nobody
    /// wrote in between (`status: "conflict"` otherwise); without, the last writer wins.
    #[wasm_bindgen(unchecked_return_type = "Promise<UpdateResult>")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] token: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UpdateOptions")] options: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let token = convert::optional_string(&token, "update: token")?.unwrap_or_default();
            let data = convert::json(&data, "update: data")?;
            let o: UpdateOptions = convert::options(options, "update options", true)?;
            let store = setup.open(&client);
            let update = store
                .update(&token, &data, o.expected_version)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            convert::to_value(&shapes::update(&update))
        })
    }

    /// Adds `by` (default 1, a whole number) to the session's counter `name` and resolves with the new
    /// value; `null` when there is no valid session. Concurrent requests add up.
    #[wasm_bindgen(unchecked_return_type = "Promise<number | null>")]
    pub fn incr(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] token: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] by: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let token = convert::optional_string(&token, "incr: token")?.unwrap_or_default();
            let name = convert::string(&name, "incr: name")?;
            let by = if by.is_undefined() {
                1
            } else {
                whole_number(&by, "incr: by")?
            };
            let store = setup.open(&client);
            let value = store
                .incr(&token, &name, by)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            Ok(value.map_or(JsValue::NULL, |n| JsValue::from_f64(n as f64)))
        })
    }

    /// The live sessions of the token's user, oldest first; `null` when there is no valid session.
    #[wasm_bindgen(unchecked_return_type = "Promise<SessionSummary[] | null>")]
    pub fn list(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] token: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let token = convert::optional_string(&token, "list: token")?.unwrap_or_default();
            let store = setup.open(&client);
            match store
                .list(&token)
                .await
                .map_err(|e| convert::redge_error(&e))?
            {
                None => Ok(JsValue::NULL),
                Some(list) => convert::to_value(&shapes::summaries(&list)),
            }
        })
    }

    /// Ends sessions of the token's user: `"current"` (sign out, the default), `"all"` (sign out
    /// everywhere) or `{ id }` (another of their sessions, by the `id` from `list`).
    #[wasm_bindgen(unchecked_return_type = "Promise<RevokeResult>")]
    pub fn revoke(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] token: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "\"current\" | \"all\" | { id: string }")]
        which: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let token = convert::optional_string(&token, "revoke: token")?.unwrap_or_default();
            let target = revoke_target(&which)?;
            let scope = match &target {
                Target::Current => Revoke::Current,
                Target::All => Revoke::All,
                Target::One(id) => Revoke::One(id),
            };
            let store = setup.open(&client);
            let revoked = store
                .revoke(&token, scope)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            convert::to_value(&shapes::revoked(revoked))
        })
    }

    /// Gives the session a new token (after a privilege change), keeping everything else; the old
    /// token stops working at once. `null` when there is no valid session.
    #[wasm_bindgen(unchecked_return_type = "Promise<IssuedSession | null>")]
    pub fn rotate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] token: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let token = convert::optional_string(&token, "rotate: token")?.unwrap_or_default();
            let store = setup.open(&client);
            match store
                .rotate(&token)
                .await
                .map_err(|e| convert::redge_error(&e))?
            {
                None => Ok(JsValue::NULL),
                Some(issued) => {
                    let cookie = store.set_cookie(&issued.token, &issued.session);
                    convert::to_value(&shapes::issued(&issued, cookie))
                }
            }
        })
    }

    /// Ends every session of `user` without a token (after a password change or an account deletion)
    /// and resolves with how many ended.
    #[wasm_bindgen(js_name = revokeUser, unchecked_return_type = "Promise<number>")]
    pub fn revoke_user(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] user: JsValue,
    ) -> Promise {
        let (client, setup) = self.parts();
        convert::promise(async move {
            let user = convert::string(&user, "revokeUser: user")?;
            let store = setup.open(&client);
            let n = store
                .revoke_user(&user)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// The session token in a `Cookie` request header (`request.headers.get("cookie")`), or `null`.
    #[wasm_bindgen(js_name = readCookie)]
    pub fn read_cookie(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] header: JsValue,
    ) -> JsResult<Option<String>> {
        let header = convert::optional_string(&header, "readCookie: header")?;
        Ok(header.and_then(|h| self.setup.config.cookie.read(&h).map(str::to_owned)))
    }

    /// The `Set-Cookie` value that removes the session cookie (after signing out).
    #[wasm_bindgen(js_name = clearCookie)]
    pub fn clear_cookie(&self) -> String {
        self.setup.config.cookie.clear_cookie()
    }

    /// The cookie's full name (`__Host-redge_session`, or `redge_session` with `insecureDev`).
    #[wasm_bindgen(getter, js_name = cookieName)]
    pub fn cookie_name(&self) -> String {
        self.setup.config.cookie.cookie_name()
    }
}

impl SessionStore {
    fn parts(&self) -> (Rc<RedisClient>, Rc<Setup>) {
        (Rc::clone(&self.client), Rc::clone(&self.setup))
    }
}

enum Target {
    Current,
    All,
    One(String),
}

fn revoke_target(which: &JsValue) -> JsResult<Target> {
    if which.is_undefined() || which.is_null() {
        return Ok(Target::Current);
    }
    match which.as_string().as_deref() {
        Some("current") => return Ok(Target::Current),
        Some("all") => return Ok(Target::All),
        _ => {}
    }
    if which.is_object() {
        let id = Reflect::get(which, &JsValue::from_str("id")).unwrap_or_default();
        if let Some(id) = id.as_string() {
            return Ok(Target::One(id));
        }
    }
    Err(invalid(
        "revoke: which",
        format!(
            "expected \"current\", \"all\" or {{ id: string }}, got {}",
            type_name(which)
        ),
    ))
}

/// A whole number that fits a JavaScript number exactly.
fn whole_number(value: &JsValue, what: &str) -> JsResult<i64> {
    const MAX: f64 = 9_007_199_254_740_991.0;
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && n.abs() <= MAX => Ok(n as i64),
        _ => Err(invalid(
            what,
            format!(
                "expected a whole number between -(2^53 - 1) and 2^53 - 1, got {}",
                type_name(value)
            ),
        )),
    }
}

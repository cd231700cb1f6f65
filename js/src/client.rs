//! `Client`: the HTTP Redis client, and raw commands for what the capabilities do not cover.

use std::rc::Rc;

use js_sys::{Array, Promise, Reflect, Uint8Array};
use redge::client::{Cmd, FetchTransport, Reply, TOKEN_VAR, URL_VAR, cmd};
use wasm_bindgen::prelude::*;

use crate::convert::{self, JsResult, invalid, type_name};
use crate::error::{Described, to_js};
use crate::options::{ClientOptions, ClientTuning};

/// The redge client the capabilities share.
pub(crate) type Inner = redge::client::Client<FetchTransport>;

/// The largest integer JavaScript numbers hold exactly; larger Redis integers come back as `BigInt`.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A client for one HTTP Redis service: Upstash, or redge-gateway in front of your own redis-server.
///
/// Create it once per isolate (at module scope, or lazily on the first request) and share it: the
/// rate limiter, the session store and the cache all take it. Every call has one deadline, retries
/// included; only read-only commands are retried.
#[wasm_bindgen]
pub struct Client {
    pub(crate) inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Client {
    /// A client for `url` with `token`. Throws an `InvalidArgumentError` for a missing or mistyped
    /// option and a `ConfigError` for a URL that is not absolute `http(s)` or an empty token.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> JsResult<Client> {
        let o: ClientOptions = convert::options(options, "Client options", false)?;
        build(&o.url, &o.token, &o.tuning())
    }

    /// A client from an environment object (a Worker's `env`, or `process.env`) holding
    /// `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN`, the names the official SDK uses; its
    /// other properties (a Worker's other bindings) are not read. Throws a `ConfigError` naming a
    /// variable that is missing, empty or not a string.
    #[wasm_bindgen(js_name = fromEnv)]
    pub fn from_env(
        #[wasm_bindgen(unchecked_param_type = "RedisEnv")] env: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ClientTuning")] options: JsValue,
    ) -> JsResult<Client> {
        if !env.is_object() {
            return Err(invalid(
                "Client.fromEnv",
                format!(
                    "expected the environment object (a Worker's env or process.env), got {}",
                    type_name(&env)
                ),
            ));
        }
        let tuning: ClientTuning = convert::options(options, "Client.fromEnv options", true)?;
        let var = |name: &str| -> JsResult<String> {
            let value = Reflect::get(&env, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
            match value.as_string() {
                Some(s) if !s.trim().is_empty() => Ok(s),
                _ => Err(to_js(&Described::config(format!(
                    "{name} is not set: add it as a secret (`wrangler secret put {name}`), in .dev.vars \
                     for `wrangler dev`, or in the process environment"
                )))),
            }
        };
        build(&var(URL_VAR)?, &var(TOKEN_VAR)?, &tuning)
    }

    /// Sends one command, such as `["SET", "greeting", "hello", "EX", 60]`, and resolves with its
    /// reply: strings (bytes that are not UTF-8 as a `Uint8Array`), numbers (a `BigInt` only beyond
    /// 2^53), `null`, or arrays of these. Arguments are strings, numbers, booleans, bigints or
    /// `Uint8Array`s. A Redis error rejects with a `RedisError` carrying Redis's text.
    #[wasm_bindgen(unchecked_return_type = "Promise<RedisReply>")]
    pub fn command(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RedisArgument[]")] args: JsValue,
    ) -> Promise {
        let client = Rc::clone(&self.inner);
        convert::promise(async move {
            let command = command_from(&args, "command")?;
            let reply: Reply = client
                .query(&command)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            Ok(reply_to_js(reply))
        })
    }

    /// Sends several commands in one round trip (a pipeline: in order, not atomic) and resolves with
    /// one entry per command: its reply, or a `RedisError` object for a command that failed (not
    /// thrown, so that the other replies are kept).
    #[wasm_bindgen(unchecked_return_type = "Promise<Array<RedisReply | RedisError>>")]
    pub fn pipeline(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RedisArgument[][]")] commands: JsValue,
    ) -> Promise {
        let client = Rc::clone(&self.inner);
        convert::promise(async move {
            if !Array::is_array(&commands) {
                return Err(invalid(
                    "pipeline",
                    format!(
                        "expected an array of commands, got {}",
                        type_name(&commands)
                    ),
                ));
            }
            let list = Array::from(&commands);
            let mut cmds = Vec::with_capacity(list.length() as usize);
            for (i, c) in list.iter().enumerate() {
                cmds.push(command_from(&c, &format!("pipeline command #{i}"))?);
            }
            let replies = client
                .pipeline(&cmds)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            let out = Array::new();
            for reply in replies {
                out.push(&match reply {
                    Ok(reply) => reply_to_js(reply),
                    Err(e) => convert::redge_error(&e),
                });
            }
            Ok(out.into())
        })
    }

    /// What this client has sent: `{ roundTrips, commands, retries }`.
    #[wasm_bindgen(unchecked_return_type = "ClientStats")]
    pub fn stats(&self) -> JsResult<JsValue> {
        let s = self.inner.stats();
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Stats {
            round_trips: f64,
            commands: f64,
            retries: f64,
        }
        convert::to_value(&Stats {
            round_trips: s.round_trips as f64,
            commands: s.commands as f64,
            retries: s.retries as f64,
        })
    }

    /// The latest read-your-writes token the service sent (`undefined` before the first call): keep
    /// it to hand to a later request.
    #[wasm_bindgen(getter, js_name = syncToken)]
    pub fn sync_token(&self) -> Option<String> {
        self.inner.sync_token()
    }

    /// Sets the read-your-writes token to send (a string, or `null` for none).
    #[wasm_bindgen(setter, js_name = syncToken)]
    pub fn set_sync_token(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null")] token: JsValue,
    ) -> JsResult<()> {
        let token = convert::optional_string(&token, "syncToken")?;
        self.inner.set_sync_token(token);
        Ok(())
    }
}

fn build(url: &str, token: &str, tuning: &ClientTuning) -> JsResult<Client> {
    let options = tuning.options().map_err(|e| invalid("Client options", e))?;
    let inner = Inner::with_options(url, token, options).map_err(|e| convert::redge_error(&e))?;
    Ok(Client {
        inner: Rc::new(inner),
    })
}

/// A command from a JavaScript array of arguments.
fn command_from(args: &JsValue, what: &str) -> JsResult<Cmd> {
    if !Array::is_array(args) {
        return Err(invalid(
            what,
            format!(
                "expected an array such as [\"GET\", \"key\"], got {}",
                type_name(args)
            ),
        ));
    }
    let args = Array::from(args);
    let Some(name) = args.get(0).as_string().filter(|n| !n.is_empty()) else {
        return Err(invalid(
            what,
            "the first element must be the command's name, a non-empty string",
        ));
    };
    let mut command = cmd(&name);
    for (i, arg) in args.iter().enumerate().skip(1) {
        command = command.arg(argument(&arg).ok_or_else(|| {
            invalid(
                what,
                format!(
                    "argument #{i} is {}; use strings, numbers, booleans, bigints or Uint8Array",
                    type_name(&arg)
                ),
            )
        })?);
    }
    Ok(command)
}

/// One argument's bytes, or `None` for a type that has no Redis form.
fn argument(arg: &JsValue) -> Option<Vec<u8>> {
    if let Some(s) = arg.as_string() {
        return Some(s.into_bytes());
    }
    if let Some(n) = arg.as_f64() {
        // JavaScript's own number formatting (1e+21, 0.1), as the official SDK sends it.
        return n
            .is_finite()
            .then(|| js_sys::Number::from(n).to_string_with_radix(10).ok())
            .flatten()
            .map(|s| String::from(s).into_bytes());
    }
    if let Some(b) = arg.as_bool() {
        return Some(if b {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        });
    }
    if arg.is_bigint() {
        return js_sys::BigInt::from(arg.clone())
            .to_string(10)
            .ok()
            .map(|s| String::from(s).into_bytes());
    }
    arg.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec)
}

/// A reply as JavaScript values.
fn reply_to_js(reply: Reply) -> JsValue {
    match reply {
        Reply::Nil => JsValue::NULL,
        Reply::Int(n) if n.unsigned_abs() <= MAX_SAFE_INTEGER => JsValue::from_f64(n as f64),
        Reply::Int(n) => js_sys::BigInt::from(n).into(),
        Reply::Status(s) => JsValue::from_str(&s),
        Reply::Data(bytes) => match String::from_utf8(bytes) {
            Ok(text) => JsValue::from_str(&text),
            Err(e) => Uint8Array::from(e.as_bytes()).into(),
        },
        Reply::Array(items) => items.into_iter().map(reply_to_js).collect::<Array>().into(),
        Reply::Error(text) => convert::redge_error(&redge::Error::Redis(text)),
    }
}

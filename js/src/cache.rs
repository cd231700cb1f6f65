//! `Cache`: cached lookups in front of a slow origin (a JavaScript async function), with
//! stale-while-revalidate, negative caching, single flight, tags and a circuit breaker.

use std::fmt;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use redge::cache::{Cache as Inner, CacheApi, CacheState, Key, LookupError, Policy, Task};
use redge::client::{FetchTransport, Json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::client::{Client, Inner as RedisClient};
use crate::convert::{self, JsResult, invalid, type_name};
use crate::error::{Described, to_js};
use crate::options::{CacheOptions, PolicyInput, TaggedKey};
use crate::shapes;

/// Cached lookups: `getOrFetch(key, policy, origin)` serves a fresh value from Redis in one round trip,
/// and otherwise calls `origin` once per key per isolate (concurrent lookups join the same call) and
/// writes its answer. Redis failures never fail a lookup: the origin answers (`status: "bypass"`).
/// `get`, `set`, `delete` and `update` read and write the same entries directly (see `entries.rs`).
///
/// Create it once per isolate: in-flight origin calls, the circuit breaker and the memory tier live
/// in it.
#[wasm_bindgen]
pub struct Cache {
    pub(crate) client: Rc<RedisClient>,
    pub(crate) tiers: Tiers,
}

/// What a `Cache` keeps across calls, above Redis: this isolate's state (memory tier, single flight,
/// breaker, counters) and the colo tier when `colo` turns it on.
#[derive(Clone)]
pub(crate) struct Tiers {
    state: Rc<CacheState>,
    colo: Option<CacheApi>,
}

impl Tiers {
    /// The library's cache for one call, on `client`.
    pub(crate) fn open(&self, client: &Rc<RedisClient>) -> Inner<FetchTransport> {
        let cache = Inner::new(Rc::clone(client), Rc::clone(&self.state));
        match &self.colo {
            Some(colo) => cache.colo(colo.clone()),
            None => cache,
        }
    }
}

/// An origin failure: the value the origin threw, handed back to the caller unchanged.
pub(crate) struct Thrown(JsValue);

impl fmt::Display for Thrown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&convert::message(&self.0))
    }
}

#[wasm_bindgen]
impl Cache {
    /// A cache with `{ namespace, memoryEntries, memoryBytes }` (all optional; keys live under
    /// `cache:`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        client: &Client,
        #[wasm_bindgen(unchecked_optional_param_type = "CacheOptions")] options: JsValue,
    ) -> JsResult<Cache> {
        let options = convert::options::<CacheOptions>(options, "Cache options", true)?;
        let colo = options
            .colo()
            .map_err(|e| invalid("Cache options", e))?
            .map(|origin| CacheApi::new(&origin));
        let options = options.options().map_err(|e| invalid("Cache options", e))?;
        Ok(Cache {
            client: Rc::clone(&client.inner),
            tiers: Tiers {
                state: CacheState::new(options),
                colo,
            },
        })
    }

    /// Looks `key` up (a string, or `{ key, tags }`) under `policy` and, when nothing usable is
    /// cached, awaits `origin()`: its value (anything `JSON.stringify` accepts) is returned and
    /// written; `null` or `undefined` means "not found" (remembered for `negativeTtlMs`). When the
    /// origin throws and nothing stale can be served, the promise rejects with what it threw.
    ///
    /// Pass the Worker's `ctx` to refresh stale values in the background through `ctx.waitUntil`
    /// (stale-while-revalidate); without it, a stale value is refreshed before the lookup answers.
    #[wasm_bindgen(js_name = getOrFetch, unchecked_return_type = "Promise<Lookup>")]
    pub fn get_or_fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CacheKey")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "CachePolicy")] policy: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => unknown")] origin: JsValue,
        #[wasm_bindgen(
            unchecked_optional_param_type = "{ waitUntil(promise: Promise<unknown>): void }"
        )]
        ctx: JsValue,
    ) -> Promise {
        let cache = self.inner();
        convert::promise(async move {
            let (key, policy, origin) = lookup_args(&key, policy, origin)?;
            let cache = with_spawner(cache, &ctx);
            let lookup = cache
                .get_or_fetch(key, &policy, move || call_origin(origin))
                .await
                .map_err(lookup_error)?;
            convert::to_value(&shapes::lookup(lookup))
        })
    }

    /// Deletes one key's entry; resolves with whether one existed.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn invalidate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Promise {
        let cache = self.inner();
        convert::promise(async move {
            let key = convert::string(&key, "invalidate: key")?;
            let existed = cache
                .invalidate(&key)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            Ok(JsValue::from_bool(existed))
        })
    }

    /// Invalidates every entry tagged `tag` (one round trip, no scan); resolves with the tag's new
    /// generation.
    #[wasm_bindgen(js_name = invalidateTag, unchecked_return_type = "Promise<number>")]
    pub fn invalidate_tag(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] tag: JsValue,
    ) -> Promise {
        let cache = self.inner();
        convert::promise(async move {
            let tag = convert::string(&tag, "invalidateTag: tag")?;
            let generation = cache
                .invalidate_tag(&tag)
                .await
                .map_err(|e| convert::redge_error(&e))?;
            Ok(JsValue::from_f64(generation as f64))
        })
    }

    /// This isolate's counters: the breaker's state, origin calls, and per key group the lookups,
    /// hits, misses, stale answers and failures.
    #[wasm_bindgen(unchecked_return_type = "CacheMetrics")]
    pub fn metrics(&self) -> JsResult<JsValue> {
        let s = &self.tiers.state;
        convert::to_value(&shapes::metrics(
            s.breaker_state(),
            s.origin_calls(),
            &s.metrics(),
        ))
    }
}

/// A lookup's key and policy, checked.
pub(crate) fn key_and_policy(key: &JsValue, policy: JsValue) -> JsResult<(Key, Policy)> {
    key_and_policy_for("getOrFetch", key, policy)
}

/// The key and policy passed to `method`, checked; errors name the method.
pub(crate) fn key_and_policy_for(
    method: &str,
    key: &JsValue,
    policy: JsValue,
) -> JsResult<(Key, Policy)> {
    let key = cache_key(key, &format!("{method}: key"))?;
    let what = format!("{method}: policy");
    let policy = convert::options::<PolicyInput>(policy, &what, true)?
        .policy()
        .map_err(|e| invalid(&what, e))?;
    Ok((key, policy))
}

/// A lookup's key, policy and origin, checked.
fn lookup_args(
    key: &JsValue,
    policy: JsValue,
    origin: JsValue,
) -> JsResult<(Key, Policy, Function)> {
    let (key, policy) = key_and_policy(key, policy)?;
    let origin: Function = origin.dyn_into().map_err(|v: JsValue| {
        invalid(
            "getOrFetch: origin",
            format!("expected an async function, got {}", type_name(&v)),
        )
    })?;
    Ok((key, policy, origin))
}

/// Refreshes stale values through `ctx.waitUntil` when `ctx` has one.
pub(crate) fn with_spawner(cache: Inner<FetchTransport>, ctx: &JsValue) -> Inner<FetchTransport> {
    let Some(wait_until) = wait_until(ctx) else {
        return cache;
    };
    let ctx = ctx.clone();
    cache.spawner(move |task: Task| {
        let promise = convert::promise(async move {
            task.await;
            Ok(JsValue::UNDEFINED)
        });
        let _ = wait_until.call1(&ctx, &promise);
    })
}

/// The JavaScript error for a failed lookup: the origin's own for its failure.
pub(crate) fn lookup_error(e: LookupError<Thrown>) -> JsValue {
    match e {
        LookupError::InvalidKey(why) => invalid("getOrFetch: key", why),
        LookupError::Origin(Thrown(value)) => value,
        LookupError::Joined(message) => to_js(&Described::origin(format!(
            "the origin call this lookup joined failed: {message}"
        ))),
    }
}

/// `ctx.waitUntil`, when `ctx` has one.
fn wait_until(ctx: &JsValue) -> Option<Function> {
    if !ctx.is_object() {
        return None;
    }
    Reflect::get(ctx, &JsValue::from_str("waitUntil"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
}

/// A cache key: a string, or `{ key, tags }`; errors say `what`.
pub(crate) fn cache_key(key: &JsValue, what: &str) -> JsResult<Key> {
    if let Some(name) = key.as_string() {
        return Ok(Key::new(name));
    }
    if key.is_object() {
        let tagged: TaggedKey = convert::options(key.clone(), what, false)?;
        return Ok(Key::new(tagged.key).tags(tagged.tags));
    }
    Err(invalid(
        what,
        format!(
            "expected a string or {{ key, tags }}, got {}",
            type_name(key)
        ),
    ))
}

/// Calls the origin: a value or a promise of one; `null`/`undefined` is "not found".
pub(crate) async fn call_origin(
    origin: Function,
) -> Result<Option<Json<serde_json::Value>>, Thrown> {
    let returned = origin.call0(&JsValue::UNDEFINED).map_err(Thrown)?;
    let value = JsFuture::from(Promise::resolve(&returned))
        .await
        .map_err(Thrown)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    convert::json(&value, "the origin's value")
        .map(|v| Some(Json(v)))
        .map_err(Thrown)
}

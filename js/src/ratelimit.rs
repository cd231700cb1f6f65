//! `RateLimiter`: redge's limiter (GCRA, sliding and fixed windows, token bucket; several policies in
//! one round trip; a local block cache; leased quota for hot identifiers; a failure policy) behind
//! Promises.
//!
//! Every decision carries `pending`, a Promise of the background work the check left due (lease
//! renewals, refunds owed when policies' keys live in different slots). It is already running when
//! the decision resolves; a Worker hands it to `ctx.waitUntil` so that the work is not cut off after
//! the response, as with `@upstash/ratelimit`'s `pending`.

use std::rc::Rc;

use js_sys::{Array, Promise};
use redge::clock::{Clock, SystemClock};
use redge::ratelimit::RateLimiter as Inner;
use wasm_bindgen::prelude::*;

use crate::client::{Client, Inner as RedisClient};
use crate::convert::{self, JsResult, invalid};
use crate::options::{LimitOptions, LimiterOptions, PolicySelection};
use crate::shapes;

/// Checks requests against named quotas, in one round trip whatever the number of policies.
///
/// Create it once per isolate: after Redis refuses an identifier, this isolate refuses it again without
/// a round trip until the exact retry time. A denial is a value (`allowed: false`), never an error;
/// when Redis fails or is slow the failure policy answers (`reason` says so).
#[wasm_bindgen]
pub struct RateLimiter {
    pub(crate) client: Rc<RedisClient>,
    pub(crate) inner: Rc<Inner>,
    pub(crate) legacy_headers: bool,
}

#[wasm_bindgen]
impl RateLimiter {
    /// A limiter with one quota (`{ limit: 10, periodMs: 60_000 }`) or several named policies
    /// (`{ policies: [{ name: "burst", limit: 5, periodMs: 10_000 }, ...] }`). Throws an
    /// `InvalidArgumentError` that names the bad policy or option.
    #[wasm_bindgen(constructor)]
    pub fn new(
        client: &Client,
        #[wasm_bindgen(unchecked_param_type = "RateLimiterOptions")] options: JsValue,
    ) -> JsResult<RateLimiter> {
        let config = convert::options::<LimiterOptions>(options, "RateLimiter options", false)?
            .validate()
            .map_err(|e| invalid("RateLimiter options", e))?;
        let mut inner = Inner::new(config.policies)
            .map_err(|e| convert::redge_error(&e))?
            .failure_policy(config.failure);
        if let Some(prefix) = config.prefix {
            inner = inner.prefix(prefix);
        }
        if let Some(ms) = config.timeout_ms {
            inner = inner.with_timeout_ms(ms);
        }
        if let Some(leases) = config.leases {
            inner = inner
                .leases(leases)
                .map_err(|e| invalid("RateLimiter options", e))?;
        }
        Ok(RateLimiter {
            client: Rc::clone(&client.inner),
            inner: Rc::new(inner),
            legacy_headers: config.legacy_headers,
        })
    }

    /// Charges `identifier` (an IP, a user id, an API key) `cost` (default 1) against every policy,
    /// or the ones named in `policies`, and resolves with the decision. The request passes only if
    /// every policy allows it, and a refused request is charged by none. Rejects with an
    /// `InvalidArgumentError` for a bad identifier, cost or policy name (`REDGE_INSUFFICIENT_CAPACITY`
    /// when the cost is more than a policy ever allows at once); never because Redis failed.
    #[wasm_bindgen(unchecked_return_type = "Promise<Decision>")]
    pub fn limit(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] identifier: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LimitOptions")] options: JsValue,
    ) -> Promise {
        let (client, inner, legacy) = self.parts();
        convert::promise(async move {
            let id = convert::string(&identifier, "limit: identifier")?;
            let o: LimitOptions = convert::options(options, "limit options", true)?;
            let names = selected(&inner, o.policies, "limit options")?;
            decide(&client, &inner, &id, &names, o.cost.unwrap_or(1), legacy).await
        })
    }

    /// The budget of `identifier` without charging it: `allowed` says whether a request of cost 1
    /// would pass now.
    #[wasm_bindgen(unchecked_return_type = "Promise<Decision>")]
    pub fn peek(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] identifier: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "PolicySelection")] options: JsValue,
    ) -> Promise {
        let (client, inner, legacy) = self.parts();
        convert::promise(async move {
            let id = convert::string(&identifier, "peek: identifier")?;
            let o: PolicySelection = convert::options(options, "peek options", true)?;
            let names = selected(&inner, o.policies, "peek options")?;
            decide(&client, &inner, &id, &names, 0, legacy).await
        })
    }

    /// Forgets everything `identifier` used, under every policy or the ones named, in Redis and in
    /// this isolate. Rejects with the Redis error if it could not be applied.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn reset(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] identifier: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "PolicySelection")] options: JsValue,
    ) -> Promise {
        let (client, inner, _) = self.parts();
        convert::promise(async move {
            let id = convert::string(&identifier, "reset: identifier")?;
            let o: PolicySelection = convert::options(options, "reset options", true)?;
            for name in selected(&inner, o.policies, "reset options")? {
                inner
                    .reset(&client, &name, &id)
                    .await
                    .map_err(|e| convert::redge_error(&e))?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The names of the limiter's policies, in order.
    #[wasm_bindgen(getter, unchecked_return_type = "string[]")]
    pub fn policies(&self) -> Array {
        self.inner
            .policies()
            .iter()
            .map(|p| JsValue::from_str(&p.name))
            .collect()
    }
}

impl RateLimiter {
    fn parts(&self) -> (Rc<RedisClient>, Rc<Inner>, bool) {
        (
            Rc::clone(&self.client),
            Rc::clone(&self.inner),
            self.legacy_headers,
        )
    }
}

/// The policies a call names (all of them by default), each checked to exist.
pub(crate) fn selected(
    inner: &Inner,
    names: Option<Vec<String>>,
    what: &str,
) -> JsResult<Vec<String>> {
    let all = || inner.policies().iter().map(|p| p.name.clone()).collect();
    let names: Vec<String> = names.unwrap_or_else(all);
    if names.is_empty() {
        return Err(invalid(what, "policies is empty: name at least one"));
    }
    for name in &names {
        if inner.policy(name).is_none() {
            let known: Vec<&str> = inner.policies().iter().map(|p| p.name.as_str()).collect();
            return Err(invalid(
                what,
                format!(
                    "unknown policy {:?}; this limiter has {}",
                    name.chars().take(80).collect::<String>(),
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(names)
}

async fn decide(
    client: &Rc<RedisClient>,
    inner: &Inner,
    id: &str,
    names: &[String],
    cost: u32,
    legacy: bool,
) -> JsResult<JsValue> {
    let subjects: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), id)).collect();
    let now = SystemClock.now_ms();
    let decision = inner
        .check(client, &subjects, cost)
        .await
        .map_err(|e| convert::redge_error(&e))?;
    decision_value(&decision, now, legacy, background(client, inner))
}

/// A decision as JavaScript sees it, with `pending` set to the check's background work.
pub(crate) fn decision_value(
    decision: &redge::ratelimit::Decision,
    now_ms: u64,
    legacy: bool,
    pending: Promise,
) -> JsResult<JsValue> {
    let value = convert::to_value(&shapes::decision(decision, now_ms, legacy))?;
    js_sys::Reflect::set(&value, &JsValue::from_str("pending"), &pending)?;
    Ok(value)
}

/// The background work `inner` has due after a check (lease renewals, refunds owed across slots), as a
/// Promise that resolves once it is done. It starts now; it never rejects (a failed renewal is
/// counted as one, and the next check decides with a round trip).
pub(crate) fn background(client: &Rc<RedisClient>, inner: &Inner) -> Promise {
    let running = Array::new();
    let start = |task: redge::cache::Task| {
        running.push(&convert::promise(async move {
            task.await;
            Ok(JsValue::UNDEFINED)
        }));
    };
    inner.spawn_lease_renewals(Rc::clone(client), &start);
    if running.length() == 0 {
        return Promise::resolve(&JsValue::UNDEFINED);
    }
    let all = Promise::all(&running);
    convert::promise(async move {
        wasm_bindgen_futures::JsFuture::from(all).await?;
        Ok(JsValue::UNDEFINED)
    })
}

//! Rate-limit routes (identifier: `?id=`, else `CF-Connecting-IP`, else `anonymous`):
//! - `GET /api/ratelimit`: the configured policies;
//! - `POST /api/ratelimit/{policy}` (optional `{"cost": n}`): spend; 200, or 429 problem with `Retry-After`;
//! - `GET /api/ratelimit/{policy}`: peek without charging;
//! - `DELETE /api/ratelimit/{policy}`: reset this identifier, 204.
//!
//! The limiter is built on the first request and lives as long as the isolate, its block cache and
//! fallback limiter with it (vars cannot change under a running isolate: a new deployment is a new
//! isolate). A configuration error is reported on every request until it is fixed.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Map, Value, json};
use worker::{Env, Request, Response};

use crate::app::{config, problem};
use crate::client::{Client, FetchTransport};
use crate::ratelimit::{Decision, RateLimiter, config::cost_from_body, headers};

/// Identifiers longer than this are refused (they are hashed into keys, but a client sending kilobytes
/// of identifier is a mistake worth reporting).
const MAX_IDENTIFIER_BYTES: usize = 1_024;

struct Shared {
    limiter: RateLimiter,
    legacy_headers: bool,
}

thread_local! {
    static SHARED: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
}

fn shared(env: &Env) -> Result<Rc<Shared>, String> {
    if let Some(shared) = SHARED.with_borrow(Clone::clone) {
        return Ok(shared);
    }
    let (limiter, settings) = config::ratelimit(env)?;
    let shared = Rc::new(Shared {
        limiter,
        legacy_headers: settings.legacy_headers,
    });
    SHARED.with_borrow_mut(|s| *s = Some(Rc::clone(&shared)));
    Ok(shared)
}

/// The limiter and a client whose deadline is the limiter's, or the problem response to send.
fn setup(env: &Env) -> Result<(Rc<Shared>, Client<FetchTransport>), worker::Result<Response>> {
    let misconfigured = |m: String| problem::problem(500, "Misconfigured", &m);
    let shared = shared(env).map_err(misconfigured)?;
    let client = config::client(env).map_err(misconfigured)?;
    let client = client.timeout_ms(shared.limiter.timeout_ms());
    Ok((shared, client))
}

fn identifier(req: &Request) -> Result<String, worker::Result<Response>> {
    // The raw URL string, not `req.url()`: parsing a whole URL pulls in IDNA tables (~100 KB of wasm).
    let raw = req.inner().url();
    let from_query = raw.split_once('?').and_then(|(_, query)| {
        let query = query.split('#').next().unwrap_or_default();
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.into_owned())
    });
    let id = from_query
        .or_else(|| req.headers().get("CF-Connecting-IP").ok().flatten())
        .unwrap_or_else(|| "anonymous".to_owned());
    if id.len() > MAX_IDENTIFIER_BYTES {
        return Err(problem::problem(
            400,
            "Bad Request",
            &format!(
                "the identifier is {} bytes; at most {MAX_IDENTIFIER_BYTES}",
                id.len()
            ),
        ));
    }
    Ok(id)
}

fn unknown_policy(shared: &Shared, policy: &str) -> worker::Result<Response> {
    let names: Vec<&str> = shared
        .limiter
        .policies()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let shown: String = policy.chars().take(80).collect();
    problem::problem(
        404,
        "Unknown Policy",
        &format!(
            "no rate-limit policy {shown:?}; configured: {}",
            names.join(", ")
        ),
    )
}

macro_rules! try_response {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

/// `GET /api/ratelimit`.
pub fn list(env: &Env) -> worker::Result<Response> {
    let shared = match shared(env) {
        Ok(shared) => shared,
        Err(m) => return problem::problem(500, "Misconfigured", &m),
    };
    let policies: Vec<Value> = shared
        .limiter
        .policies()
        .iter()
        .map(|p| {
            json!({ "name": p.name, "algorithm": p.algorithm.name(), "limit": p.quota.limit(),
                    "period_ms": p.quota.period_ms(), "burst": p.quota.burst_size() })
        })
        .collect();
    let failure = format!("{:?}", shared.limiter.failure()).to_ascii_lowercase();
    let body = json!({ "policies": policies, "failure_policy": failure,
                       "timeout_ms": shared.limiter.timeout_ms() });
    no_store(Response::from_json(&body)?)
}

/// `POST /api/ratelimit/{policy}` (spend) and `GET /api/ratelimit/{policy}` (peek, `peek = true`).
pub async fn decide(
    mut req: Request,
    env: &Env,
    policy: &str,
    peek: bool,
) -> worker::Result<Response> {
    let (shared, client) = try_response!(setup(env));
    if shared.limiter.policy(policy).is_none() {
        return unknown_policy(&shared, policy);
    }
    let id = try_response!(identifier(&req));
    let cost = if peek {
        0
    } else {
        let body = req.text().await.unwrap_or_default();
        match cost_from_body(&body) {
            Ok(cost) => cost,
            Err(m) => return problem::problem(400, "Bad Cost", &m),
        }
    };
    let decision = match shared
        .limiter
        .check(&client, &[(policy, id.as_str())], cost)
        .await
    {
        Ok(decision) => decision,
        Err(e) if e.is_insufficient_capacity() => {
            return problem::problem(400, "Bad Cost", &e.to_string());
        }
        Err(e) => return problem::problem(400, "Bad Request", &e.to_string()),
    };
    let round_trips = client.stats().round_trips;
    let mut response = if decision.allowed || peek {
        Response::from_json(&json!({ "decision": decision, "round_trips": round_trips }))?
    } else {
        let mut members = Map::new();
        members.insert(
            "decision".into(),
            serde_json::to_value(&decision).unwrap_or(Value::Null),
        );
        members.insert("round_trips".into(), round_trips.into());
        problem::problem_with(429, "Too Many Requests", &refusal(&decision), members)?
    };
    let headers_out = response.headers_mut();
    for (name, value) in headers::headers(&decision, shared.legacy_headers) {
        if peek && name == headers::RETRY_AFTER {
            continue;
        }
        headers_out.set(name, &value)?;
    }
    no_store(response)
}

/// `DELETE /api/ratelimit/{policy}`.
pub async fn reset(req: Request, env: &Env, policy: &str) -> worker::Result<Response> {
    let (shared, client) = try_response!(setup(env));
    if shared.limiter.policy(policy).is_none() {
        return unknown_policy(&shared, policy);
    }
    let id = try_response!(identifier(&req));
    match shared.limiter.reset(&client, policy, &id).await {
        Ok(()) => no_store(Response::empty()?.with_status(204)),
        Err(e) => problem::problem(503, "Store Unavailable", &e.to_string()),
    }
}

fn refusal(d: &Decision) -> String {
    format!(
        "rate limit {:?} exceeded ({}); retry in {} ms",
        d.policy,
        d.reason.name(),
        d.retry_after_ms
    )
}

fn no_store(mut response: Response) -> worker::Result<Response> {
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(response)
}

//! Rate-limit routes (identifier: `?id=`, else the client's key: its address, else `unknown`):
//! - `GET /api/ratelimit`: the configured policies;
//! - `POST /api/ratelimit/{policy}` (optional `{"cost": n}`): spend; 200, or 429 problem with `Retry-After`;
//! - `GET /api/ratelimit/{policy}`: peek without charging;
//! - `DELETE /api/ratelimit/{policy}`: reset this identifier, 204.
//!
//! Each costs one round trip, shared with the route limit's check of the client (none at all when the
//! identifier is blocked in the isolate's block cache: the route limit charges only requests with Redis
//! work), within the limiter's own deadline (`RATELIMIT_TIMEOUT_MS`); past it, or when Redis fails, the
//! configured failure policy answers and the decision's `reason` says so.

use serde_json::{Value, json};

use crate::context::{
    Cx, Handler, Shared, Tr, count_decision, json_response, spawn_lease_renewals,
};
use crate::problem::Problem;
use crate::reply::Reply;
use crate::state;
use redge::clock::SystemClock;
use redge::plan::Plan;
use redge::ratelimit::{self, Decision, RateLimiter, config::cost_from_body, headers};

/// Identifiers longer than this are refused (they are hashed into keys, but a client sending kilobytes
/// of identifier is a mistake worth reporting).
const MAX_IDENTIFIER_BYTES: usize = 1_024;

fn limiter(cx: &Cx) -> Result<&'static RateLimiter, Problem> {
    state::limiter(&cx.config).map_err(|m| Problem::new(500, m))
}

/// Who is being limited: `?id=`, else the client's key (its address, or `unknown`: see
/// [`client_ip`](crate::client_ip)).
///
/// The identifier is the caller's choice here (this is a demo of the limiter), so it is kept apart from
/// the identifiers of the route middleware (`demo:` in front): spending or resetting through these
/// routes never touches the budget that guards the API routes.
pub(crate) fn identifier(cx: &Cx) -> Result<String, Problem> {
    let id = cx
        .query("id")
        .unwrap_or_else(|| cx.client.as_str().to_owned());
    if id.len() > MAX_IDENTIFIER_BYTES {
        return Err(Problem::bad_request(format!(
            "the identifier is {} bytes; at most {MAX_IDENTIFIER_BYTES}",
            id.len()
        )));
    }
    Ok(format!("demo:{id}"))
}

/// The policy named in the path, or 404 listing the configured ones.
fn policy(cx: &Cx, limiter: &RateLimiter) -> Result<String, Problem> {
    let name = cx.param("policy").unwrap_or_default();
    if limiter.policy(name).is_some() {
        return Ok(name.to_owned());
    }
    let names: Vec<&str> = limiter.policies().iter().map(|p| p.name.as_str()).collect();
    let shown: String = name.chars().take(80).collect();
    Err(Problem::new(
        404,
        format!(
            "no rate-limit policy {shown:?}; configured: {}",
            names.join(", ")
        ),
    ))
}

/// `GET /api/ratelimit`.
pub(crate) struct List;

impl Handler for List {
    type Pending = ();

    async fn prepare(_: &Cx, _: &Plan<'_, Tr>) -> Result<(), Problem> {
        Ok(())
    }

    async fn respond(cx: &Cx, (): (), _: Shared) -> Result<Reply, Problem> {
        let limiter = limiter(cx)?;
        let policies: Vec<Value> = limiter
            .policies()
            .iter()
            .map(|p| {
                json!({ "name": p.name, "algorithm": p.algorithm.name(), "limit": p.quota.limit(),
                        "period_ms": p.quota.period_ms(), "burst": p.quota.burst_size() })
            })
            .collect();
        let failure = format!("{:?}", limiter.failure()).to_ascii_lowercase();
        json_response(
            200,
            &json!({ "policies": policies, "failure_policy": failure,
                     "timeout_ms": limiter.timeout_ms() }),
        )
    }
}

/// `POST /api/ratelimit/{policy}` (spend, `PEEK = false`) and `GET` (peek, `PEEK = true`).
pub(crate) struct Decide<const PEEK: bool>;

/// Spend.
pub(crate) type Spend = Decide<false>;
/// Peek.
pub(crate) type Peek = Decide<true>;

impl<const PEEK: bool> Handler for Decide<PEEK> {
    /// The check, in the request's batch (nothing added when the block cache already knows).
    type Pending = ratelimit::Pending<'static, SystemClock>;

    async fn prepare(cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        let limiter = limiter(cx)?;
        let policy = policy(cx, limiter)?;
        let id = identifier(cx)?;
        let cost = if PEEK {
            0
        } else {
            cost_from_body(&String::from_utf8_lossy(&cx.body)).map_err(Problem::bad_request)?
        };
        plan.limit(limiter, &[(policy.as_str(), id.as_str())], cost)
            .map_err(|e| Problem::bad_request(e.to_string()))
    }

    fn has_redis_work(_: &Cx, pending: &Self::Pending) -> bool {
        pending.needs_round_trip()
    }

    async fn respond(cx: &Cx, pending: Self::Pending, _: Shared) -> Result<Reply, Problem> {
        let decision = pending.finish();
        count_decision(&decision);
        spawn_lease_renewals(cx);
        for (name, value) in headers::headers(&decision, cx.config.ratelimit.legacy_headers) {
            if !(PEEK && name == headers::RETRY_AFTER) {
                cx.add_header(name, &value);
            }
        }
        let round_trips = cx.meter.round_trips();
        if decision.allowed || PEEK {
            json_response(
                200,
                &json!({ "decision": decision, "round_trips": round_trips }),
            )
        } else {
            Err(Problem::new(429, refusal(&decision))
                .with(
                    "decision",
                    serde_json::to_value(&decision).unwrap_or(Value::Null),
                )
                .with("round_trips", json!(round_trips)))
        }
    }
}

/// `DELETE /api/ratelimit/{policy}`.
pub(crate) struct Reset;

impl Handler for Reset {
    type Pending = (String, String);

    async fn prepare(cx: &Cx, _: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        let limiter = limiter(cx)?;
        Ok((policy(cx, limiter)?, identifier(cx)?))
    }

    async fn respond(cx: &Cx, (policy, id): Self::Pending, _: Shared) -> Result<Reply, Problem> {
        limiter(cx)?
            .reset(&*cx.redis, &policy, &id)
            .await
            .map_err(|e| {
                Problem::new(503, format!("the rate-limit store is unavailable: {e}"))
                    .header("retry-after", "1")
            })?;
        json_response(204, &Value::Null)
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

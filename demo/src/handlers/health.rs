//! `GET /api/health`: is the Redis service reachable, and how long does a PING take?
//!
//! The PING goes through the request's shared batch like any route's read, so this route is also the
//! smallest demonstration of the one-round-trip pipeline: `Server-Timing` says `1 round trip`.

use serde_json::json;

use crate::context::{Cx, Handler, Shared, Tr, json_response};
use crate::problem::Problem;
use crate::reply::Reply;
use redge::client::{Handle, commands};
use redge::plan::{Plan, Wait};

/// The health route.
pub(crate) struct Health;

impl Handler for Health {
    type Pending = Handle<String>;

    async fn prepare(_cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Handle<String>, Problem> {
        Ok(plan.read(commands::ping(), Wait::Full))
    }

    async fn respond(cx: &Cx, ping: Handle<String>, _: Shared) -> Result<Reply, Problem> {
        match ping.take() {
            Ok(_) => {
                let body = json!({
                    "status": "ok",
                    "redis": { "ok": true, "latency_ms": cx.meter.redis_ms() },
                });
                json_response(200, &body)
            }
            Err(e) => {
                let message = e.to_string();
                Err(
                    Problem::new(503, format!("Redis is unavailable: {message}"))
                        .with("redis", json!({ "ok": false, "error": message }))
                        .header("retry-after", "1"),
                )
            }
        }
    }
}

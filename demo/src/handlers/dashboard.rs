//! `GET /api/dashboard`: what a signed-in page shows on load — the rate-limit decision, the visitor's
//! session and a cached item (`?item=`, default 1) — for ONE Redis round trip.
//!
//! The middleware adds the route's rate-limit check and the session load to the request's batch, this
//! handler adds the item's cache read, and the batch goes out once. A cache miss costs a second round
//! trip (the origin's answer is written after it arrives); a hit costs nothing more.
//!
//! Failure, per capability: rate limiting answers by its configured policy; the item fails open to the
//! origin (a colo hit, with `CACHE_COLO_TTL_MS`, reads nothing: without a cookie such a dashboard
//! costs no round trip); the session fails closed: a visitor with a cookie gets 503 while the store cannot be read
//! (the cookie is kept), never an anonymous dashboard. Without a cookie the dashboard is anonymous and
//! the cache's short deadline bounds the round trip; with one, the session's longer deadline does.

use serde_json::{Value, json};

use super::cache::{item_fields, parse_id, prepare_item, resolve_item};
use super::session::{Visit, failed};
use crate::context::{Cx, Handler, Shared, Tr, json_response};
use crate::problem::Problem;
use crate::reply::Reply;
use redge::cache::Pending;
use redge::client::Json;
use redge::plan::Plan;

/// `GET /api/dashboard`.
pub(crate) struct Dashboard;

/// The item's id and its pending read (the session is the middleware's).
pub(crate) struct Prepared {
    id: u64,
    item: Pending<Json<Value>>,
}

impl Handler for Dashboard {
    type Pending = Prepared;

    async fn prepare(cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Prepared, Problem> {
        let id = match cx.query("item") {
            Some(raw) => parse_id(&raw)?,
            None => 1,
        };
        Ok(Prepared {
            id,
            item: prepare_item(cx, plan, id).await,
        })
    }

    /// Redis work: the item's read (none when the memory or colo tier answered) or the session's load
    /// (when a cookie is sent).
    fn has_redis_work(cx: &Cx, prepared: &Prepared) -> bool {
        !prepared.item.answered_by_tier() || Visit::read(cx).has_cookie()
    }

    async fn respond(cx: &Cx, prepared: Prepared, shared: Shared) -> Result<Reply, Problem> {
        let session = match shared.session.as_ref().and_then(|s| s.loaded.as_ref()) {
            None => Value::Null,
            Some(Ok(Some(loaded))) => json!(loaded.session),
            Some(Ok(None)) => {
                if let Some(read) = &shared.session {
                    cx.add_header("set-cookie", &read.visit.clear_cookie());
                }
                Value::Null
            }
            // Fail closed, before the origin is called: the visitor is not shown as signed out.
            Some(Err(e)) => return Err(failed(e)),
        };
        let lookup = resolve_item(cx, prepared.id, prepared.item).await?;
        json_response(
            200,
            &json!({
                "signed_in": !session.is_null(),
                "session": session,
                "ratelimit": shared.decision,
                "item": Value::Object(item_fields(cx, prepared.id, &lookup)),
                "round_trips": cx.meter.round_trips(),
            }),
        )
    }
}

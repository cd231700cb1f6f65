//! `GET /api/metrics`: this isolate's counters in the Prometheus text format.
//!
//! When `METRICS_TOKEN` is set, the scraper must send `Authorization: Bearer <token>` (401 otherwise).
//!
//! A capability that keeps its own totals (cache hits, rate-limit denials ...) copies them into the
//! snapshot below with `snapshot.set(Kind::Counter, "redge_cache_hits_total", "help", &[("status",
//! "hit")], value)`, one line per counter.

use worker::Response;

use crate::app::context::{Cx, Handler, Shared, Tr};
use crate::app::metrics::{CONTENT_TYPE, Kind, scrape_allowed};
use crate::app::problem::Problem;
use crate::app::state;
use crate::client::Batch;

/// The metrics route.
pub(crate) struct Metrics;

impl Handler for Metrics {
    type Pending = ();

    fn prepare(cx: &Cx, _batch: &Batch<'_, Tr>) -> Result<(), Problem> {
        let sent = cx.header("authorization");
        if scrape_allowed(cx.config.metrics_token.as_deref(), sent.as_deref()) {
            Ok(())
        } else {
            Err(
                Problem::new(401, "send Authorization: Bearer <METRICS_TOKEN>")
                    .header("www-authenticate", "Bearer"),
            )
        }
    }

    async fn respond(_cx: &Cx, _: (), _: Shared) -> Result<Response, Problem> {
        let mut snapshot = state::metrics(|m| m.clone());
        snapshot.set(
            Kind::Gauge,
            "redge_isolate_start_time_seconds",
            "When this isolate served its first request (Unix seconds): a new value means counters restarted.",
            &[],
            state::started_ms() as f64 / 1000.0,
        );
        let mut response =
            Response::ok(snapshot.render()).map_err(|e| Problem::new(500, e.to_string()))?;
        let _ = response.headers_mut().set("content-type", CONTENT_TYPE);
        Ok(response)
    }
}

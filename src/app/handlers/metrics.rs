//! `GET /api/metrics`: this isolate's counters in the Prometheus text format.
//!
//! When `METRICS_TOKEN` is set, the scraper must send `Authorization: Bearer <token>` (401 otherwise).
//!
//! Request, round-trip and rate-limit counters are added as things happen (`dispatch.rs`, the
//! middleware); the cache keeps its own totals per key group, copied into the snapshot at scrape time
//! ([`cache_counters`]), with the breaker's state and the rate limiter's block cache size.

use crate::app::context::{Cx, Handler, Shared, Tr};
use crate::app::handlers::cache;
use crate::app::metrics::{CONTENT_TYPE, Kind, Registry, scrape_allowed};
use crate::app::problem::Problem;
use crate::app::reply::Reply;
use crate::app::state;
use crate::cache::BreakerState;
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

    async fn respond(cx: &Cx, _: (), _: Shared) -> Result<Reply, Problem> {
        let mut snapshot = state::metrics(|m| m.clone());
        snapshot.set(
            Kind::Gauge,
            "redge_isolate_start_time_seconds",
            "When this isolate served its first request (Unix seconds): a new value means counters restarted.",
            &[],
            state::started_ms() as f64 / 1000.0,
        );
        cache_counters(&mut snapshot);
        if let Ok(limiter) = state::limiter(&cx.config) {
            snapshot.set(
                Kind::Gauge,
                "redge_ratelimit_blocked_identifiers",
                "Identifiers this isolate knows to be blocked, refused without a Redis call.",
                &[],
                limiter.block_cache().len() as f64,
            );
        }
        Ok(Reply::text(200, CONTENT_TYPE, snapshot.render()))
    }
}

/// The lookup cache's counters per key group, and its breaker.
fn cache_counters(snapshot: &mut Registry) {
    let cache = cache::state();
    for (group, m) in cache.metrics() {
        let g = group.as_str();
        for (outcome, value) in [
            ("hit", m.hits),
            ("memory_hit", m.memory_hits),
            ("miss", m.misses),
            ("stale", m.stale),
            ("negative", m.negative),
            ("bypass", m.bypass),
        ] {
            snapshot.set(
                Kind::Counter,
                "redge_cache_lookups_total",
                "Cached lookups answered, by key group and how.",
                &[("group", g), ("outcome", outcome)],
                value as f64,
            );
        }
        for (name, help, value) in [
            (
                "redge_cache_origin_calls_total",
                "Origin calls, background refreshes included.",
                m.origin_calls,
            ),
            (
                "redge_cache_origin_errors_total",
                "Origin calls that failed.",
                m.origin_errors,
            ),
            (
                "redge_cache_errors_total",
                "Redis failures and values that could not be encoded.",
                m.cache_errors,
            ),
            (
                "redge_cache_coalesced_total",
                "Lookups that joined another lookup's origin call.",
                m.coalesced,
            ),
            (
                "redge_cache_oversize_total",
                "Values not written for being over the size cap.",
                m.oversize,
            ),
            (
                "redge_cache_corrupt_total",
                "Entries that did not decode and were rewritten.",
                m.corrupt,
            ),
            (
                "redge_cache_lookup_milliseconds_total",
                "Time spent answering lookups (for a mean, divide by the lookups).",
                m.latency_ms_sum,
            ),
        ] {
            snapshot.set(Kind::Counter, name, help, &[("group", g)], value as f64);
        }
        snapshot.set(
            Kind::Gauge,
            "redge_cache_lookup_max_milliseconds",
            "The slowest lookup this isolate answered.",
            &[("group", g)],
            m.latency_ms_max as f64,
        );
    }
    for state in [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ] {
        snapshot.set(
            Kind::Gauge,
            "redge_cache_breaker_state",
            "The cache's circuit breaker: 1 for the state it is in.",
            &[("state", state.as_str())],
            f64::from(u8::from(cache.breaker_state() == state)),
        );
    }
}

//! `GET /api/metrics`: the deployment's counters in the Prometheus text format, or this isolate's.
//!
//! When `METRICS_TOKEN` is set, the scraper must send `Authorization: Bearer <token>` (401 otherwise).
//!
//! Request, round-trip and rate-limit counters are added as things happen (`dispatch.rs`, the
//! middleware); the cache keeps its own totals per key group, copied into the snapshot when it is read
//! ([`cache_counters`]), with the breaker's state and the rate limiter's block cache size.
//!
//! # The whole deployment
//!
//! A scrape reaches one isolate among many, so its own counters say little. Every isolate therefore
//! adds what its counters and histograms gained to one Redis hash (`METRICS_KEY`), in the background
//! (`ctx.waitUntil`), at most once per `METRICS_FLUSH_MS` (10 s): at most one round trip per isolate
//! per interval, never on a request's critical path, and none while nothing changed. `GET /api/metrics`
//! adds this isolate's latest increments and reads the hash in the same round trip, and renders the
//! totals (`x-redge-metrics-scope: deployment`), with `redge_cache_hit_ratio` computed from them. The
//! other isolates' latest increments show within one flush interval (an isolate that stops receiving
//! requests sends nothing more). Gauges describe one isolate and are not added up:
//! `?scope=isolate` shows this isolate's counters and gauges. Increments are sent once: a flush that
//! fails is lost (the totals undercount, counted in `redge_metrics_flush_failures_total`), never added
//! twice. With `METRICS_FLUSH_MS=0` nothing is sent and every scrape shows its isolate.

use std::rc::Rc;

use crate::config::Config;
use crate::context::{Cx, Handler, Shared, Tr};
use crate::handlers::cache;
use crate::metrics::{CONTENT_TYPE, Kind, Registry, increment_text, scrape_allowed};
use crate::problem::Problem;
use crate::reply::Reply;
use crate::state;
use crate::timing::{Meter, Metered};
use redge::cache::BreakerState;
use redge::client::{Client, Cmd, FetchTransport, Handle, Pairs, Reply as RedisReply, cmd};
use redge::plan::{Plan, Wait};

/// The metrics route.
pub(crate) struct Metrics;

impl Handler for Metrics {
    /// The deployment's hash, unless this isolate's counters were asked for (or nothing is shared).
    type Pending = Option<Handle<Pairs<String, String>>>;

    async fn prepare(cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        let sent = cx.header("authorization");
        if !scrape_allowed(cx.config.metrics_token.as_deref(), sent.as_deref()) {
            return Err(
                Problem::new(401, "send Authorization: Bearer <METRICS_TOKEN>")
                    .header("www-authenticate", "Bearer"),
            );
        }
        let isolate = cx.query("scope").as_deref() == Some("isolate");
        if isolate || cx.config.metrics.flush_ms == 0 {
            return Ok(None);
        }
        for command in flush_commands(&cx.config) {
            let _ = plan.read::<RedisReply>(command, Wait::Full);
        }
        Ok(Some(plan.read(
            cmd("HGETALL").arg(cx.config.metrics.key.as_str()),
            Wait::Full,
        )))
    }

    async fn respond(cx: &Cx, hash: Self::Pending, _: Shared) -> Result<Reply, Problem> {
        let (scope, mut registry) = match hash {
            None => ("isolate", snapshot(&cx.config)),
            Some(hash) => match hash.take() {
                Ok(Pairs(pairs)) => ("deployment", Registry::from_fields(&pairs)),
                Err(e) => {
                    return Err(Problem::new(
                        503,
                        format!(
                            "the deployment's metrics could not be read from Redis ({e}); \
                             ?scope=isolate shows this isolate's"
                        ),
                    )
                    .header("retry-after", "1"));
                }
            },
        };
        registry.add_cache_hit_ratio();
        let mut reply = Reply::text(200, CONTENT_TYPE, registry.render());
        reply.set("x-redge-metrics-scope", scope);
        Ok(reply)
    }
}

/// This isolate's counters, with the totals the cache keeps itself and the isolate's gauges.
fn snapshot(config: &Config) -> Registry {
    let mut snapshot = state::metrics(|m| m.clone());
    snapshot.set(
        Kind::Gauge,
        "redge_isolate_start_time_seconds",
        "When this isolate served its first request (Unix seconds): a new value means counters restarted.",
        &[],
        state::started_ms() as f64 / 1000.0,
    );
    cache_counters(&mut snapshot);
    if let Some(sessions) = state::session_cache(config) {
        let (hits, misses) = sessions.stats();
        for (outcome, value) in [("hit", hits), ("miss", misses)] {
            snapshot.set(
                Kind::Counter,
                "redge_session_cache_reads_total",
                "Session reads this isolate answered from its own memory (hit) or sent to Redis (miss), with SESSION_CACHE_MS set.",
                &[("outcome", outcome)],
                value as f64,
            );
        }
    }
    if let Ok(limiter) = state::limiter(config) {
        snapshot.set(
            Kind::Gauge,
            "redge_ratelimit_blocked_identifiers",
            "Identifiers this isolate knows to be blocked, refused without a Redis call.",
            &[],
            limiter.block_cache().len() as f64,
        );
    }
    snapshot
}

/// The commands that add what this isolate's counters gained since its last flush to the deployment's
/// hash: the family descriptors (`HSET`) and one `HINCRBYFLOAT` per sample that grew. None when
/// nothing grew.
fn flush_commands(config: &Config) -> Vec<Cmd> {
    let fields = snapshot(config).fields();
    let increments = state::take_metric_increments(&fields.samples);
    if increments.is_empty() {
        return Vec::new();
    }
    let key = config.metrics.key.as_str();
    let mut describe = cmd("HSET").arg(key);
    for (field, value) in &fields.families {
        describe = describe.arg(field.as_str()).arg(value.as_str());
    }
    let mut commands = vec![describe];
    for (field, delta) in increments {
        commands.push(
            cmd("HINCRBYFLOAT")
                .arg(key)
                .arg(field.as_str())
                .arg(increment_text(delta).as_str()),
        );
    }
    commands
}

/// The flush of this isolate's increments (taken now) to the deployment's hash, one round trip metered
/// into `meter`, to run in the background (`ctx.waitUntil`) when [`state::metrics_flush_due`] says so;
/// `None` when there is nothing to send.
pub(crate) fn flush(config: Rc<Config>, meter: Rc<Meter>) -> Option<impl Future<Output = ()>> {
    let commands = flush_commands(&config);
    if commands.is_empty() {
        return None;
    }
    let transport = Metered::new(FetchTransport, meter);
    let client = Client::with_transport(&config.redis_url, &config.redis_token, transport).ok()?;
    let client = client.timeout_ms(config.redis_timeout_ms);
    Some(send_flush(client, commands))
}

async fn send_flush(client: Client<Tr>, commands: Vec<Cmd>) {
    let batch = client.batch();
    let handles: Vec<Handle<RedisReply>> = commands.into_iter().map(|c| batch.add(c)).collect();
    let failed = batch.send().await.is_err() || handles.into_iter().any(|h| h.take().is_err());
    if failed {
        state::metrics(|m| {
            m.add(
                "redge_metrics_flush_failures_total",
                "Flushes of this isolate's increments to the deployment's totals that failed (lost).",
                &[],
                1.0,
            );
        });
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
            ("colo_hit", m.colo_hits),
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

//! Counters for `GET /metrics`, written in the Prometheus text exposition format (version 0.0.4).
//!
//! Every request passes through here, so recording must cost next to nothing: each counter is an
//! atomic added to with `Relaxed` ordering (no lock, no allocation, no map lookup per request), in
//! tables whose shape is fixed at start-up: requests by route kind ([`ROUTES`]) and status code, a
//! latency histogram per route kind, refused commands by their index in the static command tables.
//! The per-request counters are kept once per server thread ([`Shard`], picked by the thread's pool
//! index, see `backend.rs`), so two threads never write the same cache line on every request; a
//! scrape adds the shards up. A scrape reads every atomic once; counters read during a scrape may be a
//! request apart from each other, which Prometheus tolerates. Gauges that the rest of the gateway already keeps (open SSE
//! streams, requests in flight, the pools) are read from there at scrape time ([`Gauges`]) rather than
//! counted twice.
//!
//! Labels only ever hold values from fixed tables: a route kind, a status code, a command name the
//! static tables know (`unknown` otherwise), never a string a client chose.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::commands;

/// The route kinds requests are counted under: the `route` of the log line ([`crate::observe::Logged`]);
/// `other` for requests no route handler answered (401 before auth passed, 404, 405, busy).
pub const ROUTES: &[&str] = &[
    "command",
    "path",
    "pipeline",
    "multi-exec",
    "subscribe",
    "psubscribe",
    "healthz",
    "livez",
    "readyz",
    "metrics",
    "other",
];

/// Upper bounds of the latency histogram's buckets, in microseconds: from 100 µs (a command on a
/// loopback Redis) to 10 s (past the default 5 s deadline), about three per decade.
const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Status codes are counted from 100 to 599, one slot each.
const FIRST_STATUS: u16 = 100;
const STATUSES: usize = 500;

/// Why a command was refused before it reached Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// On the refused list (built in, or `--refuse`), or `XREAD ... BLOCK`.
    NotSupported = 0,
    /// A read-only token asked for a command that may write.
    ReadOnly = 1,
}

/// How a Redis call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisError {
    /// Redis answered a command with an error reply (`WRONGTYPE ...`): one per command.
    Reply = 0,
    /// No answer: the connection failed, or the deadline passed.
    Unavailable = 1,
}

/// Why something was sent to Redis Cluster again (see `cluster/resend.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// `MOVED` or `READONLY`: sent again by slot, to the slot's new master.
    Moved = 0,
    /// `ASK`: sent again to the node importing the slot, after `ASKING`.
    Ask = 1,
    /// `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`, a node that could not be reached, or a
    /// read after any error: sent again after a wait.
    Wait = 2,
}

/// One latency histogram: a count per bucket (not cumulative; the last is `+Inf`) and the sum.
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

/// The bucket of a latency: the first whose bound is at least `us`, or the `+Inf` one.
fn bucket_of(us: u64) -> usize {
    LATENCY_BUCKETS_US.partition_point(|&bound| bound < us)
}

/// The index of a route kind in [`ROUTES`]; `other` when it is not one of them.
fn route_index(route: &str) -> usize {
    ROUTES
        .iter()
        .position(|r| *r == route)
        .unwrap_or(ROUTES.len() - 1)
}

/// The gateway's counters; one per process, shared by every server thread.
pub struct Metrics {
    /// The counters every request adds to, one set per server thread.
    shards: Box<[Shard]>,
    /// Per command the static tables know (and one for `unknown`), per [`Refusal`].
    refused: Box<[[AtomicU64; 2]]>,
    client_connections: AtomicUsize,
    connections_refused: AtomicU64,
    scripts_killed: AtomicU64,
    scripts_unkillable: AtomicU64,
    /// Per [`Resent`].
    cluster_resends: [AtomicU64; 3],
    cluster_gave_up: AtomicU64,
}

/// The per-request counters of one server thread, on cache lines of their own (the tables are
/// allocations of their own).
#[repr(align(128))]
struct Shard {
    /// `ROUTES.len() * STATUSES` request counts.
    requests: Box<[AtomicU64]>,
    latency: Box<[Histogram]>,
    redis_calls: AtomicU64,
    redis_errors: [AtomicU64; 2],
}

impl Shard {
    fn new() -> Self {
        Shard {
            requests: (0..ROUTES.len() * STATUSES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: (0..ROUTES.len()).map(|_| Histogram::new()).collect(),
            redis_calls: AtomicU64::new(0),
            redis_errors: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl Default for Metrics {
    /// One set of per-request counters, for a single server thread.
    fn default() -> Self {
        Metrics::new(1)
    }
}

impl Metrics {
    /// Counters for `threads` server threads (at least one set).
    pub fn new(threads: usize) -> Self {
        Metrics {
            shards: (0..threads.max(1)).map(|_| Shard::new()).collect(),
            refused: (0..=commands::KNOWN)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            client_connections: AtomicUsize::new(0),
            connections_refused: AtomicU64::new(0),
            scripts_killed: AtomicU64::new(0),
            scripts_unkillable: AtomicU64::new(0),
            cluster_resends: std::array::from_fn(|_| AtomicU64::new(0)),
            cluster_gave_up: AtomicU64::new(0),
        }
    }

    /// The calling thread's counters.
    fn shard(&self) -> &Shard {
        &self.shards[crate::backend::shard_index() % self.shards.len()]
    }

    /// A counter summed over the threads.
    fn total(&self, counter: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|shard| counter(shard).load(Ordering::Relaxed))
            .sum()
    }
}

/// Values the rest of the gateway keeps, read when a scrape is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Requests holding a `--max-concurrency` slot.
    pub requests_in_flight: usize,
    /// Open SSE streams.
    pub streams: usize,
    /// Shared Redis connections (`--pool-size`, at least one per thread).
    pub shared_connections: usize,
    /// Requests sent on the shared connections and not answered yet.
    pub shared_in_flight: usize,
    /// Idle connections kept for transactions and scripts.
    pub idle_exclusive: usize,
}

impl Metrics {
    /// Counts an answered request: its route kind (see [`ROUTES`]), status and latency.
    pub fn request(&self, route: &str, status: u16, latency_us: u64) {
        let route = route_index(route);
        let status = usize::from(status.saturating_sub(FIRST_STATUS)).min(STATUSES - 1);
        let shard = self.shard();
        shard.requests[route * STATUSES + status].fetch_add(1, Ordering::Relaxed);
        let histogram = &shard.latency[route];
        histogram.buckets[bucket_of(latency_us)].fetch_add(1, Ordering::Relaxed);
        histogram.sum_us.fetch_add(latency_us, Ordering::Relaxed);
    }

    /// Counts a call to Redis made for a request (a command, a pipeline or a transaction).
    pub fn redis_call(&self) {
        self.shard().redis_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` Redis errors of one kind.
    pub fn redis_errors(&self, kind: RedisError, n: u64) {
        if n > 0 {
            self.shard().redis_errors[kind as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts a refused command by its (upper-case) name: named only if the static tables know it.
    pub fn refused(&self, name: &str, why: Refusal) {
        let index = commands::known(name).map_or(commands::KNOWN, |(index, _)| index);
        self.refused[index][why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client connection opened; the returned guard counts it closed when dropped.
    pub fn client_connection(self: &std::sync::Arc<Self>) -> ClientConnection {
        self.client_connections.fetch_add(1, Ordering::Relaxed);
        ClientConnection(std::sync::Arc::clone(self))
    }

    /// Counts a connection closed at once because `--max-connections` were open; answers the total.
    pub fn connection_refused(&self) -> u64 {
        self.connections_refused.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a script stopped at its deadline.
    pub fn script_killed(&self) {
        self.scripts_killed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a script past its deadline that could not be stopped (it had written).
    pub fn script_unkillable(&self) {
        self.scripts_unkillable.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a command, pipeline or transaction sent to Redis Cluster again, and why.
    pub fn cluster_resend(&self, why: Resent) {
        self.cluster_resends[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request Redis Cluster still refused at the gateway's last send (answered 503).
    pub fn cluster_gave_up(&self) {
        self.cluster_gave_up.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text of every counter and of `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(8 * 1024);
        header(
            &mut out,
            "redge_gateway_requests_total",
            "counter",
            "Requests answered, by route kind and HTTP status.",
        );
        for (r, route) in ROUTES.iter().enumerate() {
            for s in 0..STATUSES {
                let n = self.total(|shard| &shard.requests[r * STATUSES + s]);
                if n > 0 {
                    let status = s + usize::from(FIRST_STATUS);
                    let _ = writeln!(
                        out,
                        "redge_gateway_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        header(
            &mut out,
            "redge_gateway_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response head, by route kind.",
        );
        for (r, route) in ROUTES.iter().enumerate() {
            let counts: Vec<u64> = (0..=LATENCY_BUCKETS_US.len())
                .map(|b| self.total(|shard| &shard.latency[r].buckets[b]))
                .collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS_US.iter().zip(&counts) {
                cumulative += n;
                let le = *bound as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "redge_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "redge_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {total}"
            );
            let sum = self.total(|shard| &shard.latency[r].sum_us) as f64 / 1e6;
            let _ = writeln!(
                out,
                "redge_gateway_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "redge_gateway_request_duration_seconds_count{{route=\"{route}\"}} {total}"
            );
        }
        gauge(
            &mut out,
            "redge_gateway_requests_in_flight",
            "Requests being handled (each holds a --max-concurrency slot).",
            gauges.requests_in_flight,
        );
        header(
            &mut out,
            "redge_gateway_redis_calls_total",
            "counter",
            "Calls to Redis made for requests: a command, a pipeline or a transaction counts one.",
        );
        let _ = writeln!(
            out,
            "redge_gateway_redis_calls_total {}",
            self.total(|shard| &shard.redis_calls)
        );
        header(
            &mut out,
            "redge_gateway_redis_errors_total",
            "counter",
            "Redis errors: kind reply is a command Redis answered with an error, kind unavailable a call \
             without an answer (connection failed or deadline passed).",
        );
        for (k, kind) in ["reply", "unavailable"].iter().enumerate() {
            let _ = writeln!(
                out,
                "redge_gateway_redis_errors_total{{kind=\"{kind}\"}} {}",
                self.total(|shard| &shard.redis_errors[k])
            );
        }
        gauge(
            &mut out,
            "redge_gateway_pool_shared_connections",
            "Shared Redis connections for commands and pipelines.",
            gauges.shared_connections,
        );
        gauge(
            &mut out,
            "redge_gateway_pool_shared_in_flight",
            "Requests sent on the shared Redis connections and not answered yet.",
            gauges.shared_in_flight,
        );
        gauge(
            &mut out,
            "redge_gateway_pool_idle_exclusive_connections",
            "Idle Redis connections kept for transactions and scripts.",
            gauges.idle_exclusive,
        );
        header(
            &mut out,
            "redge_gateway_refused_commands_total",
            "counter",
            "Commands refused before reaching Redis, by name (unknown unless the static tables know it) \
             and reason (not_supported, read_only).",
        );
        for (index, counts) in self.refused.iter().enumerate() {
            let name = commands::known_name(index).unwrap_or("unknown");
            for (reason, n) in ["not_supported", "read_only"].iter().zip(counts) {
                let n = load(n);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "redge_gateway_refused_commands_total{{command=\"{name}\",reason=\"{reason}\"}} {n}"
                    );
                }
            }
        }
        gauge(
            &mut out,
            "redge_gateway_client_connections",
            "Open client connections.",
            self.client_connections.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "redge_gateway_connections_refused_total",
            "Client connections closed at once because --max-connections were open.",
            load(&self.connections_refused),
        );
        gauge(
            &mut out,
            "redge_gateway_sse_streams",
            "Open SSE streams (each holds a Redis connection).",
            gauges.streams,
        );
        counter(
            &mut out,
            "redge_gateway_scripts_killed_total",
            "Scripts stopped with SCRIPT KILL or FUNCTION KILL at their deadline.",
            load(&self.scripts_killed),
        );
        counter(
            &mut out,
            "redge_gateway_scripts_unkillable_total",
            "Scripts past their deadline that could not be stopped because they had written.",
            load(&self.scripts_unkillable),
        );
        header(
            &mut out,
            "redge_gateway_cluster_resends_total",
            "counter",
            "Redis Cluster mode: sends repeated because the cluster did not run what was sent, by reason \
             (moved: MOVED or READONLY; ask: ASK; wait: TRYAGAIN, CLUSTERDOWN, an unreachable node, or a \
             read after any error). Zero on a single node.",
        );
        for (k, reason) in ["moved", "ask", "wait"].iter().enumerate() {
            let _ = writeln!(
                out,
                "redge_gateway_cluster_resends_total{{reason=\"{reason}\"}} {}",
                load(&self.cluster_resends[k])
            );
        }
        counter(
            &mut out,
            "redge_gateway_cluster_gave_up_total",
            "Redis Cluster mode: requests answered 503 because the cluster still refused them at the last \
             send (a slot without a master for longer than the request's deadline allows).",
            load(&self.cluster_gave_up),
        );
        out
    }
}

/// Counts one open client connection until dropped.
pub struct ClientConnection(std::sync::Arc<Metrics>);

impl Drop for ClientConnection {
    fn drop(&mut self) {
        self.0.client_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: usize) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' '))
    }

    #[test]
    fn latencies_fall_in_the_first_bucket_whose_bound_holds_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0, "bounds are inclusive (le)");
        assert_eq!(bucket_of(101), 1);
        assert_eq!(bucket_of(10_000_000), LATENCY_BUCKETS_US.len() - 1);
        assert_eq!(bucket_of(10_000_001), LATENCY_BUCKETS_US.len(), "+Inf");
    }

    #[test]
    fn requests_are_counted_by_route_and_status_with_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.request("command", 200, 80);
        metrics.request("command", 200, 300);
        metrics.request("command", 400, 20_000_000);
        metrics.request("not-a-route", 401, 50);
        let text = metrics.render(&Gauges::default());
        let count = |prefix: &str| line(&text, prefix);
        assert_eq!(
            count(r#"redge_gateway_requests_total{route="command",status="200"}"#),
            Some("2")
        );
        assert_eq!(
            count(r#"redge_gateway_requests_total{route="command",status="400"}"#),
            Some("1")
        );
        assert_eq!(
            count(r#"redge_gateway_requests_total{route="other",status="401"}"#),
            Some("1")
        );
        assert_eq!(
            count(r#"redge_gateway_request_duration_seconds_bucket{route="command",le="0.0001"}"#),
            Some("1")
        );
        assert_eq!(
            count(r#"redge_gateway_request_duration_seconds_bucket{route="command",le="0.0005"}"#),
            Some("2")
        );
        assert_eq!(
            count(r#"redge_gateway_request_duration_seconds_bucket{route="command",le="10"}"#),
            Some("2")
        );
        assert_eq!(
            count(r#"redge_gateway_request_duration_seconds_bucket{route="command",le="+Inf"}"#),
            Some("3")
        );
        assert_eq!(
            count(r#"redge_gateway_request_duration_seconds_count{route="command"}"#),
            Some("3")
        );
        assert_eq!(
            count(r#"redge_gateway_request_duration_seconds_sum{route="command"}"#),
            Some("20.00038")
        );
        assert!(
            !text.contains(r#"route="path""#),
            "routes without requests are left out"
        );
    }

    #[test]
    fn each_thread_counts_in_its_own_shard_and_a_scrape_adds_them_up() {
        let metrics = std::sync::Arc::new(Metrics::new(2));
        let threads: Vec<_> = (0..2)
            .map(|index| {
                let metrics = std::sync::Arc::clone(&metrics);
                std::thread::spawn(move || {
                    crate::backend::set_shard(index);
                    for _ in 0..=index {
                        metrics.request("path", 200, 10);
                        metrics.redis_call();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(metrics.shards[0].redis_calls.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.shards[1].redis_calls.load(Ordering::Relaxed), 2);
        let text = metrics.render(&Gauges::default());
        assert_eq!(
            line(
                &text,
                r#"redge_gateway_requests_total{route="path",status="200"}"#
            ),
            Some("3")
        );
        assert_eq!(line(&text, "redge_gateway_redis_calls_total"), Some("3"));
        assert_eq!(
            line(
                &text,
                r#"redge_gateway_request_duration_seconds_count{route="path"}"#
            ),
            Some("3")
        );
    }

    #[test]
    fn refused_commands_are_named_only_from_the_static_tables() {
        let metrics = Metrics::default();
        metrics.refused("FLUSHALL", Refusal::NotSupported);
        metrics.refused("SET", Refusal::ReadOnly);
        metrics.refused("MY-SECRET-VALUE", Refusal::NotSupported);
        let text = metrics.render(&Gauges::default());
        assert!(text.contains(
            "redge_gateway_refused_commands_total{command=\"FLUSHALL\",reason=\"not_supported\"} 1"
        ));
        assert!(text.contains(
            "redge_gateway_refused_commands_total{command=\"SET\",reason=\"read_only\"} 1"
        ));
        assert!(text.contains(
            "redge_gateway_refused_commands_total{command=\"unknown\",reason=\"not_supported\"} 1"
        ));
        assert!(!text.contains("SECRET"));
    }

    #[test]
    fn client_connections_are_counted_while_open() {
        let metrics = std::sync::Arc::new(Metrics::default());
        let first = metrics.client_connection();
        let second = metrics.client_connection();
        drop(first);
        let text = metrics.render(&Gauges::default());
        assert_eq!(line(&text, "redge_gateway_client_connections"), Some("1"));
        drop(second);
        let text = metrics.render(&Gauges::default());
        assert_eq!(line(&text, "redge_gateway_client_connections"), Some("0"));
    }
}

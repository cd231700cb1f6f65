//! The connections to Redis and the one place where commands are sent.
//!
//! Ordinary commands and pipelines share a small pool of multiplexed connections (`--pool-size`, each a
//! [`ConnectionManager`]): on one connection requests are written back to back on one socket and answered
//! in order, and each connection reconnects by itself after Redis restarts. Several connections spread
//! the work of writing and parsing across the runtime's threads, and a slow command (a big `SCAN` page)
//! holds up only the requests queued behind it on its own connection: each request takes the
//! connection with the fewest requests in flight, starting the search at a rotating position so that
//! an idle pool is used round-robin. Transactions and scripts never use these shared connections: each
//! takes one of its own (`exclusive.rs`), because a transaction must not share its socket while `MULTI`
//! is open, and a script can run for ever or answer with a reply that breaks the connection it came
//! on. Each SSE stream opens its own pub/sub connection.
//!
//! The server runs one single-threaded runtime per thread (`--threads`, see [`crate::run`]), and the
//! shared connections are split into one pool per thread ([`set_shard`]): a request only ever uses
//! connections whose tasks run on its own thread, so a command and its reply never wake another
//! thread (measured: cross-thread wake-ups were the largest cost of one multi-threaded runtime).
//!
//! With `--redis-cluster-nodes` the gateway talks to a Redis Cluster instead ([`Backend::Cluster`],
//! `cluster.rs`); every route asks [`Backend`], which hands the call to one or the other, so the
//! single-node path costs one match more than it would alone.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{Client, Cmd, Pipeline, Value};

use crate::cluster::Cluster;
use crate::error::GatewayError;
use crate::exclusive::{Kill, Transaction};
use crate::metrics::{Metrics, RedisError};

/// A refused connection fails at once; a silent host after this long.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where commands go: one Redis, or a Redis Cluster.
// One value per process, inside the shared state: boxing either variant would only add an
// indirection to every request.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// One redis-server (or a primary behind a fixed address).
    Node(Node),
    /// A Redis Cluster, routed by hash slot.
    Cluster(Cluster),
}

impl Backend {
    /// Runs one command (see [`Node::single`], [`Cluster::single`]).
    pub async fn single(&self, args: &[Vec<u8>]) -> Result<Value, GatewayError> {
        match self {
            Backend::Node(node) => node.single(args).await,
            Backend::Cluster(cluster) => cluster.single(args).await,
        }
    }

    /// Runs a pipeline, one value per command (see [`Node::pipeline`], [`Cluster::pipeline`]).
    pub async fn pipeline(&self, commands: &[Vec<Vec<u8>>]) -> Result<Vec<Value>, GatewayError> {
        match self {
            Backend::Node(node) => node.pipeline(commands).await,
            Backend::Cluster(cluster) => cluster.pipeline(commands).await,
        }
    }

    /// Runs a transaction (see [`Node::transaction`], [`Cluster::transaction`]).
    pub async fn transaction(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Transaction, GatewayError> {
        match self {
            Backend::Node(node) => node.transaction(commands).await,
            Backend::Cluster(cluster) => cluster.transaction(commands).await,
        }
    }

    /// Whether Redis answers (for `/healthz`).
    pub async fn healthy(&self) -> bool {
        self.ping(self.deadline()).await.is_ok()
    }

    /// Whether requests can be served, within `timeout`, with the reason when not (for `/readyz`).
    pub async fn ping(&self, timeout: Duration) -> Result<(), GatewayError> {
        match self {
            Backend::Node(node) => node.ping(timeout).await,
            Backend::Cluster(cluster) => cluster.ping(timeout).await,
        }
    }

    /// A new pub/sub connection, for one SSE stream.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, GatewayError> {
        match self {
            Backend::Node(node) => node.pubsub().await,
            Backend::Cluster(cluster) => cluster.pubsub().await,
        }
    }

    /// The per-call deadline.
    pub fn deadline(&self) -> Duration {
        match self {
            Backend::Node(node) => node.deadline,
            Backend::Cluster(cluster) => cluster.deadline,
        }
    }

    /// The state of the connections, for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        match self {
            Backend::Node(node) => node.pool_stats(),
            Backend::Cluster(cluster) => cluster.pool_stats(),
        }
    }
}

/// Connections to one Redis.
pub struct Node {
    pub(crate) client: Client,
    /// One pool of shared connections per server thread.
    shards: Box<[Pool]>,
    /// Idle connections for requests that need one to themselves (see `exclusive.rs`).
    pub(crate) idle: Mutex<Vec<MultiplexedConnection>>,
    pub(crate) max_idle: usize,
    /// Used for nothing but `SCRIPT KILL` and `FUNCTION KILL`, so that a kill never waits behind
    /// the script it is meant to stop.
    pub(crate) killer: ConnectionManager,
    pub(crate) deadline: Duration,
    pub(crate) metrics: Arc<Metrics>,
}

/// The state of the pools, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Shared connections over every thread.
    pub shared_connections: usize,
    /// Requests sent on them and not answered yet.
    pub shared_in_flight: usize,
    /// Idle connections kept for transactions and scripts.
    pub idle_exclusive: usize,
}

impl Node {
    /// Sets up the connections lazily: the gateway starts, and keeps running, while Redis is down.
    ///
    /// `pool_size` shared connections for commands and pipelines, split evenly over `shards` pools (at
    /// least one connection each); at most `max_idle` idle connections kept for transactions.
    ///
    /// # Errors
    /// A connection manager could not be set up.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        deadline: Duration,
        pool_size: usize,
        shards: usize,
        max_idle: usize,
    ) -> redis::RedisResult<Node> {
        // One retry only: a request waits at most for the deadline, and the next request tries to
        // reconnect again. No response timeout of the library's own: `within` already puts the deadline
        // on every call (a second timer per request costs throughput and says the same).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let shards = shards.max(1);
        let per_shard = pool_size.max(1).div_ceil(shards);
        let pools = (0..shards)
            .map(|_| Pool::new(&client, &config, per_shard))
            .collect::<redis::RedisResult<Vec<_>>>()?;
        let killer = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        Ok(Node {
            client,
            shards: pools.into_boxed_slice(),
            killer,
            idle: Mutex::new(Vec::new()),
            max_idle,
            deadline,
            metrics,
        })
    }

    /// Counts a call to Redis made for a request, and its errors (see [`count`]).
    pub(crate) fn record<T>(
        &self,
        outcome: &Result<T, GatewayError>,
        replies: impl FnOnce(&T) -> usize,
    ) {
        count(&self.metrics, outcome, replies);
    }

    /// The state of the pools.
    pub fn pool_stats(&self) -> PoolStats {
        let slots = self.shards.iter().flat_map(|pool| pool.slots.iter());
        PoolStats {
            shared_connections: slots.clone().count(),
            shared_in_flight: slots
                .map(|slot| slot.in_flight.load(Ordering::Relaxed))
                .sum(),
            idle_exclusive: self.idle.lock().unwrap_or_else(|e| e.into_inner()).len(),
        }
    }

    /// Runs one command on a shared connection; a script on a connection of its own (see
    /// `exclusive.rs`).
    pub async fn single(&self, args: &[Vec<u8>]) -> Result<Value, GatewayError> {
        let outcome = self.single_unrecorded(args).await;
        self.record(&outcome, |_| 0);
        outcome
    }

    async fn single_unrecorded(&self, args: &[Vec<u8>]) -> Result<Value, GatewayError> {
        if let Some(kill) = Kill::of(args) {
            let mut pipe = Pipeline::with_capacity(1);
            pipe.add_command(build(args));
            return self
                .isolated(&pipe, kill)
                .await
                .and_then(|mut values| match values.pop() {
                    Some(Value::ServerError(e)) => Err(GatewayError::Redis(server_error_text(&e))),
                    Some(value) => Ok(value),
                    None => Err(GatewayError::Unavailable("no reply".into())),
                });
        }
        let command = &build(args);
        let reply = self
            .within_pool(
                || std::iter::once(args),
                |mut conn| async move { conn.send_packed_command(command).await },
            )
            .await?;
        match reply {
            Value::ServerError(e) => Err(GatewayError::Redis(server_error_text(&e))),
            value => Ok(value),
        }
    }

    /// Runs commands in order on one shared connection, not atomically; one value per command. A
    /// pipeline that runs a script goes to a connection of its own, as a lone script does.
    pub async fn pipeline(&self, commands: &[Vec<Vec<u8>>]) -> Result<Vec<Value>, GatewayError> {
        let outcome = self.pipeline_unrecorded(commands).await;
        self.record(&outcome, |values| error_replies(values));
        outcome
    }

    async fn pipeline_unrecorded(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Vec<Value>, GatewayError> {
        let mut pipe = Pipeline::with_capacity(commands.len());
        for args in commands {
            pipe.add_command(build(args));
        }
        if let Some(kill) = Kill::of_any(commands) {
            return self.isolated(&pipe, kill).await;
        }
        let pipe = &pipe;
        self.within_pool(
            || commands.iter().map(Vec::as_slice),
            |mut conn| async move { conn.send_packed_commands(pipe, 0, commands.len()).await },
        )
        .await
    }

    /// Whether Redis answers `PING` within `timeout` on at least one shared connection of the calling
    /// thread, with the reason when it does not: the error of the first connection asked. Every one of
    /// them is asked, so this also re-establishes those that died with a Redis restart (the other
    /// threads' connections are left to their own threads, so that each stays driven by its thread).
    pub async fn ping(&self, timeout: Duration) -> Result<(), GatewayError> {
        let pings = self.shard().slots.iter().map(|slot| {
            let mut conn = slot.conn.clone();
            async move {
                let ping = redis::cmd("PING");
                match tokio::time::timeout(timeout, conn.send_packed_command(&ping)).await {
                    Ok(Ok(Value::ServerError(e))) => {
                        Err(GatewayError::Redis(server_error_text(&e)))
                    }
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(GatewayError::from_redis(&e)),
                    Err(_) => Err(GatewayError::timeout(timeout)),
                }
            }
        });
        let outcomes = futures_util::future::join_all(pings).await;
        if outcomes.iter().any(Result::is_ok) {
            return Ok(());
        }
        outcomes
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// [`Node::within`] for a call on a shared connection of the calling thread.
    ///
    /// A connection that turns out to be broken (Redis restarted or went away) starts a sweep over the
    /// pool, since its siblings most likely broke with it, and the call is tried again (the
    /// connection manager reconnects first) when that cannot run anything twice: when the call failed
    /// before it was ever waiting for Redis (a connection found dead on the first poll had nothing
    /// written to it: that is the first request on each connection after a Redis restart), or once
    /// when every command of `commands` only reads.
    async fn within_pool<'a, T, I, F>(
        &self,
        commands: impl Fn() -> I,
        call: impl Fn(ConnectionManager) -> F,
    ) -> Result<T, GatewayError>
    where
        I: Iterator<Item = &'a [Vec<u8>]>,
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.within(async {
            // Each connection of the pool may be found dead once (they all died with Redis); a call
            // that did reach Redis is repeated at most once, and only when it only reads.
            let pool = self.shard();
            let mut dead_found = 0;
            let mut repeated = false;
            loop {
                let (conn, in_flight) = pool.pick();
                let (result, at_once) = first_poll(call(conn)).await;
                drop(in_flight);
                let broken = match &result {
                    Err(e) => {
                        e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
                    }
                    Ok(_) => false,
                };
                if !broken {
                    return result;
                }
                pool.sweep(self.deadline);
                if at_once && dead_found < pool.slots.len() {
                    dead_found += 1;
                } else if !repeated && commands().all(only_reads) {
                    repeated = true;
                } else {
                    return result;
                }
            }
        })
        .await
    }

    /// The pool of the calling thread.
    fn shard(&self) -> &Pool {
        &self.shards[SHARD.with(Cell::get) % self.shards.len()]
    }

    /// A new pub/sub connection, for one SSE stream.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, GatewayError> {
        self.within(self.client.get_async_pubsub()).await
    }

    /// Awaits a Redis call within the per-command deadline.
    pub(crate) async fn within<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, GatewayError> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            // The connection's own response timeout is the same deadline: report both alike.
            Ok(Err(e)) if e.is_timeout() => Err(GatewayError::timeout(self.deadline)),
            Ok(Err(e)) => Err(GatewayError::from_redis(&e)),
            Err(_) => Err(GatewayError::timeout(self.deadline)),
        }
    }
}

thread_local! {
    /// Which pool of shared connections this thread's requests use.
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// The index [`set_shard`] gave the calling thread (0 if none): also picks its set of metrics.
pub fn shard_index() -> usize {
    SHARD.with(Cell::get)
}

/// Makes the calling thread's requests use pool `index` (taken modulo the number of pools). Threads
/// that never call it use pool 0.
pub fn set_shard(index: usize) {
    SHARD.with(|s| s.set(index));
}

/// The shared connections of one server thread.
struct Pool {
    slots: Box<[Slot]>,
    /// Where the next search for the least loaded connection starts.
    next: AtomicUsize,
    sweep: Arc<Sweep>,
}

struct Slot {
    conn: ConnectionManager,
    /// Requests sent on this connection and not answered yet (or given up on).
    in_flight: AtomicUsize,
}

/// Counts a request in flight on a connection until dropped: also when the request's future is
/// dropped half-way (deadline, client gone).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// At most one sweep at a time, and at most one every [`SWEEP_INTERVAL`], so a Redis that stays down
/// does not turn every failed request into a round of connection attempts.
struct Sweep {
    running: AtomicBool,
    epoch: Instant,
    /// When the last sweep started, in milliseconds since `epoch`.
    last_ms: AtomicU64,
}

/// The shortest time between two sweeps.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

impl Pool {
    fn new(
        client: &Client,
        config: &ConnectionManagerConfig,
        size: usize,
    ) -> redis::RedisResult<Pool> {
        let slots = (0..size)
            .map(|_| {
                Ok(Slot {
                    conn: ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
                    in_flight: AtomicUsize::new(0),
                })
            })
            .collect::<redis::RedisResult<Vec<_>>>()?;
        Ok(Pool {
            slots: slots.into_boxed_slice(),
            next: AtomicUsize::new(0),
            sweep: Arc::new(Sweep {
                running: AtomicBool::new(false),
                epoch: Instant::now(),
                last_ms: AtomicU64::new(0),
            }),
        })
    }

    /// Sends `PING` on every shared connection in the background. A connection that died is then
    /// noticed by the connection manager and re-established at once, before a request reaches it (a
    /// connection manager otherwise learns of a dead connection only by failing the next request on
    /// it). `PING` changes nothing in Redis, so it is always safe to send.
    fn sweep(&self, deadline: Duration) {
        let sweep = &self.sweep;
        let now_ms = sweep.epoch.elapsed().as_millis() as u64;
        let last = sweep.last_ms.load(Ordering::Relaxed);
        if (last != 0 && now_ms.saturating_sub(last) < SWEEP_INTERVAL.as_millis() as u64)
            || sweep.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        sweep.last_ms.store(now_ms.max(1), Ordering::Relaxed);
        let conns: Vec<ConnectionManager> = self.slots.iter().map(|s| s.conn.clone()).collect();
        let sweep = Arc::clone(sweep);
        tokio::spawn(async move {
            let pings = conns.into_iter().map(|mut conn| async move {
                let ping = redis::cmd("PING");
                let _ = tokio::time::timeout(deadline, conn.send_packed_command(&ping)).await;
            });
            futures_util::future::join_all(pings).await;
            sweep.running.store(false, Ordering::Release);
        });
    }

    /// The connection with the fewest requests in flight; among equals, the first from a position that
    /// moves on by one for every request (so an idle pool is used round-robin).
    fn pick(&self) -> (ConnectionManager, InFlight<'_>) {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = &self.slots[start];
        let mut best_load = best.in_flight.load(Ordering::Relaxed);
        for i in 1..n {
            if best_load == 0 {
                break;
            }
            let slot = &self.slots[(start + i) % n];
            let load = slot.in_flight.load(Ordering::Relaxed);
            if load < best_load {
                best = slot;
                best_load = load;
            }
        }
        best.in_flight.fetch_add(1, Ordering::Relaxed);
        (best.conn.clone(), InFlight(&best.in_flight))
    }
}

/// Awaits `call`, and tells whether it finished on its first poll (without ever waiting).
pub(crate) async fn first_poll<T>(call: impl Future<Output = T>) -> (T, bool) {
    let mut call = std::pin::pin!(call);
    let mut first = true;
    std::future::poll_fn(|cx| {
        let at_once = std::mem::replace(&mut first, false);
        call.as_mut().poll(cx).map(|value| (value, at_once))
    })
    .await
}

/// Counts a call to Redis made for a request, and its errors: `replies` error replies among its
/// commands, or the call's own failure.
pub(crate) fn count<T>(
    metrics: &Metrics,
    outcome: &Result<T, GatewayError>,
    replies: impl FnOnce(&T) -> usize,
) {
    metrics.redis_call();
    match outcome {
        Ok(values) => metrics.redis_errors(RedisError::Reply, replies(values) as u64),
        Err(GatewayError::Redis(_) | GatewayError::CrossSlot(_)) => {
            metrics.redis_errors(RedisError::Reply, 1)
        }
        Err(_) => metrics.redis_errors(RedisError::Unavailable, 1),
    }
}

/// How many entries of a batch's replies are error replies.
pub(crate) fn error_replies(values: &[Value]) -> usize {
    values
        .iter()
        .filter(|v| matches!(v, Value::ServerError(_)))
        .count()
}

/// Whether a command only reads, so that running it twice changes nothing.
fn only_reads(args: &[Vec<u8>]) -> bool {
    redge::client::read_only::is_read_only(args)
}

pub(crate) fn build(args: &[Vec<u8>]) -> Cmd {
    let mut command = Cmd::new();
    for arg in args {
        command.arg(arg.as_slice());
    }
    command
}

/// Redis's error text, verbatim: `CODE message`.
pub fn server_error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(detail) => format!("{} {detail}", e.code()),
        None => e.code().to_owned(),
    }
}

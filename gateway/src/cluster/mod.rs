//! The gateway in front of a Redis Cluster (`--redis-cluster-nodes`).
//!
//! The cluster client of the Redis client library keeps one connection per node, learns which master
//! serves which hash slot, and refreshes that map when a node fails or answers `MOVED` (after a
//! failover, a replica promoted in place of a dead master). The gateway adds what an HTTP request
//! needs on top:
//!
//! - Nothing is sent twice unless Redis said it did not run it: the library retries nothing, and
//!   the gateway follows `MOVED` and `ASK` and waits out `TRYAGAIN` or `CLUSTERDOWN` itself, per
//!   command within a pipeline (`resend.rs`). A write whose connection broke after it was sent is
//!   answered 503, as on one node.
//! - Single commands are routed by the library's own table: by key slot, or to every master and
//!   aggregated (`DBSIZE` summed, `KEYS` concatenated, `FLUSHDB` on each), or to any node (`TIME`).
//! - A pipeline is split by slot (`slots.rs`): the commands of one slot go as one pipeline to their
//!   master, in request order; the parts run concurrently and their answers are put back in request
//!   order. A command without a key, or whose keys span slots, could see keys of any slot: it runs
//!   alone, after everything before it and before everything after it.
//! - A transaction, or a script (`EVAL`, `EVALSHA`, `FCALL`), runs on one node, so all its keys must
//!   hash to one slot: the gateway checks that before anything is sent and answers 400 `CROSSSLOT`
//!   naming two keys and the hash-tag fix. Without keys, it runs on the master of slot 0.
//! - As on one node, transactions and scripts never share a connection: each takes a cluster
//!   connection of its own from a small idle pool (each with sockets of its own to the nodes), and a
//!   script past the deadline is stopped with `SCRIPT KILL` / `FUNCTION KILL` sent to the master of
//!   its slot on a connection used for nothing else (`exclusive.rs`; `crate::exclusive` explains
//!   the timing).
//! - Each node has its own script cache: `SCRIPT LOAD` goes to every node, and an `EVALSHA` answered
//!   `NOSCRIPT` is run again at once as `EVAL` when the gateway has seen the script's source
//!   (`scripts.rs`). Inside `/pipeline` and `/multi-exec` such an `EVALSHA` is sent as `EVAL` from the
//!   start, since a retry there would run it after the commands that followed it, or outside `MULTI`.
//! - `SCAN` walks every master in turn with a cursor of the gateway's own (`scan.rs`).
//! - Classic pub/sub is cluster-wide (every node forwards every `PUBLISH`), so an SSE stream subscribes
//!   on any one node that answers, trying the seed nodes in order.
//!
//! Each server thread gets one shared cluster connection, opened by that thread on first use (so
//! its tasks run on the thread's own runtime, as the single-node pools do): `--pool-size` does not
//! apply, since every cluster connection multiplexes all requests of its thread onto one socket per
//! node.
//!
//! A node that dies leaves a dead socket in every cluster connection that had one to it, and a write
//! sent on a dead socket fails with the same error as a write whose answer was lost, so it is
//! answered 503 rather than sent again. To keep that to the requests in flight when the node died,
//! every connection carries the failure epoch it was opened in: an I/O error from any connection
//! starts a new epoch, and a connection from an earlier epoch (a thread's shared one, an idle one for
//! transactions and scripts) is replaced by a new one, with a fresh slot map, before its next use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redge::client::read_only::is_read_only;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{ConnectionInfo, Value};

mod exclusive;
mod resend;
mod scan;

use crate::backend::{
    CONNECT_TIMEOUT, PoolStats, build, count, error_replies, server_error_text, shard_index,
};
use crate::error::GatewayError;
use crate::exclusive::{Kill, Transaction};
use crate::metrics::Metrics;
use crate::policy::command_name;
use crate::scripts::Scripts;
use crate::slots;
use resend::{Conn, Unit};

/// A connection and the failure epoch it was opened in.
type Opened = (u64, Conn);

/// Connections to a Redis Cluster.
pub struct Cluster {
    client: ClusterClient,
    /// The seed nodes, for pub/sub connections.
    seeds: Vec<redis::Client>,
    /// One shared connection per server thread, with the epoch it was opened in.
    shards: Box<[Mutex<Option<Opened>>]>,
    /// Idle connections for transactions and scripts, with the epoch each was opened in.
    idle: Mutex<Vec<Opened>>,
    /// Moves up with every I/O error a cluster call answers: connections opened in an earlier epoch
    /// may hold a socket to a node that has died since, and are replaced before their next use.
    epoch: AtomicU64,
    max_idle: usize,
    /// Used for nothing but `SCRIPT KILL` and `FUNCTION KILL`, with the epoch it was opened in.
    killer: Mutex<Option<Opened>>,
    scripts: Arc<Scripts>,
    pub(crate) deadline: Duration,
    metrics: Arc<Metrics>,
}

impl Cluster {
    /// Sets up the client; no connection is opened before the first request, so the gateway starts
    /// (and keeps running) while the cluster is down.
    ///
    /// # Errors
    /// The seed nodes are not a valid cluster configuration (different passwords, a Unix socket ...).
    pub fn new(
        seeds: Vec<ConnectionInfo>,
        scripts: Arc<Scripts>,
        metrics: Arc<Metrics>,
        deadline: Duration,
        shards: usize,
        max_idle: usize,
    ) -> redis::RedisResult<Cluster> {
        let seed_clients = seeds
            .iter()
            .cloned()
            .map(redis::Client::open)
            .collect::<redis::RedisResult<Vec<_>>>()?;
        // No retries in the library: the gateway sends a command again only when Redis did not
        // run it (`resend.rs`).
        let client = ClusterClientBuilder::new(seeds)
            .connection_timeout(CONNECT_TIMEOUT)
            .retries(0)
            .build()?;
        Ok(Cluster {
            client,
            seeds: seed_clients,
            shards: (0..shards.max(1)).map(|_| Mutex::new(None)).collect(),
            idle: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
            max_idle,
            killer: Mutex::new(None),
            scripts,
            deadline,
            metrics,
        })
    }

    /// Connections open, for `/metrics`: one shared cluster connection per thread that has used one.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            shared_connections: self
                .shards
                .iter()
                .filter(|s| s.lock().unwrap_or_else(|e| e.into_inner()).is_some())
                .count(),
            shared_in_flight: 0,
            idle_exclusive: self.idle.lock().unwrap_or_else(|e| e.into_inner()).len(),
        }
    }

    /// Runs one command: routed by the library, a script on a connection of its own, `SCAN` over
    /// every master.
    pub async fn single(&self, args: &[Vec<u8>]) -> Result<Value, GatewayError> {
        let outcome = self.single_unrecorded(args).await;
        count(&self.metrics, &outcome, |_| 0);
        outcome
    }

    async fn single_unrecorded(&self, args: &[Vec<u8>]) -> Result<Value, GatewayError> {
        let name = command_name(args);
        if let Some(kill) = Kill::of(args) {
            let slot = slot_of([(name.as_str(), args)])?;
            return self.script(args, slot, kill).await;
        }
        if name == "SCAN" {
            return self.scan(args).await;
        }
        let mut conn = self.shared().await?;
        reply(
            self.within(resend::command(&mut conn, args, &self.watch()))
                .await?,
        )
    }

    /// A script alone, on the master of `slot`; `EVALSHA` answered `NOSCRIPT` runs again as `EVAL`
    /// when the source is known.
    async fn script(&self, args: &[Vec<u8>], slot: u16, kill: Kill) -> Result<Value, GatewayError> {
        let read_only = is_read_only(args);
        let mut values = self
            .exclusive(
                vec![build(args)],
                slot,
                Some(kill),
                Unit::Whole { read_only },
            )
            .await?;
        let value = values.pop().unwrap_or(Value::Nil);
        if let Value::ServerError(e) = &value
            && e.code() == "NOSCRIPT"
            && let Some(eval) = self.as_eval(args)
        {
            let mut values = self
                .exclusive(
                    vec![build(&eval)],
                    slot,
                    Some(kill),
                    Unit::Whole { read_only },
                )
                .await?;
            return reply(values.pop().unwrap_or(Value::Nil));
        }
        reply(value)
    }

    /// `EVALSHA sha ...` as `EVAL source ...` (and the `_RO` variant alike), when the source is known.
    fn as_eval(&self, args: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
        let name = command_name(args);
        let eval: &[u8] = match name.as_str() {
            "EVALSHA" => b"EVAL",
            "EVALSHA_RO" => b"EVAL_RO",
            _ => return None,
        };
        let source = self.scripts.source(args.get(1)?)?;
        let mut rewritten = Vec::with_capacity(args.len());
        rewritten.push(eval.to_vec());
        rewritten.push(source);
        rewritten.extend_from_slice(&args[2..]);
        Some(rewritten)
    }

    /// Runs commands in order per slot, the slots concurrently; one value per command, in request
    /// order. A script or a transaction refused for spanning slots refuses the whole request before
    /// anything runs.
    pub async fn pipeline(&self, commands: &[Vec<Vec<u8>>]) -> Result<Vec<Value>, GatewayError> {
        let outcome = self.pipeline_unrecorded(commands).await;
        count(&self.metrics, &outcome, |values| error_replies(values));
        outcome
    }

    async fn pipeline_unrecorded(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Vec<Value>, GatewayError> {
        let commands = self.inline_scripts(commands);
        let names: Vec<String> = commands.iter().map(|args| command_name(args)).collect();
        for (name, args) in names.iter().zip(&commands) {
            if Kill::of(args).is_some() {
                slot_of([(name.as_str(), args.as_slice())])?;
            }
        }
        // Wave after wave (`slots::split`): the parts of one wave run concurrently.
        let waves = slots::split(&names, &commands);
        let mut values: Vec<Option<Value>> = vec![None; commands.len()];
        for parts in &waves {
            let runs = parts.iter().map(|part| {
                let commands = &commands;
                async move {
                    let Some(slot) = part.slot else {
                        // A part of its own: routed (or split, or refused) as a single command is.
                        let args = &commands[part.commands[0]];
                        return match self.single_unrecorded(args).await {
                            Ok(value) => Ok(vec![value]),
                            Err(GatewayError::Redis(text)) => Ok(vec![error_value(&text)]),
                            Err(e) => Err(e),
                        };
                    };
                    let part_commands: Vec<&[Vec<u8>]> = part
                        .commands
                        .iter()
                        .map(|&i| commands[i].as_slice())
                        .collect();
                    let kill = part_commands
                        .iter()
                        .filter_map(|args| Kill::of(args))
                        .reduce(Kill::either);
                    let read_only = part_commands.iter().all(|args| is_read_only(args));
                    let cmds = part_commands.iter().map(|args| build(args)).collect();
                    let unit = Unit::Each { read_only };
                    if kill.is_some() {
                        return self.exclusive(cmds, slot, kill, unit).await;
                    }
                    let mut conn = self.shared().await?;
                    // Commands that reach a node which does not serve their slot (any more) are answered
                    // `MOVED` without running; only those are sent again (`resend.rs`).
                    self.within(resend::pipeline(&mut conn, cmds, slot, unit, &self.watch()))
                        .await
                }
            });
            let answers = futures_util::future::join_all(runs).await;
            for (part, answer) in parts.iter().zip(answers) {
                for (&i, value) in part.commands.iter().zip(answer?) {
                    values[i] = Some(value);
                }
            }
        }
        values
            .into_iter()
            .map(|v| v.ok_or_else(|| GatewayError::Unavailable("a reply is missing".into())))
            .collect()
    }

    /// The commands with each `EVALSHA` whose source is known sent as `EVAL` (see the module doc).
    fn inline_scripts(&self, commands: &[Vec<Vec<u8>>]) -> Vec<Vec<Vec<u8>>> {
        commands
            .iter()
            .map(|args| self.as_eval(args).unwrap_or_else(|| args.clone()))
            .collect()
    }

    /// `MULTI`, the commands and `EXEC` on the master of their slot, on a connection used by nobody
    /// else meanwhile; refused with `CROSSSLOT` before anything is sent when the keys span slots.
    pub async fn transaction(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Transaction, GatewayError> {
        let outcome = self.transaction_unrecorded(commands).await;
        count(&self.metrics, &outcome, Transaction::error_replies);
        outcome
    }

    async fn transaction_unrecorded(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Transaction, GatewayError> {
        let commands = self.inline_scripts(commands);
        let names: Vec<String> = commands.iter().map(|args| command_name(args)).collect();
        let slot = slot_of(
            names
                .iter()
                .zip(&commands)
                .map(|(n, a)| (n.as_str(), a.as_slice())),
        )?;
        let mut cmds = Vec::with_capacity(commands.len() + 2);
        cmds.push(redis::cmd("MULTI"));
        cmds.extend(commands.iter().map(|args| build(args)));
        cmds.push(redis::cmd("EXEC"));
        let read_only = commands.iter().all(|args| is_read_only(args));
        let unit = Unit::Whole { read_only };
        let mut replies = self
            .exclusive(cmds, slot, Kill::of_any(&commands), unit)
            .await?;
        match replies.pop() {
            Some(Value::Array(values)) => Ok(Transaction::Committed(values)),
            Some(Value::ServerError(e)) => Ok(Transaction::Discarded(server_error_text(&e))),
            other => Err(GatewayError::Unavailable(format!(
                "unexpected EXEC reply {other:?}"
            ))),
        }
    }

    /// Ready when every slot is served (`cluster_state:ok`, as a node reports it) and every master
    /// answers `PING`, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), GatewayError> {
        let check = async {
            let mut conn = self.shared().await?;
            let mut info = redis::cmd("CLUSTER");
            info.arg("INFO");
            let state = reply(
                conn.route_command(info, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await
                    .map_err(|e| GatewayError::from_redis(&e))?,
            )?;
            let text = match state {
                Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Value::VerbatimString { text, .. } => text,
                _ => String::new(),
            };
            if !text.lines().any(|l| l.trim() == "cluster_state:ok") {
                return Err(GatewayError::Unavailable(
                    "the cluster state is not ok: some slots have no master that answers".into(),
                ));
            }
            let ping = RoutingInfo::MultiNode((
                MultipleNodeRoutingInfo::AllMasters,
                Some(ResponsePolicy::AllSucceeded),
            ));
            reply(
                conn.route_command(redis::cmd("PING"), ping)
                    .await
                    .map_err(|e| GatewayError::from_redis(&e))?,
            )
            .map(|_| ())
        };
        match tokio::time::timeout(timeout, check).await {
            Ok(outcome) => outcome,
            Err(_) => Err(GatewayError::timeout(timeout)),
        }
    }

    /// A pub/sub connection to the first seed node that answers (pub/sub is cluster-wide).
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, GatewayError> {
        let mut last = GatewayError::Unavailable("no seed node is configured".into());
        for seed in &self.seeds {
            match self.within(seed.get_async_pubsub()).await {
                Ok(pubsub) => return Ok(pubsub),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The shared connection of the calling thread, opened on its first use.
    async fn shared(&self) -> Result<Conn, GatewayError> {
        self.current(&self.shards[shard_index() % self.shards.len()])
            .await
    }

    /// The connection kept in `cell`, replaced first when it was opened before the latest failure
    /// (its slot map and sockets may still point at a dead master).
    async fn current(&self, cell: &Mutex<Option<Opened>>) -> Result<Conn, GatewayError> {
        let epoch = self.epoch();
        if let Some((opened, conn)) = &*cell.lock().unwrap_or_else(|e| e.into_inner())
            && *opened == epoch
        {
            return Ok(conn.clone());
        }
        let conn = self.connect().await?;
        *cell.lock().unwrap_or_else(|e| e.into_inner()) = Some((epoch, conn.clone()));
        Ok(conn)
    }

    /// What the resend loop reports to: the failure epoch and the counters.
    fn watch(&self) -> resend::Watch<'_> {
        resend::Watch {
            epoch: &self.epoch,
            metrics: &self.metrics,
        }
    }

    /// The current failure epoch (see the module docs).
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A new cluster connection (it learns the slot map from the seed nodes first). Its node
    /// connections are the gateway's own (`resend::NodeConnection`), which the library accepts
    /// through its generic constructor (hidden from its docs; the library's version is pinned).
    async fn connect(&self) -> Result<Conn, GatewayError> {
        self.within(
            self.client
                .get_async_generic_connection::<resend::NodeConnection>(),
        )
        .await
    }

    /// Awaits a cluster call within the per-command deadline.
    async fn within<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, GatewayError> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_timeout() => Err(GatewayError::timeout(self.deadline)),
            Ok(Err(e)) => {
                // For a failed connect, which no resend loop saw (counting a loop's error again
                // changes nothing: any new epoch replaces the connections opened before it).
                self.watch().note(&e);
                Err(GatewayError::from_redis(&e))
            }
            Err(_) => Err(GatewayError::timeout(self.deadline)),
        }
    }
}

/// The routing to the master that serves `slot`.
fn master_of(slot: u16) -> SingleNodeRoutingInfo {
    SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master))
}

/// The slot a script or transaction runs on: its keys' common slot, slot 0 without keys, or a
/// `CROSSSLOT` refusal.
fn slot_of<'a>(
    commands: impl IntoIterator<Item = (&'a str, &'a [Vec<u8>])>,
) -> Result<u16, GatewayError> {
    match slots::common_slot(commands) {
        Ok(slot) => Ok(slot.unwrap_or(0)),
        Err(cross) => Err(GatewayError::CrossSlot(cross.to_string())),
    }
}

/// A top-level error reply is a failed command.
fn reply(value: Value) -> Result<Value, GatewayError> {
    match value {
        Value::ServerError(e) => Err(GatewayError::Redis(server_error_text(&e))),
        value => Ok(value),
    }
}

/// An error reply entry with Redis's text (`CODE message`), for a pipeline entry that failed alone.
fn error_value(text: &str) -> Value {
    let line: String = text
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
        .unwrap_or_else(|_| Value::SimpleString(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_entries_keep_their_code_and_text() {
        match error_value("CROSSSLOT Keys in request don't hash to the same slot") {
            Value::ServerError(e) => {
                assert_eq!(
                    server_error_text(&e),
                    "CROSSSLOT Keys in request don't hash to the same slot"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(error_value("ERR a\r\nb"), Value::ServerError(_)));
    }
}

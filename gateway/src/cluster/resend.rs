//! Sending a command again on a cluster, only when Redis said it did not run it.
//!
//! On one node the gateway never sends a command twice: a broken connection is answered 503 and the
//! client decides. The cluster client of the Redis client library would instead send a request again
//! on its own after an I/O error, and an I/O error after the request was written says nothing about
//! whether Redis ran it: a write whose answer was lost would run twice (a rate-limit check charged
//! twice, a compare-and-set applied and then answered as a conflict). So the library is built with no
//! retries of its own (`retries(0)`): it still refreshes its slot map after `MOVED` and reconnects
//! after a broken connection (it decides that whether or not it sends the request again), and every
//! error comes back here. This module sends again only what Redis refused before running it:
//!
//! - `MOVED` (the slot is served elsewhere) and `READONLY` (a write reached a replica): again by slot,
//!   once the library has refreshed its map (it does so before it takes the next request);
//! - `ASK` (the slot is being migrated and the key is already on the target): to the target node,
//!   each command preceded by `ASKING` in the same pipeline;
//! - `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`, and a node connection that could not be
//!   opened (or that the library does not have): again after a short wait.
//!
//! Anything else, an I/O error after sending first of all, is answered as it is (503), unless every
//! command concerned is read-only: a read can run twice without harm.
//!
//! A `MOVED` is followed at once the first time (the slot has a new master) and after the same waits
//! as `TRYAGAIN` from then on: while a dead master's replica has not taken over yet, the other nodes
//! keep naming the dead master. A request Redis still refused at the last send is answered 503 (the
//! cluster is unavailable for its slot), never with the redirect itself, which would read as the
//! client's error. Every refusal and I/O error is also counted in the caller's failure epoch, so that
//! connections opened before it are replaced (see the parent module).
//!
//! Within a pipeline, Redis answers each command on its own, so some may run while others are
//! redirected (during a migration, the keys already moved get `ASK`). The library turns a pipeline
//! answer holding a redirect into one error and drops the other answers, so those that ran could
//! not be told apart. The node connections the library uses are therefore wrapped
//! ([`NodeConnection`]): when a pipeline's answer mixes commands that ran with commands Redis
//! refused, the refusals are handed back as `UNSENT <original error>` entries the library passes
//! through, and only those commands are sent again. A transaction is all or nothing (a refused
//! command aborts it at `EXEC`), so its answer is left for the library to turn into one error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::{ClusterConnection, Connect};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, Value,
};

use super::{error_value, master_of};
use crate::backend::build;
use crate::metrics::{Metrics, Resent};

/// A cluster connection whose node connections keep every answer of a mixed pipeline.
pub(crate) type Conn = ClusterConnection<NodeConnection>;

/// The error code of an entry Redis refused to run, in a pipeline answer where others ran.
const UNSENT: &str = "UNSENT";

/// Sends at most this many times (the request's deadline usually ends the attempts first).
const MAX_SENDS: u32 = 16;

/// The first wait before sending again after `TRYAGAIN`, `CLUSTERDOWN` or a connection that could
/// not be opened; it doubles up to [`MAX_WAIT`]. A failover takes about the cluster's node timeout
/// (a second or more), so waits of this order see it through within a deadline of a few seconds.
const FIRST_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_millis(500);

/// How to send again something Redis did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resend {
    /// By slot, as the first time (the library's map now knows the slot's master).
    BySlot,
    /// To this node, after `ASKING`.
    Ask { host: String, port: u16 },
    /// By slot, after a wait.
    AfterWait,
}

impl Resend {
    /// Whether (and how) `e` says the request did not run.
    pub(crate) fn of_error(e: &RedisError) -> Option<Resend> {
        if e.kind() == ErrorKind::ClusterConnectionNotFound || e.is_connection_refusal() {
            return Some(Resend::AfterWait);
        }
        Resend::of_code(e.code()?, e.detail())
    }

    /// Whether (and how) an error reply with `code` and `detail` says the command did not run.
    fn of_code(code: &str, detail: Option<&str>) -> Option<Resend> {
        match code {
            "MOVED" | "READONLY" => Some(Resend::BySlot),
            "ASK" => {
                // `ASK <slot> <host>:<port>`
                let address = detail?.split_ascii_whitespace().nth(1)?;
                let (host, port) = address.rsplit_once(':')?;
                Some(Resend::Ask {
                    host: host.to_owned(),
                    port: port.parse().ok()?,
                })
            }
            "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "LOADING" => Some(Resend::AfterWait),
            _ => None,
        }
    }

    /// Whether (and how) an entry of a pipeline answer says its command did not run.
    fn of_entry(value: &Value) -> Option<Resend> {
        let Value::ServerError(e) = value else {
            return None;
        };
        let (code, detail) = match (e.code(), e.details()) {
            (UNSENT, Some(original)) => original.split_once(' ').unwrap_or((original, "")),
            (code, detail) => (code, detail.unwrap_or("")),
        };
        Resend::of_code(code, Some(detail))
    }
}

/// What the sends of one call report to: the cluster's failure epoch (see the parent module) and
/// the gateway's counters.
pub(crate) struct Watch<'a> {
    pub(crate) epoch: &'a AtomicU64,
    pub(crate) metrics: &'a Metrics,
}

impl Watch<'_> {
    /// Moves the failure epoch on: a node connection failed or the topology is changing.
    fn failed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Moves the failure epoch on when `e` says a node connection failed or the topology changes.
    pub(crate) fn note(&self, e: &RedisError) {
        if e.is_io_error() || Resend::of_error(e).is_some() {
            self.failed();
        }
    }

    /// Counts the send about to be repeated `how`.
    fn again(&self, how: &Resend) {
        self.metrics.cluster_resend(match how {
            Resend::BySlot => Resent::Moved,
            Resend::Ask { .. } => Resent::Ask,
            Resend::AfterWait => Resent::Wait,
        });
    }

    /// The error a request gets when Redis still refused it at the last send: 503 with the last
    /// refusal; counted.
    fn gave_up(&self, slot: Option<u16>, sends: u32, last: &str) -> RedisError {
        self.metrics.cluster_gave_up();
        let what = slot.map_or_else(|| "the command".to_owned(), |slot| format!("slot {slot}"));
        RedisError::from(std::io::Error::other(format!(
            "the cluster did not serve {what} after {sends} attempts (last answer: {last})"
        )))
    }
}

/// Whether send number `sends` (counted from 1) waits before the next: always after a refusal that
/// asks for it, and after a `MOVED` that was followed once already.
fn waits(next: &Resend, sends: u32) -> bool {
    *next == Resend::AfterWait || (*next == Resend::BySlot && sends > 1)
}

/// The wait before send number `sends` (counted from 1).
fn wait_before(sends: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1 << sends.saturating_sub(1).min(8))
        .min(MAX_WAIT)
}

/// Marks the refused entries of a pipeline answer in which some commands ran (see the module doc);
/// an answer in which every entry was refused, or none, is left as it is.
fn mark_unsent(values: &mut [Value]) {
    let refused = values
        .iter()
        .filter(|v| Resend::of_entry(v).is_some())
        .count();
    if refused == 0 || refused == values.len() {
        return;
    }
    for value in values.iter_mut() {
        let original = match &*value {
            Value::ServerError(e) if e.code() != UNSENT => crate::backend::server_error_text(e),
            _ => continue,
        };
        if Resend::of_entry(value).is_some() {
            *value = error_value(&format!("{UNSENT} {original}"));
        }
    }
}

/// An entry marked by [`mark_unsent`] as Redis's own error again; any other value unchanged.
fn unmarked(value: Value) -> Value {
    match &value {
        Value::ServerError(e) if e.code() == UNSENT => match e.details() {
            Some(original) => error_value(original),
            None => value,
        },
        _ => value,
    }
}

/// Whether a pipeline is a transaction (all or nothing: see the module doc).
fn is_transaction(pipeline: &Pipeline) -> bool {
    pipeline.cmd_iter().any(|cmd| {
        matches!(cmd.args_iter().next(), Some(redis::Arg::Simple(name)) if name.eq_ignore_ascii_case(b"MULTI"))
    })
}

/// The connection to one node that the cluster client uses: a multiplexed connection whose
/// pipeline answers keep the entries that ran when others were refused (see the module doc).
#[derive(Clone)]
pub(crate) struct NodeConnection(MultiplexedConnection);

impl ConnectionLike for NodeConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut values = self.0.req_packed_commands(pipeline, offset, count).await?;
            if !is_transaction(pipeline) {
                mark_unsent(&mut values);
            }
            Ok(values)
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

impl Connect for NodeConnection {
    fn connect_with_config<'a, T>(info: T, config: AsyncConnectionConfig) -> RedisFuture<'a, Self>
    where
        T: IntoConnectionInfo + Send + 'a,
    {
        Box::pin(async move {
            MultiplexedConnection::connect_with_config(info, config)
                .await
                .map(NodeConnection)
        })
    }
}

/// Runs one command, routed by the library's table; sent again as the module doc says. A command
/// whose keys are not all in one slot (the library splits `MSET` or `DEL` over their masters), or
/// that has no key (the library may send `FLUSHALL` to every master), is sent again only when it is
/// read-only: parts of it may have run.
pub(crate) async fn command(
    conn: &mut Conn,
    args: &[Vec<u8>],
    watch: &Watch<'_>,
) -> RedisResult<Value> {
    let cmd = build(args);
    let read_only = redge::client::read_only::is_read_only(args);
    let name = crate::policy::command_name(args);
    let single = matches!(
        crate::slots::common_slot([(name.as_str(), args)]),
        Ok(Some(_))
    );
    let mut how = None;
    let mut sends = 0;
    loop {
        sends += 1;
        let answer = match &how {
            Some(Resend::Ask { host, port }) => {
                let mut pipe = Pipeline::with_capacity(2);
                pipe.add_command(redis::cmd("ASKING"));
                pipe.add_command(cmd.clone());
                let route = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                conn.route_pipeline(pipe, 0, 2, route)
                    .await
                    .map(|mut values| values.pop().map(unmarked).unwrap_or(Value::Nil))
            }
            _ => conn.req_packed_command(&cmd).await,
        };
        let answer = answer.and_then(|value| match Resend::of_entry(&value) {
            // A redirect as a reply value (an `ASKING` pipeline): the same as an error.
            Some(_) => value.extract_error().map(|_| Value::Nil),
            None => Ok(value),
        });
        let e = match answer {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        watch.note(&e);
        let next = match Resend::of_error(&e) {
            Some(next) if single => next,
            _ if read_only => Resend::AfterWait,
            _ => return Err(e),
        };
        if sends >= MAX_SENDS {
            return Err(if Resend::of_error(&e).is_some() {
                watch.gave_up(None, sends, &e.to_string())
            } else {
                e
            });
        }
        watch.again(&next);
        if waits(&next, sends) {
            tokio::time::sleep(wait_before(sends)).await;
        }
        how = Some(next);
    }
}

/// Runs a read-only command (`SCAN` on one master, `CLUSTER SLOTS`) at `routing`; sent again after
/// any error, since a read may run twice: at once after `MOVED`, else after a wait.
pub(crate) async fn read(
    conn: &mut Conn,
    cmd: Cmd,
    routing: RoutingInfo,
    watch: &Watch<'_>,
) -> RedisResult<Value> {
    let mut sends = 0;
    loop {
        sends += 1;
        let e = match conn.route_command(cmd.clone(), routing.clone()).await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        watch.note(&e);
        if sends >= MAX_SENDS {
            return Err(e);
        }
        if Resend::of_error(&e) == Some(Resend::BySlot) {
            watch.again(&Resend::BySlot);
        } else {
            watch.again(&Resend::AfterWait);
            tokio::time::sleep(wait_before(sends)).await;
        }
    }
}

/// What a pipeline sent by [`pipeline`] is, for sending it again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// Commands answered each on its own (a `/pipeline` part): the refused ones are sent again.
    Each {
        /// Every command is read-only, so all may be sent again after any error.
        read_only: bool,
    },
    /// A transaction or a script: it runs whole or not at all, and is sent again whole.
    Whole {
        /// Every command is read-only, so it may be sent again after any error.
        read_only: bool,
    },
}

/// Sends `commands`, all on `slot`, as one pipeline to its master; then again, in their order, the
/// commands Redis did not run (see the module doc).
pub(crate) async fn pipeline(
    conn: &mut Conn,
    commands: Vec<Cmd>,
    slot: u16,
    unit: Unit,
    watch: &Watch<'_>,
) -> RedisResult<Vec<Value>> {
    let (whole, read_only) = match unit {
        Unit::Each { read_only } => (false, read_only),
        Unit::Whole { read_only } => (true, read_only),
    };
    let mut answers: Vec<Option<Value>> = vec![None; commands.len()];
    let mut pending: Vec<usize> = (0..commands.len()).collect();
    let mut how = Resend::BySlot;
    let mut sends = 0;
    loop {
        sends += 1;
        let asking = matches!(how, Resend::Ask { .. });
        let mut pipe = Pipeline::with_capacity(pending.len() * if asking { 2 } else { 1 });
        for &i in &pending {
            if asking && !(whole && i > 0) {
                pipe.add_command(redis::cmd("ASKING"));
            }
            pipe.add_command(commands[i].clone());
        }
        let route = match &how {
            Resend::Ask { host, port } => SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            },
            _ => master_of(slot),
        };
        let len = pipe.len();
        let next = match conn.route_pipeline(pipe, 0, len, route).await {
            Ok(mut values) => {
                if asking {
                    // Drop the answers to `ASKING`.
                    let mut at = 0;
                    values.retain(|_| {
                        at += 1;
                        let is_asking = if whole { at == 1 } else { at % 2 == 1 };
                        !is_asking
                    });
                }
                let mut refused = Vec::new();
                let mut next = None;
                for (&i, value) in pending.iter().zip(values) {
                    if let Some(again) = Resend::of_entry(&value) {
                        refused.push(i);
                        next.get_or_insert(again);
                    }
                    answers[i] = Some(value);
                }
                if next.is_some() {
                    watch.failed();
                }
                match next {
                    None => break,
                    Some(_) if sends >= MAX_SENDS => {
                        let last = refused
                            .first()
                            .and_then(|&i| answers[i].as_ref())
                            .map_or_else(String::new, |v| format!("{v:?}"));
                        return Err(watch.gave_up(Some(slot), sends, &last));
                    }
                    Some(next) => {
                        if !whole {
                            pending = refused;
                        }
                        next
                    }
                }
            }
            Err(e) => {
                watch.note(&e);
                match Resend::of_error(&e) {
                    Some(_) if sends >= MAX_SENDS => {
                        return Err(watch.gave_up(Some(slot), sends, &e.to_string()));
                    }
                    Some(next) => next,
                    None if read_only && sends < MAX_SENDS => Resend::AfterWait,
                    None => return Err(e),
                }
            }
        };
        watch.again(&next);
        if waits(&next, sends) {
            tokio::time::sleep(wait_before(sends)).await;
        }
        how = next;
    }
    Ok(answers
        .into_iter()
        .map(|v| v.map(unmarked).unwrap_or(Value::Nil))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> Value {
        error_value(text)
    }

    #[test]
    fn only_refusals_are_sent_again() {
        assert_eq!(
            Resend::of_entry(&error("MOVED 3999 127.0.0.1:7002")),
            Some(Resend::BySlot)
        );
        assert_eq!(
            Resend::of_entry(&error("ASK 3999 10.0.0.2:7002")),
            Some(Resend::Ask {
                host: "10.0.0.2".into(),
                port: 7002
            })
        );
        for code in [
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "LOADING Redis is loading the dataset in memory",
            "MASTERDOWN Link with MASTER is down",
        ] {
            assert_eq!(
                Resend::of_entry(&error(code)),
                Some(Resend::AfterWait),
                "{code}"
            );
        }
        assert_eq!(
            Resend::of_entry(&error(
                "READONLY You can't write against a read only replica."
            )),
            Some(Resend::BySlot)
        );
        for other in [
            "ERR wrong number of arguments",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "NOSCRIPT No matching script",
            "BUSY Redis is busy running a script",
            "ASK not-a-redirect",
        ] {
            assert_eq!(Resend::of_entry(&error(other)), None, "{other}");
        }
        assert_eq!(Resend::of_entry(&Value::Int(1)), None);
    }

    #[test]
    fn io_errors_after_sending_are_not_sent_again() {
        let dropped = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(Resend::of_error(&dropped), None);
        let eof = RedisError::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert_eq!(Resend::of_error(&eof), None);
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(Resend::of_error(&refused), Some(Resend::AfterWait));
        let missing = RedisError::from((ErrorKind::ClusterConnectionNotFound, "no connection"));
        assert_eq!(Resend::of_error(&missing), Some(Resend::AfterWait));
        let moved = error("MOVED 1 127.0.0.1:7000").extract_error().unwrap_err();
        assert_eq!(Resend::of_error(&moved), Some(Resend::BySlot));
    }

    #[test]
    fn a_mixed_answer_marks_its_refusals_and_keeps_what_ran() {
        let mut values = vec![
            Value::Int(2),
            error("ASK 3999 10.0.0.2:7002"),
            error("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ];
        mark_unsent(&mut values);
        assert_eq!(values[0], Value::Int(2));
        match &values[1] {
            Value::ServerError(e) => assert_eq!(e.code(), UNSENT),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Resend::of_entry(&values[1]),
            Some(Resend::Ask {
                host: "10.0.0.2".into(),
                port: 7002
            })
        );
        assert_eq!(Resend::of_entry(&values[2]), None);
        match unmarked(values[1].clone()) {
            Value::ServerError(e) => {
                assert_eq!(e.code(), "ASK");
                assert_eq!(e.details(), Some("3999 10.0.0.2:7002"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_answer_refused_whole_is_left_for_the_library() {
        let mut values = vec![
            error("MOVED 3999 127.0.0.1:7002"),
            error("MOVED 3999 127.0.0.1:7002"),
        ];
        let before = values.clone();
        mark_unsent(&mut values);
        assert_eq!(values, before);
    }

    #[test]
    fn waits_grow_and_stay_bounded() {
        assert_eq!(wait_before(1), FIRST_WAIT);
        assert_eq!(wait_before(2), FIRST_WAIT * 2);
        assert_eq!(wait_before(16), MAX_WAIT);
        assert!((1..=MAX_SENDS).all(|n| wait_before(n) <= MAX_WAIT));
    }

    #[test]
    fn transactions_are_recognised() {
        let mut pipe = Pipeline::new();
        pipe.add_command(redis::cmd("ASKING"));
        pipe.add_command(redis::cmd("multi"));
        assert!(is_transaction(&pipe));
        let mut pipe = Pipeline::new();
        pipe.add_command(redis::cmd("SET").arg("MULTI").clone());
        assert!(!is_transaction(&pipe));
    }
}

//! Requests that get a Redis connection to themselves: transactions and scripts.
//!
//! A transaction must not share its socket while `MULTI` is open, so each `/multi-exec` takes a
//! connection of its own from a small idle pool and gives it back only after a clean `EXEC`.
//!
//! Scripts (`EVAL`, `EVALSHA`, `FCALL` and their `_RO` variants, alone or inside a pipeline) never run
//! on the shared connections either, for two reasons:
//! - A script can build a reply nested deeper than the Redis client library parses (about 100
//!   levels). The library then drops the connection, and on a shared connection that failed every
//!   other request in flight on it, writes Redis had applied among them ("told it failed, but it
//!   happened"). On a connection of its own, only the script's request fails.
//! - A script can run for ever (`while true do end`). Requests queued behind it on a shared connection
//!   would all time out, and be applied later. Here, at the deadline the gateway sends `SCRIPT KILL`
//!   (`FUNCTION KILL` for `FCALL`) on a connection used for nothing else, so the kill does not queue
//!   behind the script it is meant to stop, and tries again every [`KILL_RETRY`] (the script may not
//!   have started yet) until the script's reply arrives or one more deadline has passed. A script that
//!   has not written (every `_RO` script) is always stopped; one that has written cannot be
//!   (`UNKILLABLE`), and its request gets 503.
//!
//! Redis processes other clients' commands, the kill among them, only once a script has run for
//! `busy-reply-threshold` (5 s by default; `lua-time-limit` before Redis 7), so a script is stopped
//! at the later of the gateway's deadline and that threshold. `SCRIPT KILL` stops whichever script is
//! running: past the deadline that is normally the one whose request timed out, since Redis runs one
//! script at a time and every other script the gateway sent has its own deadline.

use std::time::Duration;

use redis::aio::{ConnectionLike as _, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Pipeline, Value};

use crate::backend::{CONNECT_TIMEOUT, Node, build, error_replies, first_poll, server_error_text};
use crate::error::GatewayError;

/// How often a kill is sent again while the script's reply has not arrived.
pub const KILL_RETRY: Duration = Duration::from_millis(100);

/// The outcome of a transaction that reached `EXEC`.
pub enum Transaction {
    /// Committed: one value per command (runtime errors are `Value::ServerError` entries).
    Committed(Vec<Value>),
    /// Discarded because a command was refused while queueing; the text is Redis's `EXECABORT` error.
    Discarded(String),
}

impl Transaction {
    /// Error replies, as `/metrics` counts them: each failed command of a committed transaction, or
    /// one for a discarded transaction.
    pub(crate) fn error_replies(&self) -> usize {
        match self {
            Transaction::Committed(values) => error_replies(values),
            Transaction::Discarded(_) => 1,
        }
    }
}

/// The kill commands that stop the scripts of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kill {
    /// `EVAL`, `EVALSHA` or their `_RO` variants: `SCRIPT KILL`.
    pub script: bool,
    /// `FCALL` or `FCALL_RO`: `FUNCTION KILL`.
    pub function: bool,
}

impl Kill {
    /// What stops the command `args`, if it runs a script.
    pub fn of(args: &[Vec<u8>]) -> Option<Kill> {
        let name = args.first()?.as_slice();
        let is = |names: &[&str]| {
            names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        };
        if is(&["EVAL", "EVAL_RO", "EVALSHA", "EVALSHA_RO"]) {
            Some(Kill {
                script: true,
                function: false,
            })
        } else if is(&["FCALL", "FCALL_RO"]) {
            Some(Kill {
                script: false,
                function: true,
            })
        } else {
            None
        }
    }

    /// What stops the scripts among `commands`, if any runs one.
    pub fn of_any(commands: &[Vec<Vec<u8>>]) -> Option<Kill> {
        commands
            .iter()
            .filter_map(|args| Kill::of(args))
            .reduce(Kill::either)
    }

    /// What stops the scripts of both.
    pub fn either(self, other: Kill) -> Kill {
        Kill {
            script: self.script || other.script,
            function: self.function || other.function,
        }
    }

    /// The commands that stop them.
    pub(crate) fn commands(self) -> impl Iterator<Item = redis::Cmd> {
        let script = self
            .script
            .then(|| redis::cmd("SCRIPT").arg("KILL").clone());
        let function = self
            .function
            .then(|| redis::cmd("FUNCTION").arg("KILL").clone());
        script.into_iter().chain(function)
    }
}

impl Node {
    /// Runs `MULTI`, the commands and `EXEC` on a connection used by nobody else meanwhile; scripts
    /// among the commands are stopped at the deadline as in [`Node::isolated`].
    ///
    /// An idle connection from the pool may have died while it waited (Redis restarted): the redis
    /// crate then fails at once with a dropped-connection error, before anything reaches Redis. That
    /// case (a failure on the call's first poll, before it ever waited) empties the pool (its other
    /// connections died with it) and runs the transaction once more on a new connection. A failure
    /// after the commands were sent (Redis died, or a reply could not be parsed) is never retried:
    /// the transaction may have been applied.
    pub async fn transaction(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Transaction, GatewayError> {
        let outcome = self.transaction_unrecorded(commands).await;
        self.record(&outcome, Transaction::error_replies);
        outcome
    }

    async fn transaction_unrecorded(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Transaction, GatewayError> {
        let mut pipe = Pipeline::with_capacity(commands.len() + 2);
        pipe.add_command(redis::cmd("MULTI"));
        for args in commands {
            pipe.add_command(build(args));
        }
        pipe.add_command(redis::cmd("EXEC"));
        let mut replies = self.exclusive(&pipe, Kill::of_any(commands)).await?;
        match replies.pop() {
            Some(Value::Array(values)) => Ok(Transaction::Committed(values)),
            Some(Value::ServerError(e)) => Ok(Transaction::Discarded(server_error_text(&e))),
            other => Err(GatewayError::Unavailable(format!(
                "unexpected EXEC reply {other:?}"
            ))),
        }
    }

    /// Runs a pipeline that holds a script on a connection used by nobody else meanwhile; one value
    /// per command.
    pub async fn isolated(&self, pipe: &Pipeline, kill: Kill) -> Result<Vec<Value>, GatewayError> {
        self.exclusive(pipe, Some(kill)).await
    }

    /// Sends `pipe` on an exclusive connection within the deadline (past it, stops its scripts with
    /// `kill`), and gives the connection back to the idle pool when every reply has arrived.
    async fn exclusive(
        &self,
        pipe: &Pipeline,
        kill: Option<Kill>,
    ) -> Result<Vec<Value>, GatewayError> {
        let (mut conn, pooled) = self.dedicated().await?;
        let mut outcome = self.run(&mut conn, pipe, kill).await;
        if pooled && matches!(&outcome, Err(Failure::Unsent(_))) {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
            conn = self.connect().await?;
            outcome = self.run(&mut conn, pipe, kill).await;
        }
        match outcome {
            Ok(values) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < self.max_idle {
                    idle.push(conn);
                }
                Ok(values)
            }
            Err(Failure::Redis(e) | Failure::Unsent(e)) if e.is_timeout() => {
                Err(GatewayError::timeout(self.deadline))
            }
            Err(Failure::Redis(e) | Failure::Unsent(e)) => Err(GatewayError::from_redis(&e)),
            Err(Failure::Timeout) => Err(GatewayError::timeout(self.deadline)),
        }
    }

    /// Sends `pipe` and waits for its replies until the deadline; then, if it runs scripts, stops
    /// them and waits for the replies a while longer.
    async fn run(
        &self,
        conn: &mut MultiplexedConnection,
        pipe: &Pipeline,
        kill: Option<Kill>,
    ) -> Result<Vec<Value>, Failure> {
        let call = conn.req_packed_commands(pipe, 0, pipe.len());
        let mut call = std::pin::pin!(call);
        match first_poll(tokio::time::timeout(self.deadline, call.as_mut())).await {
            // Failed before it ever waited: nothing was written, so it may be tried again.
            (Ok(Err(e)), true) if e.is_connection_dropped() => return Err(Failure::Unsent(e)),
            (Ok(outcome), _) => return outcome.map_err(Failure::Redis),
            (Err(_), _) => {}
        }
        let Some(kill) = kill else {
            return Err(Failure::Timeout);
        };
        let grace = tokio::time::Instant::now() + self.deadline;
        loop {
            if self.send_kill(kill, grace).await == Killed::Unkillable {
                tracing::warn!("a script past its deadline has written and cannot be stopped");
                self.metrics.script_unkillable();
                return Err(Failure::Timeout);
            }
            let wait = (tokio::time::Instant::now() + KILL_RETRY).min(grace);
            match tokio::time::timeout_at(wait, call.as_mut()).await {
                Ok(outcome) => {
                    tracing::warn!("a script ran past its deadline and was stopped");
                    self.metrics.script_killed();
                    return outcome.map_err(Failure::Redis);
                }
                Err(_) if wait >= grace => return Err(Failure::Timeout),
                Err(_) => {}
            }
        }
    }

    /// Sends the kill commands on the connection kept for them, waiting for each answer at most
    /// [`CONNECT_TIMEOUT`] (the first kill opens that connection) and never past `grace`.
    async fn send_kill(&self, kill: Kill, grace: tokio::time::Instant) -> Killed {
        let mut outcome = Killed::Sent;
        for command in kill.commands() {
            let mut killer = self.killer.clone();
            let until = (tokio::time::Instant::now() + CONNECT_TIMEOUT).min(grace);
            let reply = tokio::time::timeout_at(until, killer.send_packed_command(&command)).await;
            let unkillable = match &reply {
                Ok(Ok(Value::ServerError(e))) => e.code() == "UNKILLABLE",
                Ok(Err(e)) => e.code() == Some("UNKILLABLE"),
                _ => false,
            };
            if unkillable {
                outcome = Killed::Unkillable;
            }
        }
        outcome
    }

    /// A connection nobody else holds: an idle one (`true`), or a new one (`false`).
    async fn dedicated(&self) -> Result<(MultiplexedConnection, bool), GatewayError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(conn) = idle {
            return Ok((conn, true));
        }
        Ok((self.connect().await?, false))
    }

    /// A new exclusive connection. It has no response timeout of its own: [`Node::run`] puts the
    /// deadline on every call, and keeps waiting past it for a script being stopped.
    async fn connect(&self) -> Result<MultiplexedConnection, GatewayError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        self.within(
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
    }
}

/// Why an exclusive call failed.
enum Failure {
    /// The connection was found dead before anything was sent on it.
    Unsent(redis::RedisError),
    /// Anything else the client library reported: the commands may have run.
    Redis(redis::RedisError),
    /// No reply within the deadline (and the grace period of a script being stopped).
    Timeout,
}

/// What the kill commands answered.
#[derive(Debug, PartialEq, Eq)]
enum Killed {
    /// `OK`, `NOTBUSY` (nothing running: the script finished, or has not started yet), or no answer.
    Sent,
    /// The script has written: Redis cannot stop it without losing those writes.
    Unkillable,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn scripts_are_recognised_in_any_case_and_in_batches() {
        let script = Some(Kill {
            script: true,
            function: false,
        });
        let function = Some(Kill {
            script: false,
            function: true,
        });
        assert_eq!(Kill::of(&args(&["eval", "return 1", "0"])), script);
        assert_eq!(Kill::of(&args(&["EvalSha_RO", "abc", "0"])), script);
        assert_eq!(Kill::of(&args(&["FCALL_RO", "f", "0"])), function);
        assert_eq!(Kill::of(&args(&["SCRIPT", "LOAD", "return 1"])), None);
        assert_eq!(Kill::of(&args(&["GET", "k"])), None);
        let batch = vec![args(&["SET", "k", "v"]), args(&["fcall", "f", "0"])];
        assert_eq!(Kill::of_any(&batch), function);
        let both = vec![args(&["EVAL", "return 1", "0"]), args(&["fcall", "f", "0"])];
        assert_eq!(
            Kill::of_any(&both),
            Some(Kill {
                script: true,
                function: true
            })
        );
        assert_eq!(Kill::of_any(&[args(&["GET", "k"])]), None);
    }
}

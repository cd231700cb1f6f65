//! The connections to Redis and the one place where commands are sent.
//!
//! Ordinary commands and pipelines share one multiplexed connection ([`ConnectionManager`]): requests
//! are written back to back on one socket and answered in order, which is what makes a single connection
//! fast under load, and it reconnects by itself after Redis restarts. A transaction must not share its
//! socket while `MULTI` is open in the protocol sense, so each `/multi-exec` takes a connection of its own
//! from a small idle pool, and gives it back only after a clean `EXEC`; a connection whose transaction
//! timed out or failed mid-way is dropped, never reused. Each SSE stream opens its own pub/sub connection.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, Value};

use crate::error::GatewayError;

/// A refused connection fails at once; a silent host after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections to one Redis.
pub struct Backend {
    client: Client,
    shared: ConnectionManager,
    idle: Mutex<Vec<MultiplexedConnection>>,
    max_idle: usize,
    deadline: Duration,
}

/// The outcome of a transaction that reached `EXEC`.
pub enum Transaction {
    /// Committed: one value per command (runtime errors are `Value::ServerError` entries).
    Committed(Vec<Value>),
    /// Discarded because a command was refused while queueing; the text is Redis's `EXECABORT` error.
    Discarded(String),
}

impl Backend {
    /// Sets up the connections lazily: the gateway starts, and keeps running, while Redis is down.
    ///
    /// # Errors
    /// The connection manager could not be set up.
    pub fn new(client: Client, deadline: Duration, max_idle: usize) -> redis::RedisResult<Backend> {
        // One retry only: a request waits at most for the deadline, and the next request tries to
        // reconnect again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let shared = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Backend {
            client,
            shared,
            idle: Mutex::new(Vec::new()),
            max_idle,
            deadline,
        })
    }

    /// Runs one command on the shared connection.
    pub async fn single(&self, args: &[Vec<u8>]) -> Result<Value, GatewayError> {
        let command = build(args);
        let mut conn = self.shared.clone();
        match self.within(conn.req_packed_command(&command)).await? {
            Value::ServerError(e) => Err(GatewayError::Redis(server_error_text(&e))),
            value => Ok(value),
        }
    }

    /// Runs commands in order on the shared connection, not atomically; one value per command.
    pub async fn pipeline(&self, commands: &[Vec<Vec<u8>>]) -> Result<Vec<Value>, GatewayError> {
        let mut pipe = Pipeline::with_capacity(commands.len());
        for args in commands {
            pipe.add_command(build(args));
        }
        let mut conn = self.shared.clone();
        self.within(conn.req_packed_commands(&pipe, 0, commands.len()))
            .await
    }

    /// Runs `MULTI`, the commands and `EXEC` on a connection used by nobody else meanwhile.
    ///
    /// An idle connection from the pool may have died while it waited (Redis restarted): the redis
    /// crate then fails at once with a dropped-connection error, before anything reaches Redis. That
    /// case empties the pool (its other connections died with it) and runs the transaction once more
    /// on a new connection. A connection that drops mid-transaction is indistinguishable from that
    /// case, so Redis dying between executing `EXEC` and answering it could apply a transaction twice;
    /// a fresh connection is never retried.
    pub async fn transaction(
        &self,
        commands: &[Vec<Vec<u8>>],
    ) -> Result<Transaction, GatewayError> {
        let mut pipe = Pipeline::with_capacity(commands.len() + 2);
        pipe.add_command(redis::cmd("MULTI"));
        for args in commands {
            pipe.add_command(build(args));
        }
        pipe.add_command(redis::cmd("EXEC"));
        let (mut conn, pooled) = self.dedicated().await?;
        let mut outcome = self.run_transaction(&mut conn, &pipe).await;
        if pooled && matches!(&outcome, Err(e) if e.is_connection_dropped()) {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
            conn = self.connect().await?;
            outcome = self.run_transaction(&mut conn, &pipe).await;
        }
        let mut replies = match outcome {
            Ok(replies) => replies,
            Err(e) if e.is_timeout() => return Err(GatewayError::timeout(self.deadline)),
            Err(e) => return Err(GatewayError::from_redis(&e)),
        };
        let outcome = match replies.pop() {
            Some(Value::Array(values)) => Transaction::Committed(values),
            Some(Value::ServerError(e)) => Transaction::Discarded(server_error_text(&e)),
            other => {
                return Err(GatewayError::Unavailable(format!(
                    "unexpected EXEC reply {other:?}"
                )));
            }
        };
        // EXEC completed, so the connection is out of MULTI and safe to hand to the next transaction.
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        Ok(outcome)
    }

    /// Sends a `MULTI ... EXEC` pipeline within the deadline.
    async fn run_transaction(
        &self,
        conn: &mut MultiplexedConnection,
        pipe: &Pipeline,
    ) -> redis::RedisResult<Vec<Value>> {
        let count = pipe.len();
        match tokio::time::timeout(self.deadline, conn.req_packed_commands(pipe, 0, count)).await {
            Ok(result) => result,
            Err(_) => Err(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            ))),
        }
    }

    /// A new pub/sub connection, for one SSE stream.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, GatewayError> {
        self.within(self.client.get_async_pubsub()).await
    }

    /// A connection nobody else holds: an idle one (`true`), or a new one (`false`).
    async fn dedicated(&self) -> Result<(MultiplexedConnection, bool), GatewayError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(conn) = idle {
            return Ok((conn, true));
        }
        Ok((self.connect().await?, false))
    }

    /// A new connection for transactions.
    async fn connect(&self) -> Result<MultiplexedConnection, GatewayError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(self.deadline));
        self.within(
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
    }

    /// Awaits a Redis call within the per-command deadline.
    async fn within<T>(
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

fn build(args: &[Vec<u8>]) -> Cmd {
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

//! Transactions and scripts on a cluster: a connection of their own, and the kill at the deadline.
//!
//! As on one node (`crate::exclusive`), a transaction or a script never shares its connection: each
//! takes a cluster connection from the idle pool, or opens one. Past the deadline a script is stopped
//! with `SCRIPT KILL` / `FUNCTION KILL`, sent to the master of the script's slot (the node that runs
//! it) on a cluster connection used for nothing else.

use redis::Value;
use redis::cluster_routing::RoutingInfo;
use redis::{Cmd, RedisResult};

use super::resend::{self, Unit};
use super::{Cluster, master_of};
use crate::backend::CONNECT_TIMEOUT;
use crate::error::GatewayError;
use crate::exclusive::{KILL_RETRY, Kill};

impl Cluster {
    /// Sends `commands` as one pipeline to the master of `slot` on a connection nobody else uses
    /// meanwhile, within the deadline (again only as `resend.rs` allows); past it, stops its
    /// scripts with `kill` there, as `crate::exclusive` does on one node.
    pub(super) async fn exclusive(
        &self,
        commands: Vec<Cmd>,
        slot: u16,
        kill: Option<Kill>,
        unit: Unit,
    ) -> Result<Vec<Value>, GatewayError> {
        if kill.is_some() {
            // Opened (or replaced, after a failure) before the script runs: a node busy with a
            // script refuses new connections' handshakes, so a kill connection opened only at the
            // deadline could miss that node, and one opened before a failover may still send the
            // kill to the dead master.
            self.current(&self.killer).await?;
        }
        let epoch = self.epoch();
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            // Connections opened before the latest failure may hold dead sockets: dropped.
            idle.retain(|(opened, _)| *opened == epoch);
            idle.pop()
        };
        let mut conn = match idle {
            Some((_, conn)) => conn,
            None => self.connect().await?,
        };
        let outcome = {
            let watch = self.watch();
            let call = resend::pipeline(&mut conn, commands, slot, unit, &watch);
            let mut call = std::pin::pin!(call);
            match tokio::time::timeout(self.deadline, call.as_mut()).await {
                // The resend loop moved the failure epoch for its errors.
                Ok(outcome) => outcome.map_err(|e| GatewayError::from_redis(&e)),
                Err(_) => match kill {
                    None => Err(GatewayError::timeout(self.deadline)),
                    Some(kill) => self.stop(call, slot, kill).await,
                },
            }
        };
        if outcome.is_ok() && self.epoch() == epoch {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.max_idle {
                idle.push((epoch, conn));
            }
        }
        outcome
    }

    /// Sends the kill commands to the master of `slot` every [`KILL_RETRY`] until `call` answers or
    /// one more deadline has passed.
    async fn stop<F>(
        &self,
        mut call: std::pin::Pin<&mut F>,
        slot: u16,
        kill: Kill,
    ) -> Result<Vec<Value>, GatewayError>
    where
        F: std::future::Future<Output = RedisResult<Vec<Value>>>,
    {
        let grace = tokio::time::Instant::now() + self.deadline;
        // The one prepared before the script started, whatever failures came since.
        let prepared = self
            .killer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, conn)| conn.clone());
        let mut killer = match prepared {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        loop {
            for command in kill.commands() {
                let until = (tokio::time::Instant::now() + CONNECT_TIMEOUT).min(grace);
                let sent = killer.route_command(command, RoutingInfo::SingleNode(master_of(slot)));
                let answer = tokio::time::timeout_at(until, sent).await;
                let unkillable = match &answer {
                    Ok(Ok(Value::ServerError(e))) => e.code() == "UNKILLABLE",
                    Ok(Err(e)) => e.code() == Some("UNKILLABLE"),
                    _ => false,
                };
                if unkillable {
                    tracing::warn!("a script past its deadline has written and cannot be stopped");
                    self.metrics.script_unkillable();
                    return Err(GatewayError::timeout(self.deadline));
                }
            }
            let wait = (tokio::time::Instant::now() + KILL_RETRY).min(grace);
            match tokio::time::timeout_at(wait, call.as_mut()).await {
                Ok(outcome) => {
                    tracing::warn!("a script ran past its deadline and was stopped");
                    self.metrics.script_killed();
                    return outcome.map_err(|e| GatewayError::from_redis(&e));
                }
                Err(_) if wait >= grace => return Err(GatewayError::timeout(self.deadline)),
                Err(_) => {}
            }
        }
    }
}

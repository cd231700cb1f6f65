//! `SCAN` over every master of a cluster.
//!
//! A cluster has no cursor of its own: each master scans its own keys. The gateway's cursor
//! (`slots::ScanCursor`) names the master being scanned by a slot it serves, and that master's cursor;
//! when a master is done, the scan moves on to the master whose lowest slot comes next, found in
//! `CLUSTER SLOTS` at that moment, so a scan follows the topology as it is when it gets there.

use redis::Value;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::resend::{self, Conn};
use super::{Cluster, master_of, reply};
use crate::backend::build;
use crate::error::GatewayError;
use crate::slots::{self, ScanCursor};

impl Cluster {
    /// `SCAN` over every master: the cursor names the master (by a slot it serves) and that master's
    /// own cursor; when a master is done, the scan moves on to the next in slot order, and `0` comes
    /// back after the last one.
    pub(super) async fn scan(&self, args: &[Vec<u8>]) -> Result<Value, GatewayError> {
        let cursor = args
            .get(1)
            .and_then(|c| ScanCursor::parse(c))
            .ok_or_else(|| GatewayError::BadRequest("invalid cursor".into()))?;
        let mut command = args.to_vec();
        command[1] = cursor.node.to_string().into_bytes();
        let mut conn = self.shared().await?;
        let value = reply(
            self.within(resend::read(
                &mut conn,
                build(&command),
                RoutingInfo::SingleNode(master_of(cursor.slot)),
                &self.watch(),
            ))
            .await?,
        )?;
        let Value::Array(mut items) = value else {
            return Err(GatewayError::Unavailable(
                "unexpected SCAN reply from a node".into(),
            ));
        };
        let node_next = match items.first() {
            Some(Value::BulkString(text)) => std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<u64>().ok()),
            _ => None,
        }
        .ok_or_else(|| GatewayError::Unavailable("unexpected SCAN cursor from a node".into()))?;
        let next = if node_next != 0 {
            ScanCursor {
                slot: cursor.slot,
                node: node_next,
            }
            .encode()
        } else {
            let ranges = self.slot_ranges(&mut conn).await?;
            match slots::next_master(&ranges, cursor.slot) {
                Some(slot) => ScanCursor { slot, node: 0 }.encode(),
                None => "0".to_owned(),
            }
        };
        items[0] = Value::BulkString(next.into_bytes());
        Ok(Value::Array(items))
    }

    /// `(first, last, master id)` of every slot range, from `CLUSTER SLOTS`.
    async fn slot_ranges(&self, conn: &mut Conn) -> Result<Vec<(u16, u16, String)>, GatewayError> {
        let mut command = redis::cmd("CLUSTER");
        command.arg("SLOTS");
        let value = reply(
            self.within(resend::read(
                conn,
                command,
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                &self.watch(),
            ))
            .await?,
        )?;
        let Value::Array(ranges) = value else {
            return Err(GatewayError::Unavailable(
                "unexpected CLUSTER SLOTS reply".into(),
            ));
        };
        let int = |v: &Value| match v {
            Value::Int(n) => u16::try_from(*n).ok(),
            _ => None,
        };
        let text = |v: &Value| match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            Value::Int(n) => Some(n.to_string()),
            _ => None,
        };
        ranges
            .iter()
            .map(|range| {
                let Value::Array(fields) = range else {
                    return None;
                };
                let Some(Value::Array(master)) = fields.get(2) else {
                    return None;
                };
                // The node id when the server sends it, else its address.
                let id = master.get(2).and_then(text).or_else(|| {
                    Some(format!(
                        "{}:{}",
                        text(master.first()?)?,
                        text(master.get(1)?)?
                    ))
                })?;
                Some((int(fields.first()?)?, int(fields.get(1)?)?, id))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GatewayError::Unavailable("unexpected CLUSTER SLOTS reply".into()))
    }
}

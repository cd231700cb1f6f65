//! Writes: the envelope of a fetched value, the write after a miss (with the lease's release in the
//! same round trip), and how their outcomes feed the breaker and the metrics.

use super::CacheState;
use super::envelope::{Envelope, Kind};
use super::flight;
use super::keys;
use super::lookup::Ctx;
use super::timer::within;
use crate::client::{Client, Transport, cmd};
use crate::{Error, Result};

/// The envelope of a value (or of "not found") fetched at `now`.
pub(super) fn envelope(now: u64, ctx: &Ctx, kind: Kind, payload: String) -> Envelope {
    let ttl = if kind == Kind::Negative {
        ctx.policy.negative_ttl_ms
    } else {
        ctx.policy.ttl_ms
    };
    Envelope {
        created: now,
        fresh_until: now.saturating_add(ttl),
        kind,
        generations: ctx.generations.clone(),
        payload,
    }
}

/// Writes `envelope` (and releases `lease`) in one round trip within the deadline; returns whether the
/// value was too big to write. Failures are counted, never returned: the lookup already has its value.
pub(super) async fn write<T: Transport>(
    client: &Client<T>,
    state: &CacheState,
    ctx: &Ctx,
    envelope: Envelope,
    lease: Option<String>,
) -> bool {
    let group = &ctx.policy.group;
    if envelope.payload.len() > ctx.policy.value_cap() {
        state.metrics.with(group, |m| m.oversize += 1);
        release(client, state, ctx, lease).await;
        return true;
    }
    let ttl = if envelope.is_negative() {
        ctx.policy.negative_ttl_ms
    } else {
        ctx.policy.physical_ttl_ms()
    };
    let stored = envelope.encode();
    let batch = client.batch();
    let set = batch.add::<()>(
        cmd("SET")
            .arg(&ctx.entry_key)
            .arg(stored)
            .arg("PX")
            .arg(ttl.max(1)),
    );
    if let Some(token) = &lease {
        let lock = keys::lease(&state.options.namespace, ctx.key.name());
        let _ = batch.add_script::<i64, _, _>(flight::release_script(), [lock], [token]);
    }
    let outcome = match within(ctx.policy.deadline_ms, batch.send()).await {
        Some(Ok(())) => set.take(),
        Some(Err(e)) => Err(e),
        None => Err(Error::Timeout(ctx.policy.deadline_ms)),
    };
    record(state, group, outcome);
    false
}

/// Releases a lease we hold (compare-and-delete), within the deadline.
pub(super) async fn release<T: Transport>(
    client: &Client<T>,
    state: &CacheState,
    ctx: &Ctx,
    lease: Option<String>,
) {
    let Some(token) = lease else { return };
    let lock = keys::lease(&state.options.namespace, ctx.key.name());
    let call = client.eval::<i64, _, _>(flight::release_script(), [lock], [token]);
    let outcome = match within(ctx.policy.deadline_ms, call).await {
        Some(result) => result.map(|_| ()),
        None => Err(Error::Timeout(ctx.policy.deadline_ms)),
    };
    record(state, &ctx.policy.group, outcome);
}

/// Feeds a Redis outcome to the breaker and the metrics.
pub(super) fn record(state: &CacheState, group: &str, outcome: Result<()>) {
    match outcome {
        Ok(()) => state.breaker.success(),
        Err(e) => {
            state.metrics.with(group, |m| m.cache_errors += 1);
            if e.is_unavailable() {
                state.breaker.failure(state.now_ms());
            }
        }
    }
}

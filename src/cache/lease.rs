//! The distributed lease on the lookup path: taking it before a miss's origin call, and what a lookup
//! that lost it does (serve stale, or poll briefly for the holder's value).

use super::envelope::CacheValue;
use super::flight::{self, Landed, Leader};
use super::lookup::{Ctx, Found};
use super::timer::{sleep, within};
use super::{Cache, Lookup, Status, keys};
use crate::Error;
use crate::client::Transport;

/// How often a lookup that lost the lease looks for the winner's value.
const LEASE_POLL_MS: u64 = 50;

/// The outcome of trying to take the lease.
pub(super) enum LeaseOutcome {
    Held(String),
    Taken,
    Free,
}

impl<T: Transport + 'static> Cache<T> {
    pub(super) async fn take_lease(&self, ctx: &Ctx, lease_ms: u64) -> LeaseOutcome {
        let token = flight::token(self.state.now_ms());
        let lock = keys::lease(self.namespace(), ctx.key.name());
        let acquire = flight::acquire(&lock, &token, lease_ms);
        let take = self.client.query::<Option<String>>(&acquire);
        match within(ctx.policy.deadline_ms, take).await {
            Some(Ok(Some(_))) => LeaseOutcome::Held(token),
            Some(Ok(None)) => LeaseOutcome::Taken,
            // No lease to be had: fetch anyway rather than fail.
            Some(Err(e)) => {
                self.redis_failed(&ctx.policy.group, &e);
                LeaseOutcome::Free
            }
            None => {
                self.redis_failed(&ctx.policy.group, &Error::Timeout(ctx.policy.deadline_ms));
                LeaseOutcome::Free
            }
        }
    }

    /// Polls for the lease holder's value for up to the policy's lease wait; hands it to this isolate's
    /// followers too.
    pub(super) async fn await_lease_holder<V: CacheValue + 'static>(
        &self,
        ctx: &Ctx,
        leader: &mut Option<Leader>,
    ) -> Option<Lookup<V>> {
        let polls = ctx.policy.lease_wait_ms / LEASE_POLL_MS;
        for _ in 0..polls {
            sleep(LEASE_POLL_MS as u32).await;
            let read = self.read::<V>(ctx.key.clone(), &ctx.policy).await;
            let (value, status) = match read.found {
                Found::Fresh { value, .. } => (Some(value), Status::Hit),
                Found::Negative => (None, Status::Negative),
                _ => continue,
            };
            if let Some(leader) = leader.as_mut() {
                leader.publish(match value.as_ref().map(V::to_payload) {
                    Some(Ok(payload)) => Landed::Found(payload.into()),
                    Some(Err(_)) => Landed::Abandoned,
                    None => Landed::NotFound,
                });
            }
            return Some(self.answer(ctx, value, status));
        }
        None
    }
}

//! The background refresh of a stale value: one per key per isolate (it leads the key's flight), run
//! through the cache's spawner so that the stale value is served at once.

use std::rc::Rc;

use super::Cache;
use super::colo_io::colo_put;
use super::envelope::{CacheValue, Kind};
use super::flight::{Landed, Role};
use super::lookup::{Ctx, Origin};
use super::timer::within;
use super::write::{envelope, write};
use crate::client::{Transport, commands};

impl<T: Transport + 'static> Cache<T> {
    /// Starts one background refresh of a stale key, unless this isolate is already fetching it.
    pub(super) fn refresh_in_background<V: CacheValue + 'static, E: std::fmt::Display + 'static>(
        &self,
        ctx: &Ctx,
        origin: impl Origin<V, E>,
    ) {
        let (Some(spawner), Role::Leader(mut leader)) =
            (&self.spawner, self.state.flights.join(&ctx.entry_key))
        else {
            return;
        };
        let client = Rc::clone(&self.client);
        let state = Rc::clone(&self.state);
        let colo = self.colo_for(ctx.key.name());
        let ctx = ctx.clone();
        state.metrics.with(&ctx.policy.group, |m| {
            m.refreshes += 1;
            m.origin_calls += 1;
        });
        spawner.spawn(Box::pin(async move {
            let group = ctx.policy.group.clone();
            let now = || state.now_ms();
            let landed = match origin.call().await {
                Ok(Some(value)) => match value.to_payload() {
                    Ok(payload) => {
                        let envelope = envelope(now(), &ctx, V::KIND, payload.clone());
                        let put = colo.and_then(|(store, name)| {
                            colo_put(&store, &state, name, &ctx, &envelope)
                        });
                        let oversize = write(&client, &state, &ctx, envelope, None).await;
                        if let (Some(put), false) = (put, oversize) {
                            put.await;
                        }
                        Landed::Found(payload.into())
                    }
                    Err(_) => {
                        state.metrics.with(&group, |m| m.cache_errors += 1);
                        Landed::Abandoned
                    }
                },
                Ok(None) => {
                    // The value is gone at the origin: remember that, or drop the stale copy.
                    if ctx.policy.negative_ttl_ms > 0 {
                        let envelope = envelope(now(), &ctx, Kind::Negative, String::new());
                        write(&client, &state, &ctx, envelope, None).await;
                    } else {
                        let unlink = commands::unlink([&ctx.entry_key]);
                        let sent = client.query::<i64>(&unlink);
                        let _ = within(ctx.policy.deadline_ms, sent).await;
                    }
                    Landed::NotFound
                }
                // The stale value stays servable until its grace ends.
                Err(e) => {
                    state.metrics.with(&group, |m| m.origin_errors += 1);
                    Landed::Failed(e.to_string().into())
                }
            };
            leader.publish(landed);
        }));
    }
}

//! How a [`Cache`] uses its colo tier: the check before the batch, the put after a fresh value, the
//! delete and the fence after a change. What an entry holds and when it may be served is decided in
//! [`colo`](super::colo).

use std::rc::Rc;

use super::colo::{self, ColoStore, Verdict};
use super::envelope::{CacheValue, Envelope};
use super::lookup::{Ctx, Pending, Source};
use super::{Cache, CacheState, Key, Policy, Task, keys};
use crate::client::{Batch, Transport};

impl<T: Transport + 'static> Cache<T> {
    /// [`Cache::prepare`], after asking the colo tier: a fresh colo entry answers without adding anything
    /// to `batch` (no round trip, even while Redis is down or the breaker is open); otherwise the read is
    /// added as `prepare` adds it. Awaits one local Cache API read, and only when the policy has a
    /// [`colo_ttl_ms`](Policy::colo_ttl_ms), the cache a [colo store](Cache::colo), and the memory tier
    /// has no fresh copy. Send the batch after this returns.
    pub async fn prepare_colo<V: CacheValue>(
        &self,
        batch: &Batch<'_, T>,
        key: impl Into<Key>,
        policy: &Policy,
    ) -> Pending<V> {
        let key = key.into();
        let now = self.state.now_ms();
        let entry_key = keys::entry(self.namespace(), key.name());
        let asks_colo = policy.colo_ttl_ms > 0
            && self.colo.is_some()
            && key.validate().is_ok()
            && self.memory_copy(&entry_key, policy, now).is_none();
        if asks_colo && let Some((value, envelope, until)) = self.colo_read::<V>(&key, policy).await
        {
            let source = Source::Colo(Rc::new(envelope), until);
            return self.pending(key, entry_key, policy, now, source, Some(value));
        }
        self.prepare(batch, key, policy)
    }

    /// The colo entry of `key`, when it is servable now and holds a `V`.
    async fn colo_read<V: CacheValue>(
        &self,
        key: &Key,
        policy: &Policy,
    ) -> Option<(V, Envelope, u64)> {
        let store = self.colo.as_ref()?;
        let name = self.colo_name(key.name());
        let stored = store.get(&name).await;
        let now = self.state.now_ms();
        let fence = self.state.colo_fences.of(&name);
        let tags = key.tag_list().len();
        match colo::verdict(
            stored.as_deref().map(str::as_bytes),
            &name,
            tags,
            fence,
            now,
            policy,
        ) {
            Verdict::Serve { envelope, until } => match envelope.value::<V>() {
                Some(value) => Some((value, envelope, until)),
                None => {
                    self.state.metrics.with(&policy.group, |m| m.corrupt += 1);
                    None
                }
            },
            Verdict::Corrupt => {
                self.state.metrics.with(&policy.group, |m| m.corrupt += 1);
                None
            }
            Verdict::Absent | Verdict::Foreign | Verdict::Outdated => None,
        }
    }

    /// Puts a fresh value that Redis confirmed (or the origin gave) for `ctx`'s lookup in the colo, in
    /// the background through the spawner. Nothing when the tier is off or the cache has no spawner
    /// (the colo is filled after responses, never on a lookup's path).
    pub(super) fn keep_in_colo(&self, ctx: &Ctx, envelope: &Envelope) {
        let (Some(store), Some(spawner)) = (&self.colo, &self.spawner) else {
            return;
        };
        let name = self.colo_name(ctx.key.name());
        if let Some(task) = colo_put(store, &self.state, name, ctx, envelope) {
            spawner.spawn(task);
        }
    }

    /// After a change to `key` in Redis: this isolate fences the key (its colo reads of entries
    /// confirmed until now miss) and deletes the key's colo entry in this location. A failed delete
    /// changes nothing: the entry still ends within its bound, and this isolate's fence holds.
    pub(super) async fn forget_in_colo(&self, key: &str) {
        let Some(store) = &self.colo else { return };
        let name = self.colo_name(key);
        self.state.colo_fences.key(&name, self.state.now_ms());
        let _ = store.delete(&name).await;
    }

    /// The colo store and the name of `key`'s colo entry, for a background refresh.
    pub(super) fn colo_for(&self, key: &str) -> Option<(Rc<dyn ColoStore>, String)> {
        let store = self.colo.as_ref()?;
        Some((Rc::clone(store), self.colo_name(key)))
    }

    fn colo_name(&self, key: &str) -> String {
        colo::name(self.client.url(), &keys::entry(self.namespace(), key))
    }
}

/// The put of `envelope` under `name`, confirmed at the start of `ctx`'s read; `None` when there is
/// nothing to put: the tier is off for the policy, the value is "not found", its colo time is already
/// over, or this isolate changed the key since the read (the value may be the one it replaced).
pub(super) fn colo_put(
    store: &Rc<dyn ColoStore>,
    state: &Rc<CacheState>,
    name: String,
    ctx: &Ctx,
    envelope: &Envelope,
) -> Option<Task> {
    let confirmed = ctx.started;
    let now = state.now_ms();
    let until = colo::until(confirmed, envelope, &ctx.policy);
    if ctx.policy.colo_ttl_ms == 0
        || envelope.is_negative()
        || now >= until
        || confirmed <= state.colo_fences.of(&name)
    {
        return None;
    }
    let body = colo::encode(&name, confirmed, until, envelope);
    let (store, state) = (Rc::clone(store), Rc::clone(state));
    Some(Box::pin(async move {
        // Checked again when the put runs (after the response): the key may have changed since.
        let now = state.now_ms();
        if now >= until || confirmed <= state.colo_fences.of(&name) {
            return;
        }
        // A put that fails leaves a miss: the next lookup reads Redis.
        let _ = store.put(&name, body, colo::max_age_s(until, now)).await;
    }))
}

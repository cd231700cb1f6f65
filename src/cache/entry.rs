//! Direct access to entries, next to the lookup: [`Cache::get`], [`Cache::set`],
//! [`Cache::set_not_found`] and [`Cache::delete`] ([`Cache::update`] is in its own module).
//!
//! They read and write the same envelopes as [`Cache::get_or_fetch`], so the two mix freely: a value
//! `set` is a hit for the next lookup, and a lookup's value is what `get` returns. Unlike a lookup they
//! have no origin to fall back on, so a Redis failure is returned as an [`Error`] rather than bypassed,
//! and they ask Redis even while the breaker is open (their outcomes still feed it).

use std::rc::Rc;

use super::envelope::{CacheValue, Envelope, Kind};
use super::gather::{Gather, Values};
use super::lookup::{Ctx, parse_generation};
use super::policy::{Policy, Standing, standing};
use super::timer::within;
use super::write::record;
use super::{Cache, Key, keys};
use crate::client::{Reply, Transport, cmd, commands};
use crate::{Error, Result};

/// What [`Cache::get`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached<V> {
    /// A fresh value: what a lookup would serve as a hit.
    Fresh(V),
    /// A value past its fresh time but inside the policy's grace window: what a lookup would serve
    /// while refreshing it. `get` calls no origin, so it refreshes nothing: the caller decides whether a
    /// stale value will do ([`Cached::value`]) or not ([`Cached::fresh`]).
    Stale(V),
    /// A remembered "not found" (an origin answered `None`, or [`Cache::set_not_found`]), still fresh:
    /// the cache knows the value does not exist, which is not the same as not knowing.
    Absent,
    /// Nothing usable: no entry, an expired one, one written before a tag was invalidated, or one that
    /// does not decode as `V`. A lookup would call the origin.
    NotCached,
}

impl<V> Cached<V> {
    /// The value if it is fresh.
    pub fn fresh(self) -> Option<V> {
        match self {
            Cached::Fresh(v) => Some(v),
            _ => None,
        }
    }

    /// The value, fresh or stale.
    pub fn value(self) -> Option<V> {
        match self {
            Cached::Fresh(v) | Cached::Stale(v) => Some(v),
            Cached::Absent | Cached::NotCached => None,
        }
    }
}

/// `value`'s payload, if it is within the policy's size cap. A direct write that cannot write must say
/// so (a lookup, which still has its value to return, just skips the write).
///
/// # Errors
/// [`Error::InvalidArgument`] when the value cannot be encoded, [`Error::TooLarge`] over the cap.
pub(super) fn payload_within_cap<V: CacheValue>(value: &V, policy: &Policy) -> Result<String> {
    let payload = value.to_payload().map_err(Error::InvalidArgument)?;
    if payload.len() > policy.value_cap() {
        return Err(Error::TooLarge(format!(
            "the cache value is {} bytes; the policy {:?} caps values at {}",
            payload.len(),
            policy.group,
            policy.value_cap()
        )));
    }
    Ok(payload)
}

impl<T: Transport + 'static> Cache<T> {
    /// The value cached under `key`, read as `policy` reads it (its grace decides what is stale), without
    /// calling any origin. One round trip (the same read of the entry and its tags' generations as a
    /// lookup's); none when this isolate's memory tier holds a fresh copy.
    ///
    /// Pass the key with the tags it was written with: an entry written under other tags, or before one
    /// of them was invalidated, is [`Cached::NotCached`].
    ///
    /// ```no_run
    /// # async fn run<T: redge::client::Transport + 'static>(cache: redge::cache::Cache<T>) -> redge::Result<()> {
    /// use redge::cache::{Cached, Policy};
    /// use redge::client::Json;
    ///
    /// let policy = Policy::new("balances").ttl_ms(30_000).grace_ms(60_000);
    /// match cache.get::<Json<i64>>("balance:42", &policy).await? {
    ///     Cached::Fresh(Json(cents)) => println!("{cents}"),
    ///     Cached::Stale(Json(cents)) => println!("{cents}, possibly outdated"),
    ///     Cached::Absent => println!("no such account"),
    ///     Cached::NotCached => println!("ask the origin"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable key or tag (nothing sent); [`Error::Timeout`] past the
    /// policy's deadline; any Redis error.
    pub async fn get<V: CacheValue>(
        &self,
        key: impl Into<Key>,
        policy: &Policy,
    ) -> Result<Cached<V>> {
        let mut ctx = self.context(key.into(), policy)?;
        let now = self.state.now_ms();
        if let Some(envelope) = self.memory_copy(&ctx.entry_key, policy, now)
            && let Some(value) = envelope.value::<V>()
        {
            return Ok(Cached::Fresh(value));
        }
        let replies = self.read_entry(&ctx).await?;
        let mut replies = replies.into_iter();
        let stored = replies.next().flatten();
        ctx.generations = replies.map(|g| parse_generation(g.as_deref())).collect();
        Ok(
            match standing(stored.as_deref(), &ctx.generations, now, policy) {
                Standing::Fresh(envelope) => match envelope.value::<V>() {
                    Some(value) => {
                        self.remember(&ctx, Rc::new(envelope), u64::MAX);
                        Cached::Fresh(value)
                    }
                    None => Cached::NotCached,
                },
                Standing::Stale(envelope) => {
                    envelope.value().map_or(Cached::NotCached, Cached::Stale)
                }
                Standing::Absent => Cached::Absent,
                Standing::Unusable | Standing::Corrupt => Cached::NotCached,
            },
        )
    }

    /// Caches `value` under `key` as if an origin had just returned it: fresh for the policy's
    /// `ttl_ms`, then stale for its `grace_ms`, tagged with the key's tags at their current
    /// generations. A later [`Cache::get_or_fetch`] of the key is a hit without calling its origin.
    /// This isolate's memory copy is replaced (kept only when the policy has a memory tier).
    ///
    /// The TTL is the value's own: it is written into the entry, so a lookup under a policy with
    /// another TTL still finds the value fresh until the time set here. For a TTL other than the key
    /// group's, pass a copy of its policy with that TTL, as below.
    ///
    /// One round trip: the entry embeds the tags' generations this isolate saw last, and the counters
    /// are read in the same batch. When they were not current, a second round trip writes the entry
    /// again with the generations just read (only if it is still this write's): an entry never embeds
    /// a generation newer than its counter, so an invalidation is never lost (see
    /// [`generations`](super::generations)). As with any cache in
    /// front of an origin, a lookup of the key whose origin call was already running writes its answer
    /// when it lands, over this value.
    ///
    /// ```no_run
    /// # async fn run<T: redge::client::Transport + 'static>(cache: redge::cache::Cache<T>) -> redge::Result<()> {
    /// use redge::cache::{Key, Policy};
    /// use redge::client::Json;
    ///
    /// let policy = Policy::new("balances").ttl_ms(30_000);
    /// let key = Key::new("balance:42").tag("user:42");
    /// cache.set(key.clone(), &Json(1_250), &policy).await?;
    /// // This one value is fresh for 5 seconds only.
    /// cache.set(key, &Json(1_300), &policy.clone().ttl_ms(5_000)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable key or tag, or a value that cannot be encoded;
    /// [`Error::TooLarge`] for a value over the policy's size cap (nothing is sent);
    /// [`Error::Timeout`] past the policy's deadline; any Redis error.
    pub async fn set<V: CacheValue>(
        &self,
        key: impl Into<Key>,
        value: &V,
        policy: &Policy,
    ) -> Result<()> {
        let ctx = self.context(key.into(), policy)?;
        let payload = payload_within_cap(value, policy)?;
        self.write_entry(ctx, V::KIND, payload, policy.physical_ttl_ms())
            .await
    }

    /// Remembers that `key` does not exist, as a lookup does when its origin answers `None`: for the
    /// policy's `negative_ttl_ms`, lookups answer "not found" without calling the origin and
    /// [`Cache::get`] answers [`Cached::Absent`]. With a `negative_ttl_ms` of 0 (the default) "not
    /// found" is never cached, so the entry is deleted instead. One round trip.
    ///
    /// # Errors
    /// As [`Cache::set`].
    pub async fn set_not_found(&self, key: impl Into<Key>, policy: &Policy) -> Result<()> {
        let ctx = self.context(key.into(), policy)?;
        if policy.negative_ttl_ms == 0 {
            self.delete(ctx.key.name()).await?;
            return Ok(());
        }
        self.write_entry(ctx, Kind::Negative, String::new(), policy.negative_ttl_ms)
            .await
    }

    /// Deletes `key`'s entry (a value or a remembered "not found") and this isolate's memory copy;
    /// returns whether an entry existed. The next lookup is a miss and [`Cache::get`] answers
    /// [`Cached::NotCached`]. Tags play no part: an entry is stored under its key alone.
    ///
    /// One round trip; tried once more after a transport error or a 5xx, since deleting twice is
    /// harmless. The memory tier of other isolates keeps its copy for at most its policy's
    /// `memory_ttl_ms`; with a [colo store](Cache::colo), the key's colo entry in this location is
    /// deleted too, and other locations' for at most the policy's `colo_ttl_ms`.
    ///
    /// ```no_run
    /// # async fn run<T: redge::client::Transport + 'static>(cache: redge::cache::Cache<T>) -> redge::Result<()> {
    /// let existed: bool = cache.delete("balance:42").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable key; any Redis error.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        keys::validate("key", key).map_err(Error::InvalidArgument)?;
        let entry = keys::entry(self.namespace(), key);
        self.state.memory.remove(&entry);
        let unlink = commands::unlink([&entry]);
        let removed = match self.client.query::<i64>(&unlink).await {
            Err(e) if e.is_retryable() => self.client.query(&unlink).await,
            other => other,
        };
        // After the delete (a read that started before it must not pass the fence), whatever its
        // outcome: a colo copy of a key being deleted is never wanted.
        self.forget_in_colo(key).await;
        Ok(removed? > 0)
    }

    /// The context of a direct operation on `key`, after checking the key and its tags.
    pub(super) fn context(&self, key: Key, policy: &Policy) -> Result<Ctx> {
        key.validate().map_err(Error::InvalidArgument)?;
        Ok(Ctx {
            entry_key: keys::entry(self.namespace(), key.name()),
            key,
            policy: policy.clone(),
            started: self.state.now_ms(),
            generations: Vec::new(),
        })
    }

    /// Reads the entry and its tags' generations (one `MGET` per slot, one round trip) within the
    /// policy's deadline.
    pub(super) async fn read_entry(&self, ctx: &Ctx) -> Result<Values> {
        let batch = self.client.batch();
        let read = Gather::add(&batch, &self.entry_and_tags(&ctx.key, &ctx.entry_key));
        let values = self
            .bounded(ctx, async {
                batch.send().await?;
                read.take()
            })
            .await?;
        let generations: Vec<u64> = values[1..]
            .iter()
            .map(|g| parse_generation(g.as_deref()))
            .collect();
        self.state.known.saw(ctx.key.tag_list(), &generations);
        Ok(values)
    }

    /// Runs one round trip within the policy's deadline and feeds its outcome to the breaker and the
    /// metrics.
    pub(super) async fn bounded<R>(
        &self,
        ctx: &Ctx,
        call: impl Future<Output = Result<R>>,
    ) -> Result<R> {
        let outcome = within(ctx.policy.deadline_ms, call)
            .await
            .unwrap_or(Err(Error::Timeout(ctx.policy.deadline_ms)));
        let (recorded, outcome) = match outcome {
            Ok(r) => (Ok(()), Ok(r)),
            Err(e) => (Err(e.clone()), Err(e)),
        };
        record(&self.state, &ctx.policy.group, recorded);
        outcome
    }

    /// Writes an envelope of `kind` created now (see [`Cache::set`] for the generations it embeds);
    /// replaces this isolate's memory copy.
    async fn write_entry(&self, ctx: Ctx, kind: Kind, payload: String, ttl_ms: u64) -> Result<()> {
        let now = self.state.now_ms();
        let fresh_ms = if kind == Kind::Negative {
            ctx.policy.negative_ttl_ms
        } else {
            ctx.policy.ttl_ms
        };
        let tags = ctx.key.tag_list();
        let mut envelope = Envelope {
            created: now,
            fresh_until: now.saturating_add(fresh_ms),
            kind,
            generations: self.state.known.of(tags),
            payload,
        };
        let text = envelope.encode();
        let counters: Vec<String> = tags
            .iter()
            .map(|t| keys::tag(self.namespace(), t))
            .collect();
        // Whatever happens, the old memory copy is outdated.
        self.state.memory.remove(&ctx.entry_key);
        let batch = self.client.batch();
        let set = batch.add::<()>(
            cmd("SET")
                .arg(&ctx.entry_key)
                .arg(&text)
                .arg("PX")
                .arg(ttl_ms.max(1)),
        );
        let read = (!counters.is_empty()).then(|| Gather::add(&batch, &counters));
        let observed = self
            .bounded(&ctx, async {
                batch.send().await?;
                set.take()?;
                read.map(Gather::take).transpose()
            })
            .await;
        let outcome = match observed {
            Ok(Some(values)) => {
                let current: Vec<u64> = values
                    .iter()
                    .map(|g| parse_generation(g.as_deref()))
                    .collect();
                self.state.known.saw(tags, &current);
                if current == envelope.generations {
                    Ok(true)
                } else {
                    // Written with generations older than the counters: a miss, never a value an
                    // invalidation should have hidden. Write it again with the generations just read,
                    // unless another write replaced it meanwhile.
                    envelope.generations = current;
                    self.confirm(&ctx, &text, &envelope.encode()).await
                }
            }
            Ok(None) => Ok(true),
            Err(e) => Err(e),
        };
        self.forget_in_colo(ctx.key.name()).await;
        if outcome? {
            self.remember(&ctx, Rc::new(envelope), u64::MAX);
        }
        Ok(())
    }

    /// Replaces the entry `written` by `text` if it is still there (the update script's
    /// compare-and-set); whether it was.
    async fn confirm(&self, ctx: &Ctx, written: &str, text: &str) -> Result<bool> {
        let sha = sha1_smol::Sha1::from(written.as_bytes())
            .digest()
            .to_string();
        let call = self.client.eval::<Reply, _, _>(
            super::update::update_script(),
            [&ctx.entry_key],
            [sha.as_str(), text],
        );
        Ok(matches!(self.bounded(ctx, call).await?, Reply::Int(1)))
    }
}

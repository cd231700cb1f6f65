//! The lookup itself: prepare the read, finish it, resolve it (origin call, write, refresh).

use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;

use super::envelope::{CacheValue, Envelope, Kind};
use super::flight::{Landed, Leader, Role};
use super::gather::Gather;
use super::lease::LeaseOutcome;
use super::policy::{Freshness, Policy, Standing, freshness, standing};
use super::timer::within;
use super::write::{envelope, release, write};
use super::{Cache, CacheState, Key, Lookup, LookupError, Status, keys};
use crate::Error;
use crate::client::{Batch, Transport};

/// An origin: called at most once, returning found (`Some`), not found (`None`) or an error. Implemented
/// by every `FnOnce() -> impl Future<Output = Result<Option<V>, E>>`; the public methods spell the
/// closure bounds out so that callers' closures infer their types.
pub(super) trait Origin<V, E>: 'static {
    type Call: Future<Output = std::result::Result<Option<V>, E>> + 'static;
    fn call(self) -> Self::Call;
}

impl<V, E, F, Fut> Origin<V, E> for F
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = std::result::Result<Option<V>, E>> + 'static,
{
    type Call = Fut;
    fn call(self) -> Fut {
        self()
    }
}

/// Where a lookup is: the key, its policy and what the read found.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    pub(super) key: Key,
    pub(super) entry_key: String,
    pub(super) policy: Policy,
    pub(super) started: u64,
    /// The tag generations read with the entry: written into the new envelope, so an invalidation that
    /// happens while the origin is being called still turns the new entry into a miss.
    pub(super) generations: Vec<u64>,
}

pub(super) enum Source {
    Invalid(String),
    Memory(Rc<Envelope>),
    /// A fresh colo entry, servable until the time given; its value is the `Pending`'s `early`.
    Colo(Rc<Envelope>, u64),
    Skipped,
    Redis(Gather),
}

/// A read added to a batch by [`Cache::prepare`]; [`Pending::finish`] it after the batch was sent.
pub struct Pending<V> {
    state: Rc<CacheState>,
    ctx: Ctx,
    source: Source,
    /// The value a tier answered with before the batch (decoded once, when it was checked).
    early: Option<V>,
    value: PhantomData<fn() -> V>,
}

/// Which tier answered a fresh value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tier {
    Redis,
    Memory,
    /// The colo, with the entry's limit.
    Colo(u64),
}

impl<V> std::fmt::Debug for Pending<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("key", &self.ctx.key)
            .finish()
    }
}

pub(super) enum Found<V> {
    Invalid(String),
    Fresh {
        value: V,
        envelope: Rc<Envelope>,
        tier: Tier,
    },
    Negative,
    Stale {
        value: V,
    },
    /// Nothing usable; Redis answered, so the origin's answer is written.
    Miss,
    /// Redis was skipped or failed: the origin answers and nothing is written.
    Unavailable,
}

/// What a read found, ready for [`Cache::resolve`].
pub struct Read<V> {
    ctx: Ctx,
    pub(super) found: Found<V>,
}

impl<V> Read<V> {
    /// The status this read alone would answer with (before any origin call): `hit`, `stale`,
    /// `negative`, `miss` or `bypass`.
    pub fn status(&self) -> Status {
        match self.found {
            Found::Fresh { .. } => Status::Hit,
            Found::Negative => Status::Negative,
            Found::Stale { .. } => Status::Stale,
            Found::Miss | Found::Invalid(_) => Status::Miss,
            Found::Unavailable => Status::Bypass,
        }
    }
}

impl<V> Pending<V> {
    /// Whether a tier above Redis (this isolate's memory, the colo) answered with a fresh value: the
    /// lookup added nothing to the batch and will call no origin. (Nothing is added either for an
    /// invalid key or while the breaker is open, but then the origin answers.)
    pub fn answered_by_tier(&self) -> bool {
        matches!(self.source, Source::Memory(_) | Source::Colo(..))
    }
}

impl<V: CacheValue> Pending<V> {
    /// Reads the batch's answer (sync) and applies the cache's failure policy: a Redis failure, or a
    /// batch that was not sent, goes to the origin (and counts against the breaker); any other error
    /// (an unexpected reply) is a miss that the write repairs.
    pub fn finish(self) -> Read<V> {
        let Pending {
            state,
            mut ctx,
            source,
            early,
            ..
        } = self;
        let now = state.now_ms();
        let group = ctx.policy.group.clone();
        let found = match source {
            Source::Invalid(why) => Found::Invalid(why),
            Source::Skipped => Found::Unavailable,
            Source::Memory(envelope) => match envelope.value::<V>() {
                Some(value) => Found::Fresh {
                    value,
                    envelope,
                    tier: Tier::Memory,
                },
                None => Found::Miss,
            },
            Source::Colo(envelope, until) => match early {
                Some(value) => Found::Fresh {
                    value,
                    envelope,
                    tier: Tier::Colo(until),
                },
                None => Found::Miss,
            },
            Source::Redis(gather) => match gather.take() {
                Ok(replies) => {
                    state.breaker.success();
                    let mut replies = replies.into_iter();
                    let stored = replies.next().flatten();
                    ctx.generations = replies.map(|g| parse_generation(g.as_deref())).collect();
                    state.known.saw(ctx.key.tag_list(), &ctx.generations);
                    classify(&state, &ctx, stored.as_deref(), now)
                }
                Err(e) => {
                    state.metrics.with(&group, |m| m.cache_errors += 1);
                    if e.is_unavailable() || matches!(e, Error::NotSent) {
                        state.breaker.failure(now);
                        Found::Unavailable
                    } else {
                        state.breaker.success();
                        Found::Miss
                    }
                }
            },
        };
        Read { ctx, found }
    }
}

/// A tag generation as stored (`None`: never invalidated, generation 0).
pub(super) fn parse_generation(stored: Option<&[u8]>) -> u64 {
    stored
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Decides what an entry read at `now` is worth to a lookup of `V`.
fn classify<V: CacheValue>(
    state: &CacheState,
    ctx: &Ctx,
    stored: Option<&[u8]>,
    now: u64,
) -> Found<V> {
    let corrupt = || {
        state.metrics.with(&ctx.policy.group, |m| m.corrupt += 1);
        Found::Miss
    };
    match standing(stored, &ctx.generations, now, &ctx.policy) {
        Standing::Fresh(envelope) => match envelope.value::<V>() {
            Some(value) => Found::Fresh {
                value,
                envelope: Rc::new(envelope),
                tier: Tier::Redis,
            },
            // Another kind, or a payload that does not decode.
            None => corrupt(),
        },
        Standing::Stale(envelope) => match envelope.value::<V>() {
            Some(value) => Found::Stale { value },
            None => corrupt(),
        },
        Standing::Absent => Found::Negative,
        // Absent, expired, invalidated by a tag: a miss.
        Standing::Unusable => Found::Miss,
        Standing::Corrupt => corrupt(),
    }
}

impl<T: Transport + 'static> Cache<T> {
    /// Adds this lookup's read (the entry and its tags' generations: one `MGET` per slot) to `batch`, unless
    /// the memory tier answers or the breaker is open (then nothing is added). Send the batch, then
    /// [`Pending::finish`] and [`Cache::resolve`].
    pub fn prepare<V: CacheValue>(
        &self,
        batch: &Batch<'_, T>,
        key: impl Into<Key>,
        policy: &Policy,
    ) -> Pending<V> {
        let key = key.into();
        let now = self.state.now_ms();
        let entry_key = keys::entry(self.namespace(), key.name());
        let source = if let Err(why) = key.validate() {
            Source::Invalid(why)
        } else if let Some(envelope) = self.memory_copy(&entry_key, policy, now) {
            // Fresh in this isolate's memory: no round trip.
            Source::Memory(envelope)
        } else if !self.state.breaker.allow(now) {
            // Redis failed repeatedly: skip it until the breaker half-opens.
            Source::Skipped
        } else {
            Source::Redis(Gather::add(batch, &self.entry_and_tags(&key, &entry_key)))
        };
        self.pending(key, entry_key, policy, now, source, None)
    }

    /// A lookup of `key` started at `now`, answered by `source` (and `early`, a value a tier decoded).
    pub(super) fn pending<V>(
        &self,
        key: Key,
        entry_key: String,
        policy: &Policy,
        now: u64,
        source: Source,
        early: Option<V>,
    ) -> Pending<V> {
        Pending {
            state: Rc::clone(&self.state),
            ctx: Ctx {
                key,
                entry_key,
                policy: policy.clone(),
                started: now,
                generations: Vec::new(),
            },
            source,
            early,
            value: PhantomData,
        }
    }

    /// This isolate's memory copy of an entry, when the policy keeps one and it is fresh at `now`.
    pub(super) fn memory_copy(
        &self,
        entry_key: &str,
        policy: &Policy,
        now: u64,
    ) -> Option<Rc<Envelope>> {
        (policy.memory_ttl_ms > 0)
            .then(|| self.state.memory.get(entry_key, now))
            .flatten()
            .filter(|e| freshness(e.fresh_until, now, policy) == Freshness::Fresh)
    }

    /// The entry's Redis key, then the generation counter of each of its tags: the keys of the read.
    pub(super) fn entry_and_tags(&self, key: &Key, entry_key: &str) -> Vec<String> {
        let tags = key
            .tag_list()
            .iter()
            .map(|t| keys::tag(self.namespace(), t));
        std::iter::once(entry_key.to_owned()).chain(tags).collect()
    }

    /// Looks `key` up and, when nothing usable is cached, asks `origin` (`Ok(Some(v))` found,
    /// `Ok(None)` not found, `Err(e)` failed); see the [module docs](super) for every branch. A fresh
    /// hit is one round trip; a miss two (read, then write).
    ///
    /// # Errors
    /// [`LookupError::InvalidKey`] for an unusable key or tag (nothing sent); the origin's error when it
    /// fails and nothing stale can be served. Redis failures are not errors: the origin answers.
    pub async fn get_or_fetch<V, E, F, Fut>(
        &self,
        key: impl Into<Key>,
        policy: &Policy,
        origin: F,
    ) -> std::result::Result<Lookup<V>, LookupError<E>>
    where
        V: CacheValue + 'static,
        E: std::fmt::Display + 'static,
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = std::result::Result<Option<V>, E>> + 'static,
    {
        let read = self.read(key, policy).await;
        self.resolve(read, origin).await
    }

    /// Sends this lookup's read in its own round trip, within the policy's deadline.
    pub(super) async fn read<V: CacheValue>(
        &self,
        key: impl Into<Key>,
        policy: &Policy,
    ) -> Read<V> {
        let batch = self.client.batch();
        let pending = self.prepare_colo::<V>(&batch, key, policy).await;
        if !batch.is_empty() {
            // Past the deadline the send is dropped: the handle reports NotSent, which `finish`
            // treats as Redis unavailable.
            let _ = within(policy.deadline_ms, batch.send()).await;
        }
        pending.finish()
    }

    /// Completes a lookup whose read was finished: serves it, or calls the origin (sharing the call with
    /// concurrent lookups of the same key) and writes its answer; refreshes a stale value.
    ///
    /// # Errors
    /// As [`Cache::get_or_fetch`].
    pub async fn resolve<V, E, F, Fut>(
        &self,
        read: Read<V>,
        origin: F,
    ) -> std::result::Result<Lookup<V>, LookupError<E>>
    where
        V: CacheValue + 'static,
        E: std::fmt::Display + 'static,
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = std::result::Result<Option<V>, E>> + 'static,
    {
        let Read { ctx, found } = read;
        match found {
            Found::Invalid(why) => Err(LookupError::InvalidKey(why)),
            // Fresh: serve it (and keep it in the tiers above the one that answered, when the policy
            // says so).
            Found::Fresh {
                value,
                envelope,
                tier,
            } => {
                match tier {
                    Tier::Redis => {
                        self.keep_in_colo(&ctx, &envelope);
                        self.remember(&ctx, envelope, u64::MAX);
                    }
                    Tier::Colo(until) => self.remember(&ctx, envelope, until),
                    Tier::Memory => {}
                }
                let mut lookup = self.answer(&ctx, Some(value), Status::Hit);
                lookup.from_memory = tier == Tier::Memory;
                lookup.from_colo = matches!(tier, Tier::Colo(_));
                if tier != Tier::Redis {
                    self.state.metrics.with(&ctx.policy.group, |m| {
                        m.hits -= 1;
                        if lookup.from_memory {
                            m.memory_hits += 1;
                        } else {
                            m.colo_hits += 1;
                        }
                    });
                }
                Ok(lookup)
            }
            // A remembered "not found".
            Found::Negative => Ok(self.answer(&ctx, None, Status::Negative)),
            // Stale with a spawner: serve now, refresh once in the background.
            Found::Stale { value } if self.spawner.is_some() => {
                self.refresh_in_background(&ctx, origin);
                Ok(self.answer(&ctx, Some(value), Status::Stale))
            }
            // Stale without a spawner: refresh inline; the stale value covers an origin failure.
            Found::Stale { value } => self.fetch(ctx, true, Some(value), origin).await,
            // Miss: the origin answers and the answer is written.
            Found::Miss => self.fetch(ctx, true, None, origin).await,
            // Redis skipped or failing: the origin answers, nothing is written.
            Found::Unavailable => self.fetch(ctx, false, None, origin).await,
        }
    }

    /// The lookup's answer, counted in the metrics.
    pub(super) fn answer<V>(&self, ctx: &Ctx, value: Option<V>, status: Status) -> Lookup<V> {
        let took_ms = self.state.now_ms().saturating_sub(ctx.started);
        self.state.metrics.with(&ctx.policy.group, |m| {
            m.observe(took_ms);
            match status {
                Status::Hit => m.hits += 1,
                Status::Miss => m.misses += 1,
                Status::Stale => m.stale += 1,
                Status::Negative => m.negative += 1,
                Status::Bypass => m.bypass += 1,
            }
        });
        Lookup {
            value,
            status,
            from_memory: false,
            from_colo: false,
            origin_called: false,
            origin_failed: false,
            oversize: false,
            took_ms,
        }
    }

    /// Keeps `envelope` in this isolate's memory when the policy says so, until `limit` at the latest
    /// (a colo entry's own limit: a memory copy must not outlive the bound of the tier it came from).
    pub(super) fn remember(&self, ctx: &Ctx, envelope: Rc<Envelope>, limit: u64) {
        if ctx.policy.memory_ttl_ms > 0 && !envelope.is_negative() {
            let now = self.state.now_ms();
            let until = now
                .saturating_add(ctx.policy.memory_ttl_ms)
                .min(envelope.fresh_until)
                .min(limit);
            self.state.memory.put(&ctx.entry_key, envelope, until, now);
        }
    }

    /// The origin call of a miss (or of a stale value refreshed inline), shared with concurrent lookups
    /// of the same key in this isolate.
    async fn fetch<V: CacheValue + 'static, E: std::fmt::Display + 'static>(
        &self,
        ctx: Ctx,
        writable: bool,
        stale: Option<V>,
        origin: impl Origin<V, E>,
    ) -> std::result::Result<Lookup<V>, LookupError<E>> {
        let status = if writable {
            Status::Miss
        } else {
            Status::Bypass
        };
        let leader = match self.state.flights.join(&ctx.entry_key) {
            Role::Leader(leader) => Some(leader),
            Role::Follower(wait) => {
                let joined = wait.landed().await;
                let group = &ctx.policy.group;
                match joined {
                    Landed::Found(payload) => {
                        if let Some(value) = V::from_payload(&payload) {
                            self.state.metrics.with(group, |m| m.coalesced += 1);
                            return Ok(self.answer(&ctx, Some(value), status));
                        }
                    }
                    Landed::NotFound => {
                        self.state.metrics.with(group, |m| m.coalesced += 1);
                        return Ok(self.answer(&ctx, None, status));
                    }
                    Landed::Failed(message) => {
                        self.state.metrics.with(group, |m| m.coalesced += 1);
                        return match stale {
                            Some(value) => Ok(self.stale_after_error(&ctx, value)),
                            None => Err(LookupError::Joined(message.to_string())),
                        };
                    }
                    // The leader went away: call the origin ourselves, outside any flight.
                    Landed::Abandoned => {}
                }
                None
            }
        };
        self.lead(ctx, leader, writable, stale, origin).await
    }

    fn stale_after_error<V>(&self, ctx: &Ctx, value: V) -> Lookup<V> {
        let mut lookup = self.answer(ctx, Some(value), Status::Stale);
        lookup.origin_failed = true;
        lookup
    }

    async fn lead<V: CacheValue + 'static, E: std::fmt::Display + 'static>(
        &self,
        ctx: Ctx,
        mut leader: Option<Leader>,
        writable: bool,
        stale: Option<V>,
        origin: impl Origin<V, E>,
    ) -> std::result::Result<Lookup<V>, LookupError<E>> {
        let status = if writable {
            Status::Miss
        } else {
            Status::Bypass
        };
        let mut lease = None;
        if let (true, Some(lease_ms)) = (writable, ctx.policy.lease_ms) {
            match self.take_lease(&ctx, lease_ms).await {
                LeaseOutcome::Held(token) => lease = Some(token),
                LeaseOutcome::Free => {}
                LeaseOutcome::Taken => {
                    // Another isolate is fetching: serve stale if we can, else wait for its value.
                    if let Some(value) = stale {
                        return Ok(self.answer(&ctx, Some(value), Status::Stale));
                    }
                    if let Some(lookup) = self.await_lease_holder::<V>(&ctx, &mut leader).await {
                        return Ok(lookup);
                    }
                }
            }
        }
        let group = ctx.policy.group.clone();
        self.state.metrics.with(&group, |m| m.origin_calls += 1);
        let fetched = origin.call().await;
        match fetched {
            Ok(value) => {
                let payload = match &value {
                    Some(v) => match v.to_payload() {
                        Ok(p) => Some(Ok(p)),
                        Err(_) => Some(Err(())),
                    },
                    None => None,
                };
                let mut oversize = false;
                match payload {
                    Some(Ok(payload)) => {
                        let payload: Rc<str> = payload.into();
                        if let Some(leader) = leader.as_mut() {
                            leader.publish(Landed::Found(Rc::clone(&payload)));
                        }
                        if writable {
                            let envelope =
                                envelope(self.state.now_ms(), &ctx, V::KIND, payload.to_string());
                            let kept = (ctx.policy.memory_ttl_ms > 0 || ctx.policy.colo_ttl_ms > 0)
                                .then(|| envelope.clone());
                            oversize =
                                write(&self.client, &self.state, &ctx, envelope, lease).await;
                            if let (Some(envelope), false) = (kept, oversize) {
                                self.keep_in_colo(&ctx, &envelope);
                                self.remember(&ctx, Rc::new(envelope), u64::MAX);
                            }
                        }
                    }
                    Some(Err(())) => {
                        // Not encodable: returned, not cached; the followers ask the origin.
                        self.state.metrics.with(&group, |m| m.cache_errors += 1);
                        release(&self.client, &self.state, &ctx, lease).await;
                    }
                    None => {
                        if let Some(leader) = leader.as_mut() {
                            leader.publish(Landed::NotFound);
                        }
                        if writable && ctx.policy.negative_ttl_ms > 0 {
                            let envelope =
                                envelope(self.state.now_ms(), &ctx, Kind::Negative, String::new());
                            write(&self.client, &self.state, &ctx, envelope, lease).await;
                        } else {
                            release(&self.client, &self.state, &ctx, lease).await;
                        }
                    }
                }
                drop(leader);
                let mut lookup = self.answer(&ctx, value, status);
                lookup.origin_called = true;
                lookup.oversize = oversize;
                Ok(lookup)
            }
            // Errors are never cached.
            Err(e) => {
                self.state.metrics.with(&group, |m| m.origin_errors += 1);
                if let Some(mut leader) = leader {
                    leader.publish(Landed::Failed(e.to_string().into()));
                }
                release(&self.client, &self.state, &ctx, lease).await;
                match stale {
                    Some(value) => {
                        let mut lookup = self.stale_after_error(&ctx, value);
                        lookup.origin_called = true;
                        Ok(lookup)
                    }
                    None => Err(LookupError::Origin(e)),
                }
            }
        }
    }

    pub(super) fn redis_failed(&self, group: &str, error: &Error) {
        self.state.metrics.with(group, |m| m.cache_errors += 1);
        if error.is_unavailable() {
            self.state.breaker.failure(self.state.now_ms());
        }
    }
}

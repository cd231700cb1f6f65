//! Cached lookups: [`Cache::get_or_fetch`] in front of a slow origin, with stale-while-revalidate,
//! stale-if-error, negative caching, single flight, tags, a size cap, a circuit breaker, an optional
//! memory tier and an optional colo tier (the location's HTTP cache, see [`colo`]).
//!
//! ```no_run
//! # use std::rc::Rc;
//! # #[derive(serde::Serialize, serde::Deserialize)] struct User { name: String }
//! # async fn fetch_user(id: u64) -> Result<Option<User>, String> { Ok(None) }
//! # async fn route(client: redge::Client) -> Result<(), redge::cache::LookupError<String>> {
//! use redge::cache::{Cache, CacheOptions, CacheState, Key, Policy};
//! use redge::client::Json;
//!
//! // Once per isolate (a thread_local): single flight, breaker, memory tier and metrics live here.
//! let state = CacheState::new(CacheOptions::default());
//! // Per request (in a Worker, add `.spawner(...)` so that refreshes run after the response):
//! let cache = Cache::new(Rc::new(client), state);
//! let policy = Policy::new("users").ttl_ms(30_000).grace_ms(600_000).negative_ttl_ms(5_000);
//! let user = cache
//!     .get_or_fetch(Key::new("user:42").tag("users"), &policy, || async {
//!         fetch_user(42).await.map(|found| found.map(Json)) // Ok(Some(v)) | Ok(None) | Err(e)
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # One lookup, branch by branch
//!
//! Before Redis, two tiers that cost no round trip may answer a fresh value: this isolate's memory
//! ([`Policy::memory_ttl_ms`]) and the location's HTTP cache ([`Policy::colo_ttl_ms`], with a
//! [`ColoStore`] given to [`Cache::colo`]; see [`colo`] for what it stores and the bound on what it may
//! miss). Reading the colo is asynchronous, so a lookup that uses it is prepared with
//! [`Cache::prepare_colo`] (or [`Plan::lookup_colo`](crate::Plan::lookup_colo)), awaited before the
//! batch is sent.
//!
//! The read is ONE round trip: the entry and the current generation of each of its tags come back
//! together (one `MGET` per Redis Cluster slot in one batch: an entry and its lease share a slot, each
//! tag's counter has its own, see [`keys`]), so tag invalidation needs no scan. An entry embeds the
//! generations read before its value was fetched and is valid only while they are current; why that
//! never misses an invalidation without any script reading counters and entry together is in
//! [`generations`].
//!
//! - **Fresh** (now < fresh-until, and every tag generation unchanged): served. One round trip, no write.
//! - **Negative** (a remembered "not found", still fresh): served as not found. One round trip.
//! - **Stale** (inside the grace window): served at once; one background refresh per key per isolate is
//!   started through the [`Spawn`]er (in a Worker, `ctx.wait_until`). Without a spawner the refresh
//!   runs inline, and an origin failure then serves the stale value (stale-if-error).
//! - **Miss** (absent, expired, invalidated by a tag, another schema version, corrupt): one origin call
//!   per key per isolate (concurrent lookups join it), then ONE write (`SET PX`, physical TTL = ttl +
//!   grace). A value over the size cap is returned but not written. Errors are never cached.
//! - **Redis slow or down** (past [`Policy::deadline_ms`], unreachable, 5xx) or the breaker open: the
//!   origin answers (status [`Status::Bypass`]) and nothing is written.
//!
//! # Composing with other capabilities
//!
//! [`Cache::prepare`] adds the read to a shared [`Batch`](crate::client::Batch) (a Worker sends it
//! together with a rate-limit check and a session load: one round trip); [`Pending::finish`] reads it
//! after the batch was sent, and [`Cache::resolve`] completes the lookup (the origin call and, on a miss
//! only, the second request that writes). [`Cache::get_or_fetch`] does the three with its own batch.
//! A shared batch is sent by its owner, under the client's deadline; [`Policy::deadline_ms`] bounds the
//! round trips the cache sends itself (its own read, the write, the lease). The write after a miss is
//! awaited (within that deadline) before the lookup answers, so the next lookup finds the value.
//!
//! # Reading and writing entries directly
//!
//! Next to the lookup, for values the application knows without asking an origin (a balance it has
//! just changed, a record it has just saved), each one round trip and each reading or writing the same
//! envelopes as the lookup:
//!
//! - [`Cache::get`] reads without calling an origin, and tells [`Cached::Fresh`], [`Cached::Stale`],
//!   [`Cached::Absent`] (a remembered "not found") and [`Cached::NotCached`] apart.
//! - [`Cache::set`] writes a value as if an origin had returned it (its own TTL, the key's tags), so the
//!   next lookup is a hit; [`Cache::set_not_found`] remembers "not found".
//! - [`Cache::delete`] removes an entry.
//! - [`Cache::update`] changes a cached value in place with a closure, atomically (optimistic
//!   compare-and-set; one round trip more per race lost to another isolate).
//!
//! Unlike a lookup they have no origin to fall back on: a Redis failure is an [`Error`], and they ask
//! Redis even while the breaker is open (skipping it would only turn every call into an error; the
//! caller's own failure policy decides), though their outcomes feed the breaker. They bound each round
//! trip by the policy's deadline ([`Error::Timeout`] past it), and count Redis failures in the group's
//! `cache_errors`, not as lookups.
//!
//! # Invalidation
//!
//! [`Cache::delete`] (or its alias [`Cache::invalidate`]) deletes one key; [`Cache::invalidate_tag`] increments a tag's generation, which
//! turns every entry fetched before into a miss; [`Cache::purge_prefix`] deletes every entry whose key
//! starts with a prefix with `SCAN` + `UNLINK` in batches (for administrators: it walks the keyspace).
//! The memory tier of OTHER isolates keeps a value for at most [`Policy::memory_ttl_ms`] after an
//! invalidation; the colo tier, for at most [`Policy::colo_ttl_ms`] (see [`colo`]).

mod breaker;
pub mod colo;
mod colo_io;
mod entry;
mod envelope;
mod flight;
mod gather;
pub mod generations;
// The key layout, for the npm package's option checks; not part of the API.
#[doc(hidden)]
pub mod keys;
mod lease;
mod lookup;
mod memory;
mod metrics;
mod policy;
mod refresh;
mod timer;
mod update;
mod write;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use colo::{CacheApi, ColoFuture, ColoStore, MAX_COLO_TTL_MS};
pub use entry::Cached;
pub use envelope::{CacheValue, Envelope, Kind};
pub use lookup::{Pending, Read};
pub use metrics::GroupMetrics;
pub use policy::{
    DEFAULT_DEADLINE_MS, DEFAULT_LEASE_WAIT_MS, DEFAULT_MAX_VALUE_BYTES, DEFAULT_TTL_MS,
    MAX_VALUE_BYTES_LIMIT, Policy,
};
pub use update::{MAX_UPDATE_ATTEMPTS, Updated};

use crate::client::{Client, FetchTransport, Transport, commands};
use crate::clock::{Clock, SystemClock};
use crate::{Error, Result};

/// Isolate-wide settings of a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// Prefix of every key the cache writes. Default `cache`.
    pub namespace: String,
    /// When the circuit breaker opens and for how long.
    pub breaker: BreakerConfig,
    /// Most entries in the memory tier. Default 1 000.
    pub memory_entries: usize,
    /// Most payload bytes in the memory tier. Default 8 MiB (a Worker has 128 MB).
    pub memory_bytes: usize,
    /// TTL of tag generation counters, refreshed by each invalidation. Default 30 days. It must exceed
    /// the longest physical TTL of a tagged entry: a counter that expired would restart at 0 and could
    /// make an entry written before an invalidation valid again.
    pub tag_ttl_ms: u64,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            namespace: "cache".into(),
            breaker: BreakerConfig::default(),
            memory_entries: 1_000,
            memory_bytes: 8 << 20,
            tag_ttl_ms: 30 * 24 * 3_600 * 1_000,
        }
    }
}

/// What a cache keeps per isolate: in-flight origin calls, the breaker, the memory tier, the metrics.
/// Create it once per isolate (in a `thread_local`) and hand it to each request's [`Cache`].
#[derive(Debug)]
pub struct CacheState {
    options: CacheOptions,
    clock: Rc<dyn Clock>,
    flights: Rc<flight::Flights>,
    breaker: Breaker,
    memory: memory::Memory,
    /// The changes this isolate made, which its colo reads must not miss.
    colo_fences: colo::Fences,
    metrics: metrics::Metrics,
    updates: Rc<update::Queues>,
    /// The tag generations this isolate saw last.
    known: generations::Known,
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

impl CacheState {
    /// The state with the platform clock.
    pub fn new(options: CacheOptions) -> Rc<Self> {
        Self::with_clock(options, SystemClock)
    }

    /// The state with the given clock (tests pass a [`FakeClock`](crate::clock::FakeClock)).
    pub fn with_clock(options: CacheOptions, clock: impl Clock + 'static) -> Rc<Self> {
        Rc::new(CacheState {
            breaker: Breaker::new(options.breaker),
            memory: memory::Memory::new(options.memory_entries, options.memory_bytes),
            options,
            clock: Rc::new(clock),
            flights: Rc::default(),
            colo_fences: colo::Fences::default(),
            metrics: metrics::Metrics::default(),
            updates: Rc::default(),
            known: generations::Known::default(),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    /// The current time on this state's clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state(self.now_ms())
    }

    /// Counters per key group.
    pub fn metrics(&self) -> BTreeMap<String, GroupMetrics> {
        self.metrics.snapshot()
    }

    /// Origin calls made by this isolate, over every group.
    pub fn origin_calls(&self) -> u64 {
        self.metrics.origin_calls()
    }

    /// Everything, as JSON for a metrics route.
    pub fn metrics_json(&self) -> serde_json::Value {
        serde_json::json!({
            "breaker": self.breaker_state().as_str(),
            "breaker_opened": self.breaker.times_opened(),
            "memory_entries": self.memory.len(),
            "in_flight": self.flights.in_flight(),
            "groups": self.metrics(),
        })
    }
}

/// A key and the tags it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    name: String,
    tags: Vec<String>,
}

impl Key {
    /// A key without tags.
    pub fn new(name: impl Into<String>) -> Self {
        Key {
            name: name.into(),
            tags: Vec::new(),
        }
    }

    /// Adds a tag ([`Cache::invalidate_tag`] then reaches this key).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds several tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The key.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its tags, in the order given.
    pub fn tag_list(&self) -> &[String] {
        &self.tags
    }

    fn validate(&self) -> std::result::Result<(), String> {
        keys::validate("key", &self.name)?;
        self.tags.iter().try_for_each(|t| keys::validate("tag", t))
    }
}

impl From<&str> for Key {
    fn from(name: &str) -> Self {
        Key::new(name)
    }
}

impl From<String> for Key {
    fn from(name: String) -> Self {
        Key::new(name)
    }
}

/// How a lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A fresh cached value (from Redis, the memory tier or the colo tier).
    Hit,
    /// Nothing usable was cached: the origin answered (or another lookup's origin call did).
    Miss,
    /// A value past its fresh time, inside the grace window.
    Stale,
    /// A remembered "not found".
    Negative,
    /// Redis was skipped (breaker open) or failed: the origin answered and nothing was written.
    Bypass,
}

impl Status {
    /// `hit`, `miss`, `stale`, `negative` or `bypass`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Hit => "hit",
            Status::Miss => "miss",
            Status::Stale => "stale",
            Status::Negative => "negative",
            Status::Bypass => "bypass",
        }
    }
}

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<V> {
    /// The value, or `None` when the origin said (or the cache remembers) "not found".
    pub value: Option<V>,
    /// How it was answered.
    pub status: Status,
    /// Served from this isolate's memory tier, without a round trip.
    pub from_memory: bool,
    /// Served from the location's HTTP cache (the colo tier), without a round trip.
    pub from_colo: bool,
    /// This lookup called the origin itself (not counting a background refresh).
    pub origin_called: bool,
    /// The origin failed and a stale value was served instead.
    pub origin_failed: bool,
    /// The value was not written because it is over the policy's size cap.
    pub oversize: bool,
    /// Milliseconds from the start of the lookup to its answer, on the cache's clock.
    pub took_ms: u64,
}

/// Why a lookup has no answer. Redis failures are never among them: the cache fails open to the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError<E> {
    /// The key or a tag is unusable (empty, too long); nothing was sent.
    InvalidKey(String),
    /// The origin failed and nothing stale could be served.
    Origin(E),
    /// The origin call this lookup joined (made by a concurrent lookup of the same key) failed; its
    /// message.
    Joined(String),
}

impl<E: std::fmt::Display> std::fmt::Display for LookupError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::InvalidKey(why) => write!(f, "invalid cache key: {why}"),
            LookupError::Origin(e) => write!(f, "origin failed: {e}"),
            LookupError::Joined(e) => write!(f, "origin failed: {e}"),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for LookupError<E> {}

/// A background task (a stale value's refresh).
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// Runs background tasks; in a Worker, `ctx.wait_until`, so the refresh outlives the response.
pub trait Spawn {
    /// Starts `task`.
    fn spawn(&self, task: Task);
}

impl<F: Fn(Task)> Spawn for F {
    fn spawn(&self, task: Task) {
        self(task);
    }
}

/// A cache over one client, for one request (cheap: two `Rc`s).
pub struct Cache<T: Transport = FetchTransport> {
    client: Rc<Client<T>>,
    state: Rc<CacheState>,
    spawner: Option<Rc<dyn Spawn>>,
    colo: Option<Rc<dyn ColoStore>>,
}

impl<T: Transport> std::fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.state.options.namespace)
            .finish()
    }
}

impl<T: Transport + 'static> Cache<T> {
    /// A cache sending through `client`, with isolate-wide `state`. Without a spawner, stale values are
    /// refreshed inline (see [`Cache::spawner`]).
    pub fn new(client: Rc<Client<T>>, state: Rc<CacheState>) -> Self {
        Cache {
            client,
            state,
            spawner: None,
            colo: None,
        }
    }

    /// Refreshes stale values in the background through `spawner` (in a Worker:
    /// `move |task| ctx.wait_until(task)`), so a stale value is served at once.
    pub fn spawner(mut self, spawner: impl Spawn + 'static) -> Self {
        self.spawner = Some(Rc::new(spawner));
        self
    }

    /// Keeps fresh values in `store` too (in a Worker: [`CacheApi`]), for lookups whose policy has a
    /// [`colo_ttl_ms`](Policy::colo_ttl_ms); see [`colo`]. Puts run through the [spawner](Cache::spawner),
    /// after the response: a cache without one reads the colo but never fills it.
    pub fn colo(mut self, store: impl ColoStore + 'static) -> Self {
        self.colo = Some(Rc::new(store));
        self
    }

    /// The client.
    pub fn client(&self) -> &Client<T> {
        &self.client
    }

    /// The isolate-wide state (metrics, breaker).
    pub fn state(&self) -> &Rc<CacheState> {
        &self.state
    }

    fn namespace(&self) -> &str {
        &self.state.options.namespace
    }

    /// [`Cache::delete`] under the name that pairs with [`Cache::invalidate_tag`]: the same operation.
    ///
    /// # Errors
    /// As [`Cache::delete`].
    pub async fn invalidate(&self, key: &str) -> Result<bool> {
        self.delete(key).await
    }

    /// Invalidates every entry tagged `tag`: its generation goes up (by one, or to the clock's time in
    /// ms for a counter that does not exist, see [`generations`]), so entries fetched before read as
    /// misses from now on. Returns the new generation. One round trip (two after a transport error or
    /// a 5xx); no scan.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable tag; any Redis error.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64> {
        keys::validate("tag", tag).map_err(Error::InvalidArgument)?;
        let key = keys::tag(self.namespace(), tag);
        // This isolate's memory tier cannot tell which of its entries carry the tag.
        self.state.memory.clear();
        let bumped = match self.bump_generation(&key).await {
            // Bumping twice only costs a few extra misses: one more try after a transport error or a
            // 5xx, whose request may or may not have been applied.
            Err(e) if e.is_retryable() => self.bump_generation(&key).await,
            other => other,
        };
        if let Ok(generation) = bumped {
            self.state.known.saw(&[tag.to_owned()], &[generation]);
        }
        // Nor can the colo be searched by tag: in this isolate, every colo entry confirmed until now
        // is a miss from now on (fenced after the bump, so that no read that missed it passes).
        self.state.colo_fences.every_key(self.state.now_ms());
        bumped
    }

    async fn bump_generation(&self, key: &str) -> Result<u64> {
        let args = [self.state.now_ms(), self.state.options.tag_ttl_ms.max(1)];
        self.client
            .eval::<u64, _, _>(generations::bump_script(), [key], args)
            .await
    }

    /// Deletes every entry whose key starts with `prefix` (`""`: the whole namespace), with `SCAN` and
    /// `UNLINK` one page at a time; returns how many were deleted. For administrators: it walks the
    /// keyspace, so it never runs on the lookup path.
    ///
    /// # Errors
    /// Any Redis error; the entries deleted before it stay deleted, and calling again resumes the work.
    pub async fn purge_prefix(&self, prefix: &str) -> Result<u64> {
        self.state.memory.clear();
        self.state.colo_fences.every_key(self.state.now_ms());
        let options = commands::ScanOptions {
            pattern: Some(keys::entry_pattern(self.namespace(), prefix)),
            count: Some(500),
            ..Default::default()
        };
        let mut scan = self.client.scan(options);
        let mut deleted = 0u64;
        while let Some(page) = scan.next_page().await? {
            if !page.is_empty() {
                let n: i64 = self.client.query(&commands::unlink(&page)).await?;
                deleted += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(deleted)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod entry_tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod colo_tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod cluster_tests;

//! The request plan: everything one request needs from Redis, in one round trip, each part with its own
//! wait.
//!
//! A request to an edge application typically needs three things before it can answer: its rate-limit
//! decision, the visitor's session and a cached value. Each capability can add its read to a shared
//! [`Batch`] (`prepare`), but sending that batch well takes one more decision: how long to wait. The
//! parts do not agree:
//!
//! - a rate-limit check fails open (or closed, or locally) after the limiter's
//!   [`timeout_ms`](crate::ratelimit::RateLimiter::timeout_ms): waiting longer helps nobody;
//! - a cache read goes to the origin after its policy's
//!   [`deadline_ms`](crate::cache::Policy::deadline_ms);
//! - a session load needs the answer (sessions fail closed): the client's own deadline applies.
//!
//! A [`Plan`] gathers the parts, combines their [`Wait`]s (the shortest deadline of the parts that fail
//! open, or the full answer as soon as one part needs it), sends one batch under it, and hands each part
//! its result through the `Pending` it returned. A request-level failure (Redis unreachable, the deadline
//! passed) is not an error of the plan: every part's `Pending` carries it and applies its own policy.
//!
//! ```no_run
//! # async fn handle(client: &redge::Client,
//! #     limiter: &redge::RateLimiter,
//! #     sessions: &redge::SessionStore<'_>,
//! #     cache: &redge::Cache,
//! #     ip: &str, cookie: &str) -> Result<(), redge::Error> {
//! use redge::cache::Policy;
//! use redge::client::Json;
//! use redge::Plan;
//!
//! let plan = Plan::new(client);
//! let decision = plan.limit(limiter, &[("api", ip)], 1)?;
//! let session = plan.load_session(sessions, cookie);
//! let item = plan.lookup::<Json<serde_json::Value>>(cache, "item:42", &Policy::new("items"));
//! plan.send().await; // one round trip, cut short when only fail-open parts wait
//!
//! let decision = decision.finish(); // the failure policy answered a Redis failure
//! if !decision.allowed { /* 429 */ }
//! let session = session.finish()?; // Err(e) with e.is_unavailable(): 503, keep the cookie
//! let item = item.finish(); // then cache.resolve(item, origin) once the request goes on
//! # Ok(()) }
//! ```

use std::cell::Cell;

use crate::Result;
use crate::cache::{self, Cache, CacheValue, Key};
use crate::client::{Batch, Client, Cmd, FromReply, Handle, Transport};
use crate::clock::Clock;
use crate::ratelimit::{self, RateLimiter};
use crate::session::{self, Loaded, SessionStore};

/// How long a part of a request may wait for the round trip it shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The part needs the answer (a session: fail closed); the client's own deadline applies.
    Full,
    /// The part fails open after this many milliseconds (a rate-limit check, a cache read).
    Within(u32),
}

impl Wait {
    /// The wait of two parts sent together: [`Wait::Full`] when either needs the answer, else the
    /// shorter deadline (the part that gives up first decides; the other fails open with it).
    #[must_use]
    pub fn and(self, other: Wait) -> Wait {
        match (self, other) {
            (Wait::Within(a), Wait::Within(b)) => Wait::Within(a.min(b)),
            _ => Wait::Full,
        }
    }

    /// Combines an optional wait with another: the plan's running wait after one more part.
    #[must_use]
    pub fn combine(current: Option<Wait>, next: Wait) -> Wait {
        current.map_or(next, |w| w.and(next))
    }
}

/// One request's reads, sent together; see the [module docs](self).
#[derive(Debug)]
pub struct Plan<'c, T: Transport> {
    batch: Batch<'c, T>,
    wait: Cell<Option<Wait>>,
}

impl<'c, T: Transport + 'static> Plan<'c, T> {
    /// An empty plan on `client`. Every capability added must use the same client.
    pub fn new(client: &'c Client<T>) -> Self {
        Plan {
            batch: client.batch(),
            wait: Cell::new(None),
        }
    }

    /// The batch under the plan (its length, or reads whose wait [`Plan::add`] records).
    pub fn batch(&self) -> &Batch<'c, T> {
        &self.batch
    }

    /// Adds a part of your own: runs `prepare` against the batch (any capability's `prepare_*`) and
    /// records `wait` only when it added a command, so that a part answered from memory, or refused
    /// before Redis, does not hold the round trip to its deadline.
    pub fn add<P>(&self, wait: Wait, prepare: impl FnOnce(&Batch<'c, T>) -> P) -> P {
        let before = self.batch.len();
        let part = prepare(&self.batch);
        self.waits_if_added(before, wait);
        part
    }

    fn waits_if_added(&self, before: usize, wait: Wait) {
        if self.batch.len() > before {
            self.wait.set(Some(Wait::combine(self.wait.get(), wait)));
        }
    }

    /// Adds a command of your own, read as `R`, that may wait `wait`.
    pub fn read<R: FromReply + 'static>(&self, command: Cmd, wait: Wait) -> Handle<R> {
        self.add(wait, |batch| batch.add(command))
    }

    /// Adds a rate-limit check of `subjects` (policy name, identifier) for `cost`; it waits the limiter's
    /// [`timeout_ms`](RateLimiter::timeout_ms). A check the limiter's block cache already decided adds
    /// nothing.
    ///
    /// # Errors
    /// As [`RateLimiter::prepare`]: an unknown policy, no subjects, a cost over a policy's capacity
    /// (nothing is added).
    pub fn limit<'l, C: Clock>(
        &self,
        limiter: &'l RateLimiter<C>,
        subjects: &[(&str, &str)],
        cost: u32,
    ) -> Result<ratelimit::Pending<'l, C>> {
        let wait = Wait::Within(limiter.timeout_ms());
        self.add(wait, |batch| limiter.prepare(batch, subjects, cost))
    }

    /// Adds the load of the session of `token` (a cookie's value); it needs the answer. A malformed
    /// token adds nothing and finishes as `Ok(None)`.
    pub fn load_session(
        &self,
        store: &SessionStore<'_, T>,
        token: &str,
    ) -> session::Pending<Option<Loaded>> {
        self.add(Wait::Full, |batch| store.prepare_load(batch, token))
    }

    /// Adds the read of a cached lookup; it waits the policy's
    /// [`deadline_ms`](cache::Policy::deadline_ms). A value fresh in the isolate's memory, or a breaker
    /// that is open, adds nothing. Finish it, then [`Cache::resolve`] once the request goes on.
    pub fn lookup<V: CacheValue>(
        &self,
        cache: &Cache<T>,
        key: impl Into<Key>,
        policy: &cache::Policy,
    ) -> cache::Pending<V> {
        let wait = Wait::Within(policy.deadline_ms);
        self.add(wait, |batch| cache.prepare(batch, key, policy))
    }

    /// [`Plan::lookup`], after asking the cache's colo tier (an asynchronous, local read; see
    /// [`Cache::prepare_colo`]): a fresh colo entry adds nothing, so a request whose other parts add
    /// nothing either costs no round trip. Await it before [`Plan::send`].
    pub async fn lookup_colo<V: CacheValue>(
        &self,
        cache: &Cache<T>,
        key: impl Into<Key>,
        policy: &cache::Policy,
    ) -> cache::Pending<V> {
        let before = self.batch.len();
        let pending = cache.prepare_colo(&self.batch, key, policy).await;
        self.waits_if_added(before, Wait::Within(policy.deadline_ms));
        pending
    }

    /// How long the round trip will wait: `None` when nothing was added.
    pub fn wait(&self) -> Option<Wait> {
        self.wait.get()
    }

    /// Whether nothing was added (then [`Plan::send`] sends nothing).
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Sends the plan: one round trip, none when empty, cut short at the combined deadline when every
    /// part fails open. Returns the request-level failure, if any, for logging; every part's `Pending`
    /// carries it too and applies its own policy.
    pub async fn send(self) -> Option<crate::Error> {
        let outcome = match self.wait.get() {
            Some(Wait::Within(ms)) => self.batch.send_within(ms).await,
            _ => self.batch.send().await,
        };
        outcome.err()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

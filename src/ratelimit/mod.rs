//! Rate limiting over HTTP Redis: exact, one round trip per request whatever the number of policies,
//! and failing the way the operator chose.
//!
//! # Which algorithm
//!
//! | [`Algorithm`] | Promise | State per key |
//! |---|---|---|
//! | GCRA (default) | requests spaced `period / limit` apart, `burst` may come at once; smooth | one time |
//! | token bucket | `burst` tokens refilled continuously at `limit` per period (same decisions as GCRA) | tokens |
//! | fixed window | at most `limit` per epoch-aligned window; up to `2 * limit` around a boundary | window, count |
//! | sliding window | weighted two-bucket window; it may admit slightly more or less than the exact window, because it assumes the previous window's requests were spread evenly | window, 2 counts |
//! | sliding log | the exact sliding window: at most `limit` in any `period` ms; the exact model | one entry per request in the window (limit at most 10 000) |
//!
//! Every algorithm has a pure Rust reference (`decide` in its module, tested natively) and a Lua
//! function in `scripts/`; the functions are joined into ONE script, so a request checked against several
//! policies is one `EVALSHA` with one key per policy, in one round trip. (One script with several keys
//! rather than one script per policy in a pipeline: only the former can refuse for all policies
//! atomically.)
//!
//! # Keys and Redis Cluster
//!
//! A key is `<prefix>:<policy>:{<escaped identifier>}` ([`key`]): the identifier is the hash tag, so the
//! policies of one identifier share a slot and their check is one atomic script on a cluster too, while
//! identifiers spread over the cluster's nodes. A check that names several identifiers (per IP and per
//! user) sends one script per slot in the same batch, still one round trip; the request passes only
//! when every slot's script admits it (the guarantees below say what a refusal in one slot costs the
//! others). The prefix needs no hash tag (braces in it are encoded).
//!
//! # Guarantees (all algorithms)
//!
//! - Weighted cost (`cost = n`); cost 0 peeks without writing; [`RateLimiter::refund`] gives budget back.
//! - A rejected request is never charged by the policies of its identifier: a script decides every
//!   policy of its slot first and writes only when all allow. Across identifiers in different slots,
//!   a refusal in one slot leaves the admitting slots charged until a background refund gives it back:
//!   until then each admitting policy is short by at most the request's cost, and a refund that is
//!   dropped or fails leaves that charge in place until the key's state expires (one period at most).
//!   The queue of refunds holds at most as many as the block cache holds entries
//!   ([`RateLimiter::memory`]); [`RateLimiter::spawn_lease_renewals`] sends them.
//! - A cost above what a policy allows at once is [`Error::InsufficientCapacity`], before any Redis call.
//! - [`Decision::retry_after_ms`] is the exact millisecond at which the same request passes (tests check
//!   it one millisecond early and on time). `reset_ms` is when the budget is full again.
//! - Every key has a TTL: exactly as long as its state can still change a decision.
//! - Time comes from the caller's [`Clock`] and each key keeps `max(now, stored time)`, so a clock that is
//!   behind (another isolate, or the same one going backwards) never recovers budget. In a Worker,
//!   `Date.now()` only advances when the Worker does I/O; within one request it is constant, which is
//!   what a decision needs.
//! - Identifiers are escaped or hashed into keys ([`key`]) under a configurable prefix.
//!
//! # Block cache and failures
//!
//! After Redis refuses an identifier, this isolate refuses it again without a Redis call until the exact
//! retry time ([`BlockCache`], bounded in entries and bytes). When Redis fails or does not answer within
//! [`RateLimiter::timeout_ms`] (default [`DEFAULT_TIMEOUT_MS`] = 200 ms: a rate limit that makes a
//! request wait longer than that costs more than it protects), the [`FailurePolicy`] decides: let the
//! request through, refuse it, or let this isolate's own limiter decide. The decision's [`Reason`] says
//! which happened.
//!
//! # Leased quota
//!
//! With [`RateLimiter::leases`] (off by default), an isolate that sees a fixed-window key often takes a
//! lease of units counted in Redis up front and decides that key's requests itself, renewing in the
//! background: a hot key costs no round trip on the request's path and the limit still holds exactly.
//! [`lease`] says why only the fixed window is leased and bounds what leases leave unused.
//!
//! # Composition
//!
//! [`RateLimiter::prepare`] adds the check to a batch other components share; [`Pending::finish`]
//! reads it after `batch.send()` and applies the failure policy. [`RateLimiter::check`] does both.
//! With other parts of a request, add the check to a [`Plan`](crate::Plan): it waits no longer than
//! [`RateLimiter::timeout_ms`] unless another part needs the full answer.
//!
//! ```no_run
//! # async fn route(client: &redge::Client, ip: &str, user: &str) -> redge::Result<()> {
//! use redge::ratelimit::{Algorithm, Policy, Quota, RateLimiter, headers};
//!
//! // Once per isolate (the block cache and the local fallback live in the limiter):
//! let limiter = RateLimiter::new(vec![
//!     Policy::new("per-ip", Algorithm::Gcra, Quota::per_minute(60).burst(10)),
//!     Policy::new("per-user", Algorithm::SlidingWindow, Quota::per_hour(1_000)),
//! ])?;
//! // Per request: both policies in one script call, one round trip.
//! let decision = limiter.check(client, &[("per-ip", ip), ("per-user", user)], 1).await?;
//! if !decision.allowed {
//!     let _retry_after = headers::headers(&decision, false); // 429 with these headers
//! }
//! # Ok(()) }
//! ```

pub mod config;
mod decision;
mod duration;
mod fixed_window;
mod gcra;
pub mod headers;
mod key;
pub mod lease;
mod local;
// The reference models and the state the script stores, for the property tests against real Redis;
// not part of the API.
#[doc(hidden)]
pub mod model;
mod quota;
mod sliding_log;
mod sliding_window;
mod slots;
mod token_bucket;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub use decision::{Decision, PolicyStatus, Reason};
pub use key::{MAX_ESCAPED_LEN, escape, is_policy_name, key};
pub use lease::LeaseConfig;
pub use local::{BlockCache, LocalLimiter};
pub use quota::{Algorithm, MAX_PRODUCT, Quota};

use crate::cache::{Spawn, Task};
use crate::client::{Batch, Client, Handle, Script, Transport, within};
use crate::clock::{Clock, SystemClock};
use crate::{Error, Result};
use lease::Leases;
use model::Verdict;
use slots::{Group, Refund, Refunds};

/// The Lua source: the shared helpers, the four algorithms, and the driver that checks every key.
pub const SCRIPT_SOURCE: &str = concat!(
    include_str!("scripts/common.lua"),
    include_str!("scripts/gcra.lua"),
    include_str!("scripts/sliding_window.lua"),
    include_str!("scripts/fixed_window.lua"),
    include_str!("scripts/token_bucket.lua"),
    include_str!("scripts/sliding_log.lua"),
    include_str!("scripts/check.lua"),
);

/// How long a check may wait for Redis before the failure policy decides.
pub const DEFAULT_TIMEOUT_MS: u32 = 200;
/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "redge:rl";

/// A named quota enforced by an algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The name: 1 to 64 of `a-z 0-9 _ -`; it appears in keys and headers.
    pub name: String,
    /// How it is enforced.
    pub algorithm: Algorithm,
    /// What it allows.
    pub quota: Quota,
}

impl Policy {
    /// A policy.
    pub fn new(name: impl Into<String>, algorithm: Algorithm, quota: Quota) -> Self {
        Policy {
            name: name.into(),
            algorithm,
            quota,
        }
    }
}

/// What a check answers when Redis fails or does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Let the request through ([`Reason::FailOpen`]): availability over protection.
    Open,
    /// Refuse it, asking the client to come back after this many ms ([`Reason::FailClosed`]).
    Closed {
        /// The `retry_after_ms` of the refusal.
        retry_after_ms: u64,
    },
    /// Let this isolate's own limiter decide, with the same quotas ([`Reason::LocalFallback`]). The
    /// default: it keeps serving and still stops a flood from one client.
    #[default]
    Local,
}

impl FailurePolicy {
    /// Parses `open`, `closed` or `local` (`closed` waits 1 s).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "open" => Some(FailurePolicy::Open),
            "closed" => Some(FailurePolicy::Closed {
                retry_after_ms: 1_000,
            }),
            "local" => Some(FailurePolicy::Local),
            _ => None,
        }
    }
}

/// Checks requests against named policies; see the [module docs](self).
#[derive(Debug)]
pub struct RateLimiter<C: Clock = SystemClock> {
    prefix: String,
    policies: Vec<Policy>,
    overrides: HashMap<(String, String), Quota>,
    failure: FailurePolicy,
    timeout_ms: u32,
    script: Script,
    blocks: RefCell<BlockCache>,
    local: RefCell<LocalLimiter>,
    max_entries: usize,
    leases: Option<Rc<Leases>>,
    refunds: Rc<RefCell<Refunds>>,
    clock: C,
}

impl RateLimiter<SystemClock> {
    /// A limiter with the platform clock.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad or duplicate policy name, or a quota too large to compute exactly.
    pub fn new(policies: Vec<Policy>) -> Result<Self> {
        Self::with_clock(policies, SystemClock)
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter reading time from `clock`.
    ///
    /// # Errors
    /// As [`RateLimiter::new`].
    pub fn with_clock(policies: Vec<Policy>, clock: C) -> Result<Self> {
        for (i, policy) in policies.iter().enumerate() {
            if !is_policy_name(&policy.name) {
                return Err(Error::Config(format!(
                    "rate-limit policy name {:?} must be 1 to 64 of a-z, 0-9, _ and -",
                    policy.name
                )));
            }
            if policies[..i].iter().any(|p| p.name == policy.name) {
                return Err(Error::Config(format!(
                    "rate-limit policy {:?} is defined twice",
                    policy.name
                )));
            }
            policy
                .algorithm
                .validate(&policy.quota)
                .map_err(Error::Config)?;
        }
        Ok(RateLimiter {
            prefix: DEFAULT_PREFIX.to_owned(),
            policies,
            overrides: HashMap::new(),
            failure: FailurePolicy::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            script: Script::new(SCRIPT_SOURCE),
            blocks: RefCell::new(BlockCache::new(10_000, 1 << 20)),
            local: RefCell::new(LocalLimiter::new(10_000, 1 << 20)),
            max_entries: 10_000,
            leases: None,
            refunds: Rc::new(RefCell::new(Refunds::new(10_000))),
            clock,
        })
    }

    /// Sets the key prefix (default [`DEFAULT_PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the failure policy (default [`FailurePolicy::Local`]).
    pub fn failure_policy(mut self, failure: FailurePolicy) -> Self {
        self.failure = failure;
        self
    }

    /// Sets how long [`RateLimiter::check`] waits for Redis (at least 1 ms).
    pub fn with_timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = timeout_ms.max(1);
        self
    }

    /// Bounds the block cache (0 entries turns it off) and the fallback limiter's memory.
    pub fn memory(mut self, max_entries: usize, max_bytes: usize) -> Self {
        self.blocks = RefCell::new(BlockCache::new(max_entries, max_bytes));
        self.local = RefCell::new(LocalLimiter::new(max_entries, max_bytes));
        self.max_entries = max_entries;
        self.refunds = Rc::new(RefCell::new(Refunds::new(max_entries)));
        if let Some(leases) = &self.leases {
            self.leases = Some(Rc::new(Leases::new(leases.config, max_entries)));
        }
        self
    }

    /// Decides hot keys of fixed-window policies from leased quota, with no round trip on the request's
    /// path (see [leasing](lease)); renewals run through [`RateLimiter::spawn_lease_renewals`]. Off by
    /// default.
    ///
    /// # Errors
    /// [`Error::Config`] for a value out of range ([`LeaseConfig::validate`]).
    pub fn leases(mut self, config: LeaseConfig) -> Result<Self> {
        config.validate().map_err(Error::Config)?;
        self.leases = Some(Rc::new(Leases::new(config, self.max_entries)));
        Ok(self)
    }

    /// The lease configuration, when leasing is on.
    pub fn lease_config(&self) -> Option<LeaseConfig> {
        self.leases.as_ref().map(|l| l.config)
    }

    /// Units this isolate holds of `identifier` under `policy` (0 without a live lease).
    pub fn leased_units(&self, policy: &str, identifier: &str) -> u64 {
        let now = self.clock.now_ms();
        self.leases
            .as_ref()
            .map_or(0, |l| l.units(&self.key(policy, identifier), now))
    }

    /// Gives `identifier` its own quota under `policy` (a partner with a higher limit, a tenant's plan).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown policy or a quota too large to compute exactly.
    pub fn with_override(mut self, policy: &str, identifier: &str, quota: Quota) -> Result<Self> {
        let algorithm = self
            .find(policy)
            .map_err(|e| Error::Config(e.to_string()))?
            .algorithm;
        algorithm.validate(&quota).map_err(Error::Config)?;
        self.overrides
            .insert((policy.to_owned(), identifier.to_owned()), quota);
        Ok(self)
    }

    /// The failure policy in force.
    pub fn failure(&self) -> FailurePolicy {
        self.failure
    }

    /// How long a check waits for Redis, in ms.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// The policies, in the order given.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policy called `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The quota that applies to `identifier` under `policy` (its override, or the policy's).
    pub fn quota_for(&self, policy: &Policy, identifier: &str) -> Quota {
        self.overrides
            .get(&(policy.name.clone(), identifier.to_owned()))
            .copied()
            .unwrap_or(policy.quota)
    }

    /// The Redis key of `identifier` under `policy`.
    pub fn key(&self, policy: &str, identifier: &str) -> String {
        key(&self.prefix, policy, identifier)
    }

    /// Refunds queued for the next background task, and refunds dropped so far because the queue was
    /// full (see the guarantees in the [module docs](self)).
    pub fn refunds_owed(&self) -> (usize, u64) {
        let refunds = self.refunds.borrow();
        (refunds.len(), refunds.dropped())
    }

    /// The block cache (to inspect it in tests and metrics).
    pub fn block_cache(&self) -> std::cell::Ref<'_, BlockCache> {
        self.blocks.borrow()
    }

    fn find(&self, name: &str) -> Result<&Policy> {
        self.policy(name).ok_or_else(|| {
            Error::InvalidArgument(format!("unknown rate-limit policy {:?}", truncate(name)))
        })
    }

    /// Adds a check of `subjects` (pairs of policy name and identifier) for `cost` to `batch`: one
    /// script call per Redis Cluster slot, so one for any number of policies on one identifier. A cost
    /// of 0 peeks. When an identifier is blocked in
    /// the local cache, nothing is added and the decision is already known.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no subjects or an unknown policy; [`Error::InsufficientCapacity`]
    /// when `cost` is more than a policy allows at once.
    pub fn prepare<T: Transport>(
        &self,
        batch: &Batch<'_, T>,
        subjects: &[(&str, &str)],
        cost: u32,
    ) -> Result<Pending<'_, C>> {
        self.prepare_signed(batch, subjects, i64::from(cost))
    }

    fn prepare_signed<T: Transport>(
        &self,
        batch: &Batch<'_, T>,
        subjects: &[(&str, &str)],
        cost: i64,
    ) -> Result<Pending<'_, C>> {
        let mut pending = self.plan(subjects, cost)?;
        pending.handles = pending
            .groups
            .iter()
            .map(|g| batch.add_script::<Vec<i64>, _, _>(&self.script, &g.keys, &g.args))
            .collect();
        Ok(pending)
    }

    /// Validates a check and decides what it needs: nothing more (blocked locally or leased), or one
    /// script call per slot.
    fn plan(&self, subjects: &[(&str, &str)], cost: i64) -> Result<Pending<'_, C>> {
        if subjects.is_empty() {
            return Err(Error::InvalidArgument(
                "a rate-limit check needs at least one policy".into(),
            ));
        }
        let mut checks = Vec::with_capacity(subjects.len());
        for (name, identifier) in subjects {
            let policy = self.find(name)?;
            let quota = self.quota_for(policy, identifier);
            let capacity = policy.algorithm.capacity(&quota);
            if cost > 0 && cost.unsigned_abs() > capacity {
                return Err(Error::InsufficientCapacity {
                    policy: policy.name.clone(),
                    cost: cost.unsigned_abs(),
                    capacity,
                });
            }
            checks.push(Check {
                key: self.key(&policy.name, identifier),
                name: policy.name.clone(),
                algorithm: policy.algorithm,
                quota,
            });
        }
        let now = self.clock.now_ms();
        let mut pending = Pending {
            limiter: self,
            checks,
            cost,
            now,
            groups: Vec::new(),
            handles: Vec::new(),
            known: None,
        };
        if cost > 0 {
            pending.known = self.blocked(&pending.checks, now, cost.unsigned_abs());
        }
        if cost < 0 {
            let mut blocks = self.blocks.borrow_mut();
            pending.checks.iter().for_each(|c| blocks.forget(&c.key));
        }
        if cost > 0 && pending.known.is_none() {
            pending.known = self.leased(&pending.checks, now, cost.unsigned_abs());
        }
        if pending.known.is_none() {
            pending.groups = slots::groups(&pending.checks, now, cost);
        }
        Ok(pending)
    }

    /// A decision from leases when every subject holds enough units; in any case, counts the demand of
    /// the leaseable subjects, so that hot ones are due a lease. (A subject blocked locally never gets
    /// here: it has nothing left to lease.)
    fn leased(&self, checks: &[Check], now: u64, cost: u64) -> Option<Decision> {
        let leases = self.leases.as_ref()?;
        let leaseable = checks.iter().all(|c| lease::leaseable(c.algorithm));
        let keys: Vec<&str> = checks.iter().map(|c| c.key.as_str()).collect();
        let spent = if leaseable {
            leases.spend(&keys, now, cost)
        } else {
            None
        };
        for c in checks.iter().filter(|c| lease::leaseable(c.algorithm)) {
            leases.observe(&c.key, c.quota, now, cost);
        }
        let statuses = checks
            .iter()
            .zip(spent?)
            .map(|(c, s)| {
                c.status(Verdict {
                    allowed: true,
                    remaining: s.remaining,
                    reset_ms: s.reset_ms,
                    retry_after_ms: 0,
                })
            })
            .collect();
        Some(Decision::from_statuses(statuses, Reason::Leased))
    }

    /// A refusal from the block cache when any subject is blocked there for this cost.
    fn blocked(&self, checks: &[Check], now: u64, cost: u64) -> Option<Decision> {
        let mut blocks = self.blocks.borrow_mut();
        let statuses: Vec<PolicyStatus> = checks
            .iter()
            .filter_map(|c| {
                let until = blocks.blocked_until(&c.key, now, cost)?;
                let wait = until - now;
                Some(c.status(Verdict {
                    allowed: false,
                    remaining: 0,
                    reset_ms: wait,
                    retry_after_ms: wait,
                }))
            })
            .collect();
        (!statuses.is_empty()).then(|| Decision::from_statuses(statuses, Reason::BlockedLocally))
    }

    /// Checks `subjects` for `cost` in one round trip (none when the block cache already knows), within
    /// [`RateLimiter::timeout_ms`]; Redis errors and timeouts go to the failure policy.
    ///
    /// # Errors
    /// As [`RateLimiter::prepare`]; never a Redis error.
    pub async fn check<T: Transport>(
        &self,
        client: &Client<T>,
        subjects: &[(&str, &str)],
        cost: u32,
    ) -> Result<Decision> {
        let pending = self.plan(subjects, i64::from(cost))?;
        Ok(self.send(client, pending).await.0)
    }

    /// One request of cost 1 for `identifier` under `policy`.
    ///
    /// # Errors
    /// As [`RateLimiter::prepare`].
    pub async fn limit<T: Transport>(
        &self,
        client: &Client<T>,
        policy: &str,
        identifier: &str,
    ) -> Result<Decision> {
        self.check(client, &[(policy, identifier)], 1).await
    }

    /// The budget of `subjects` without charging: `allowed` says whether a request of cost 1 would pass.
    ///
    /// # Errors
    /// As [`RateLimiter::prepare`].
    pub async fn peek<T: Transport>(
        &self,
        client: &Client<T>,
        subjects: &[(&str, &str)],
    ) -> Result<Decision> {
        self.check(client, subjects, 0).await
    }

    /// Gives `amount` back to `identifier` under `policy` (a request that turned out not to count),
    /// and forgets any local block.
    ///
    /// # Errors
    /// As [`RateLimiter::prepare`], and the Redis error if the refund could not be applied: a refund is
    /// not a decision, so the failure policy does not apply.
    pub async fn refund<T: Transport>(
        &self,
        client: &Client<T>,
        policy: &str,
        identifier: &str,
        amount: u32,
    ) -> Result<Decision> {
        let pending = self.plan(&[(policy, identifier)], -i64::from(amount))?;
        match self.send(client, pending).await {
            (_, Some(e)) => Err(e),
            (decision, None) => Ok(decision),
        }
    }

    /// Forgets everything `identifier` used under `policy`, in Redis and in this isolate.
    ///
    /// # Errors
    /// As [`RateLimiter::prepare`] and any Redis error.
    pub async fn reset<T: Transport>(
        &self,
        client: &Client<T>,
        policy: &str,
        identifier: &str,
    ) -> Result<()> {
        let key = self.key(&self.find(policy)?.name, identifier);
        self.blocks.borrow_mut().forget(&key);
        self.local.borrow_mut().forget(&key);
        if let Some(leases) = &self.leases {
            leases.forget(&key);
        }
        let _: i64 = client.query(&crate::client::commands::del([&key])).await?;
        Ok(())
    }

    /// Runs a planned check on its own: one `EVALSHA` sent as a single command (no pipeline framing),
    /// or a batch of one per slot, raced against [`RateLimiter::timeout_ms`] only when the client's own
    /// deadline is longer (the client's deadline aborts the request; the race merely stops waiting for
    /// it).
    async fn send<T: Transport>(
        &self,
        client: &Client<T>,
        mut pending: Pending<'_, C>,
    ) -> (Decision, Option<Error>) {
        let own_deadline = client.current_options().timeout_ms <= self.timeout_ms;
        match pending.groups.len() {
            0 => pending.finish_detailed(),
            1 => {
                let group = &pending.groups[0];
                let call = client.eval::<Vec<i64>, _, _>(&self.script, &group.keys, &group.args);
                let reply = if own_deadline {
                    Some(call.await)
                } else {
                    within(self.timeout_ms, call).await
                };
                match reply {
                    Some(reply) => pending.finish_with(vec![reply]),
                    None => pending.fail(Error::Timeout(self.timeout_ms), &[]),
                }
            }
            _ => {
                let batch = client.batch();
                pending.handles = pending
                    .groups
                    .iter()
                    .map(|g| batch.add_script::<Vec<i64>, _, _>(&self.script, &g.keys, &g.args))
                    .collect();
                // A failed send reaches every handle, and so the failure policy.
                let _ = if own_deadline {
                    batch.send().await
                } else {
                    batch.send_within(self.timeout_ms).await
                };
                pending.finish_detailed()
            }
        }
    }
}

impl<C: Clock> RateLimiter<C> {
    /// The refunds owed by checks refused in one slot and charged in another, as one background task:
    /// one round trip for all of them, waiting at most [`RateLimiter::timeout_ms`]. `None` when none is
    /// owed. A refund that fails is not retried (see the guarantees in the [module docs](self)).
    pub fn refund_task<T: Transport + 'static>(&self, client: Rc<Client<T>>) -> Option<Task> {
        let due = self.refunds.borrow_mut().take();
        if due.is_empty() {
            return None;
        }
        let script = self.script.clone();
        let timeout_ms = self.timeout_ms;
        Some(Box::pin(async move {
            let batch = client.batch();
            for refund in &due {
                let _ = batch.add_script::<Vec<i64>, _, _>(&script, &refund.keys, &refund.args);
            }
            let _ = batch.send_within(timeout_ms).await;
        }))
    }
}

impl<C: Clock + Clone + 'static> RateLimiter<C> {
    /// The lease renewals due, as one background task: one round trip for all of them (one script call
    /// per key), waiting at most [`LeaseConfig::timeout_ms`]. `None` when leasing is off or nothing is
    /// due. A Worker hands it to `ctx.wait_until` ([`RateLimiter::spawn_lease_renewals`]); tests await
    /// it.
    pub fn lease_renewal<T: Transport + 'static>(&self, client: Rc<Client<T>>) -> Option<Task> {
        let leases = Rc::clone(self.leases.as_ref()?);
        let sent = self.clock.now_ms();
        let due = leases.take_due(sent);
        if due.is_empty() {
            return None;
        }
        let clock = self.clock.clone();
        Some(Box::pin(async move {
            let batch = client.batch();
            let handles: Vec<Handle<Vec<i64>>> = due
                .iter()
                .map(|d| {
                    let args = [sent, d.quota.limit(), d.quota.period_ms(), d.want];
                    batch.add_script(
                        &leases.script,
                        [d.key.as_str()],
                        args.map(|a| a.to_string()),
                    )
                })
                .collect();
            // A failed send reaches every handle: each renewal then counts as failed.
            let _ = batch.send_within(leases.config.timeout_ms).await;
            let now = clock.now_ms();
            for (d, handle) in due.iter().zip(handles) {
                let grant = handle
                    .take()
                    .ok()
                    .and_then(|values| lease::Grant::from_reply(&values));
                leases.apply(d, sent, now, grant);
            }
        }))
    }

    /// Starts the background work due through `spawner` (in a Worker: `move |task|
    /// ctx.wait_until(task)`), so it runs after the response: the lease renewals
    /// ([`RateLimiter::lease_renewal`]) and the refunds owed by checks split across slots
    /// ([`RateLimiter::refund_task`]). Call it once per request, after the checks; it does nothing when
    /// nothing is due.
    pub fn spawn_lease_renewals<T: Transport + 'static>(
        &self,
        client: Rc<Client<T>>,
        spawner: &dyn Spawn,
    ) {
        if let Some(task) = self.refund_task(Rc::clone(&client)) {
            spawner.spawn(task);
        }
        if let Some(task) = self.lease_renewal(client) {
            spawner.spawn(task);
        }
    }
}

/// One policy of a pending check.
#[derive(Debug)]
struct Check {
    key: String,
    name: String,
    algorithm: Algorithm,
    quota: Quota,
}

impl Check {
    fn status(&self, v: Verdict) -> PolicyStatus {
        PolicyStatus {
            policy: self.name.clone(),
            limit: self.quota.limit(),
            period_ms: self.quota.period_ms(),
            allowed: v.allowed,
            remaining: v.remaining,
            reset_ms: v.reset_ms,
            retry_after_ms: v.retry_after_ms,
        }
    }
}

/// A check added to a batch; [`Pending::finish`] turns it into a [`Decision`] after the batch was sent.
#[derive(Debug)]
pub struct Pending<'l, C: Clock> {
    limiter: &'l RateLimiter<C>,
    checks: Vec<Check>,
    cost: i64,
    now: u64,
    groups: Vec<Group>,
    handles: Vec<Handle<Vec<i64>>>,
    known: Option<Decision>,
}

impl<C: Clock> Pending<'_, C> {
    /// Whether this check added a script call to the batch (false when the block cache or a lease
    /// decided).
    pub fn needs_round_trip(&self) -> bool {
        !self.groups.is_empty()
    }

    /// The decision; Redis errors and timeouts are answered by the failure policy.
    pub fn finish(self) -> Decision {
        self.finish_detailed().0
    }

    /// The decision, and the Redis error the failure policy answered, if any (to log it).
    pub fn finish_detailed(mut self) -> (Decision, Option<Error>) {
        if let Some(decision) = self.known.take() {
            return (decision, None);
        }
        let mut replies: Vec<Result<Vec<i64>>> = std::mem::take(&mut self.handles)
            .into_iter()
            .map(Handle::take)
            .collect();
        replies.resize_with(self.groups.len(), || Err(Error::NotSent));
        self.finish_with(replies)
    }

    /// The decision from each group's reply: the verdicts in the checks' order, or the failure
    /// policy's decision when any group failed.
    fn finish_with(self, replies: Vec<Result<Vec<i64>>>) -> (Decision, Option<Error>) {
        let mut verdicts: Vec<Option<Verdict>> = self.checks.iter().map(|_| None).collect();
        let mut charged = Vec::new();
        let mut error = None;
        for (group, reply) in self.groups.iter().zip(replies) {
            match reply.and_then(|values| self.verdicts(group, &values)) {
                Ok(group_verdicts) => {
                    if self.cost > 0 && group_verdicts.iter().all(|v| v.allowed) {
                        charged.push(group);
                    }
                    for (i, v) in group.members.iter().zip(group_verdicts) {
                        verdicts[*i] = Some(v);
                    }
                }
                Err(e) => error = error.or(Some(e)),
            }
        }
        let verdicts: Option<Vec<Verdict>> = verdicts.into_iter().collect();
        match (error, verdicts) {
            (None, Some(verdicts)) => {
                let decision = self.decided(verdicts);
                if !decision.allowed {
                    self.owe(&charged);
                }
                (decision, None)
            }
            (error, _) => self.fail(error.unwrap_or(Error::NotSent), &charged),
        }
    }

    /// Queues the refund of what `charged` groups took for a request that did not pass.
    fn owe(&self, charged: &[&Group]) {
        let mut refunds = self.limiter.refunds.borrow_mut();
        for group in charged {
            refunds.push(Refund::of(group, self.cost));
        }
    }

    fn verdicts(&self, group: &Group, values: &[i64]) -> Result<Vec<Verdict>> {
        if values.len() != 4 * group.members.len() || values.iter().any(|v| *v < 0) {
            return Err(Error::Protocol(format!(
                "the rate-limit script answered {values:?} for {} policies",
                group.members.len()
            )));
        }
        Ok(values
            .chunks_exact(4)
            .map(|v| Verdict {
                allowed: v[0] == 1,
                remaining: v[1].unsigned_abs(),
                reset_ms: v[2].unsigned_abs(),
                retry_after_ms: v[3].unsigned_abs(),
            })
            .collect())
    }

    fn decided(&self, verdicts: Vec<Verdict>) -> Decision {
        let allowed = verdicts.iter().all(|v| v.allowed);
        if self.cost > 0 && !allowed {
            let mut blocks = self.limiter.blocks.borrow_mut();
            for (check, v) in self.checks.iter().zip(&verdicts) {
                if !v.allowed {
                    let until = self.now + v.retry_after_ms;
                    blocks.block(&check.key, until, self.cost.unsigned_abs(), self.now);
                }
            }
        }
        let reason = if allowed {
            Reason::WithinLimit
        } else {
            Reason::LimitExceeded
        };
        self.decision(verdicts, reason)
    }

    fn decision(&self, verdicts: Vec<Verdict>, reason: Reason) -> Decision {
        let statuses = self
            .checks
            .iter()
            .zip(verdicts)
            .map(|(c, v)| c.status(v))
            .collect();
        Decision::from_statuses(statuses, reason)
    }

    /// The failure policy's decision after `error`; when it refuses, what `charged` groups took (slots
    /// that answered while another failed) is owed back.
    fn fail(&self, error: Error, charged: &[&Group]) -> (Decision, Option<Error>) {
        let (verdicts, reason) = match self.limiter.failure {
            FailurePolicy::Open => {
                let open = |c: &Check| Verdict {
                    allowed: true,
                    remaining: c.quota.limit(),
                    reset_ms: 0,
                    retry_after_ms: 0,
                };
                (self.checks.iter().map(open).collect(), Reason::FailOpen)
            }
            FailurePolicy::Closed { retry_after_ms } => {
                let closed = |_: &Check| Verdict {
                    allowed: false,
                    remaining: 0,
                    reset_ms: retry_after_ms,
                    retry_after_ms,
                };
                (self.checks.iter().map(closed).collect(), Reason::FailClosed)
            }
            FailurePolicy::Local => {
                let keys: Vec<String> = self.checks.iter().map(|c| c.key.clone()).collect();
                let policies: Vec<(Algorithm, Quota)> =
                    self.checks.iter().map(|c| (c.algorithm, c.quota)).collect();
                let verdicts = self
                    .limiter
                    .local
                    .borrow_mut()
                    .decide(&keys, &policies, self.now, self.cost);
                (verdicts, Reason::LocalFallback)
            }
        };
        let decision = self.decision(verdicts, reason);
        if !decision.allowed {
            self.owe(charged);
        }
        (decision, Some(error))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

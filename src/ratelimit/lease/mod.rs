//! Leased quota: a hot (policy, identifier) is decided in the isolate, with no Redis round trip on the
//! request's path, and never more requests admitted than the exact model allows.
//!
//! # How
//!
//! The isolate counts what it sees of every key (an estimate of the units spent over the last period).
//! Once a key is hot (at least [`LeaseConfig::hot_after`] units per period), the isolate takes a
//! **lease**: `scripts/lease.lua` counts `k` units in the key's window at once, atomically, and answers
//! how many it granted (what the window has left, at most `k`). The isolate then admits the key's
//! requests from those units without asking Redis ([`Reason::Leased`](super::Reason::Leased)), and
//! before they run out (at half the lease: the low-water mark) asks for more in the background,
//! through the caller's spawner ([`RateLimiter::spawn_lease_renewals`](super::RateLimiter::spawn_lease_renewals);
//! in a Worker, `ctx.wait_until`). A cold key takes no lease and gets the one-round-trip check.
//!
//! The lease size follows the observed rate: `k` = the units expected during
//! [`LeaseConfig::renew_every_ms`] (and no more than the window has time left for), at least 1 and at
//! most [`LeaseConfig::max_percent`] of the limit. A renewal asks for at most the maximum minus what
//! is left, so an isolate never holds more than one maximum lease of a key.
//!
//! # Where leasing is sound
//!
//! - **Fixed window: leases.** A lease is `INCRBY k` within the current window, and its units are spent
//!   only until that window ends (they expire with it). Every unit spent in a window was counted in that
//!   window before it was spent, so the requests admitted per window, over all isolates, never exceed
//!   the limit: exactly the fixed window's promise.
//! - **GCRA and token bucket: not leased (today's check).** Debiting `k` tokens up front is not enough:
//!   the tokens an isolate holds are outside the bucket, and the bucket refills up to its burst
//!   regardless. With a burst of 10 per second, isolate A takes 5 at t = 0; at t = 1 s the bucket is
//!   full again; B spends 10 at once and A its 5: 15 at one instant, where the exact bucket allows 10.
//!   A sound lease needs Redis to count the units outstanding and stop the refill at
//!   `burst − outstanding` until each lease expires (in GCRA terms: the used budget never drains below
//!   `outstanding × period`); the bucket plus the leases then behave as one exact bucket that loses
//!   the units that expire unused. That puts lease expiries in the key's state and changes every check
//!   of the key, and is not built yet.
//! - **Sliding window (weighted): not leased (today's check).** Counting a lease in the current window
//!   looks sound (the estimate grows with the current count, the previous window's weight only falls
//!   within a window, and unused units make the next window's estimate stricter), but the rounding of
//!   the weighted estimate has not been checked against it.
//! - **Sliding log: not leased, and not sound as a debit.** A unit counted at `t0` leaves the log at
//!   `t0 + period`; spent at `u > t0`, the exact log holds it until `u + period`. Between the two Redis
//!   has forgotten a request the exact window still counts, and admits others over the limit. Dating
//!   the entries at the lease's end would be sound, but the stored log counts ages back from its latest
//!   write (no entries in the future) and would hold every leased unit a lease longer.
//!
//! A check with several policies is answered from leases only when every one of its keys has a live
//! lease with units for the cost; otherwise it goes to Redis as one script call, as before (the leases
//! stay for later), so a refusal still charges no policy.
//!
//! # What it costs: the bound on under-admission
//!
//! Units leased and not spent stay counted until the window ends. Each isolate holds at most
//! `max_lease = max(1, limit × max_percent / 100)` units of a key at a time, one renewal is in flight at
//! a time, a renewal asks for at most `max_lease − left`, and after a renewal fails the isolate takes
//! no lease of that key until the window ends. So per window:
//!
//! **units counted and never spent ≤ isolates × max_lease**, hence the requests admitted in a window
//! are at least `min(demand, limit − isolates × max_lease)`.
//!
//! (The property tests drive several isolates under random schedules and check both: never more than
//! the exact model admits, never fewer than this bound.)
//!
//! # Failures and time
//!
//! - Redis down or slow: a live lease is still spent (its units were counted already); past it, the
//!   limiter's [`FailurePolicy`](super::FailurePolicy) decides, as without leases.
//! - A renewal answered late: its units are added once, only if their window has not ended on the
//!   isolate's clock when the answer arrives; otherwise they are dropped (they count in the bound).
//! - Clock skew: the script works on `max(caller's now, stored time)` and answers how many ms its
//!   window has left; the isolate stops spending at its own clock's time *when it sent the request*
//!   plus that, minus [`LeaseConfig::max_skew_ms`]. Measuring from the send time ends a lease no later
//!   than Redis's window, and the margin covers an isolate whose clock runs ahead of the others.
//! - An isolate evicted while holding a lease: its units stay counted until the window ends (bounded
//!   above); nothing needs to give them back.
//! - Redis restarting: the window's count is lost, leases' units with it, as every request checked
//!   before the restart is forgotten; leases add nothing to that.
//!
//! # Decisions from a lease
//!
//! `allowed` is true, `reason` is [`Reason::Leased`](super::Reason::Leased), `reset_ms` is when the
//! window ends. `remaining` is an estimate: what the window had left after the lease's last grant plus
//! the units this isolate still holds; other isolates may have spent some of the former since.

mod table;

#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) use table::LEASE_SOURCE;
pub(crate) use table::Leases;

use super::model::{State, Write};
use super::quota::{Algorithm, Quota};

/// When and how much a limiter leases; see the [module docs](self). Turned on with
/// [`RateLimiter::leases`](super::RateLimiter::leases); off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Units per period this isolate must see of a key (estimated over the last period) before it takes
    /// a lease. Default 20: below that, one round trip per request is cheap enough. A policy whose
    /// limit is below it never leases (a refusal blocks the key before it gets hot).
    pub hot_after: u64,
    /// The largest lease, in percent of the limit (1 to 100). Default 10: ten isolates can hold a full
    /// lease each and still leave nothing idle that the bound does not state.
    pub max_percent: u8,
    /// How long one lease should last at the observed rate, in ms; it sets the lease size. Default
    /// 2 000: a renewal every two seconds per hot key, off the critical path.
    pub renew_every_ms: u64,
    /// How far ahead of this isolate's clock another caller's may be, in ms: a lease stops this much
    /// before its window ends. Default 250.
    pub max_skew_ms: u64,
    /// How long a renewal waits for Redis, in ms (it runs in the background). Default 1 000.
    pub timeout_ms: u32,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            hot_after: 20,
            max_percent: 10,
            renew_every_ms: 2_000,
            max_skew_ms: 250,
            timeout_ms: 1_000,
        }
    }
}

impl LeaseConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the field out of range.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.max_percent) {
            return Err(format!(
                "lease max_percent must be 1 to 100, not {}",
                self.max_percent
            ));
        }
        if self.hot_after == 0 || self.renew_every_ms == 0 || self.timeout_ms == 0 {
            return Err("lease hot_after, renew_every_ms and timeout_ms must be at least 1".into());
        }
        Ok(())
    }

    /// The most units one isolate holds of a key under `quota`: `max(1, limit × max_percent / 100)`.
    pub fn max_lease(&self, quota: &Quota) -> u64 {
        (quota.limit().saturating_mul(u64::from(self.max_percent)) / 100).max(1)
    }
}

/// Whether keys of `algorithm` are leased (see the module docs for why only the fixed window is).
pub fn leaseable(algorithm: Algorithm) -> bool {
    algorithm == Algorithm::FixedWindow
}

/// What a lease script call answered.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Units counted for the caller (0 when the window is used up).
    pub units: u64,
    /// The start of the window they belong to (Redis's view of time).
    pub window: u64,
    /// Milliseconds until that window ends, from the time the script worked with.
    pub window_left_ms: u64,
    /// What the window had left after the grant.
    pub remaining: u64,
}

impl Grant {
    /// Reads the script's four integers.
    pub(crate) fn from_reply(values: &[i64]) -> Option<Grant> {
        match *values {
            [units, window, left, remaining] if values.iter().all(|v| *v >= 0) => Some(Grant {
                units: units.unsigned_abs(),
                window: window.unsigned_abs(),
                window_left_ms: left.unsigned_abs(),
                remaining: remaining.unsigned_abs(),
            }),
            _ => None,
        }
    }
}

#[doc(hidden)]
/// The reference for `scripts/lease.lua`: up to `want` units of a fixed-window key at `now`, counted in
/// its window at once.
pub fn take(state: Option<&State>, now: u64, quota: &Quota, want: u64) -> (Grant, Write) {
    let (limit, period) = (quota.limit(), quota.period_ms());
    let now = now.max(state.map_or(now, |s| s.t));
    let window = now - now % period;
    let end = window + period;
    let count = state.filter(|s| s.a == window).map_or(0, |s| s.b);
    let units = want.min(limit - count.min(limit));
    let count = count + units;
    let write = if units > 0 {
        Write::Set(State::new(now, window, count, 0), end - now)
    } else {
        Write::Keep
    };
    let grant = Grant {
        units,
        window,
        window_left_ms: end - now,
        remaining: limit - count.min(limit),
    };
    (grant, write)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

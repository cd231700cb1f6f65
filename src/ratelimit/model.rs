//! The shared vocabulary of the five reference models: the stored [`State`], a policy's [`Verdict`], and
//! [`decide_all`], which checks several policies at once and charges none of them unless all allow.
//!
//! The Lua scripts mirror this file line for line (`scripts/common.lua` and `scripts/check.lua`): every
//! quantity is an integer, so Lua's doubles and Rust's `u64` compute the same values.

use super::quota::{Algorithm, Quota};
use super::{fixed_window, gcra, sliding_log, sliding_window, token_bucket};

/// The lease script's reference (`scripts/lease.lua`) and its answer, for the tests against real Redis.
pub use super::lease::{Grant, take as take_lease};

/// One key's state as stored in Redis: `t:a:b:c`, four unsigned integers, then for the sliding log its
/// entries, oldest first, each `,age` (cost 1) or `,age:cost`, the age counted back from `t`.
///
/// `t` is the latest time the key was written at; every algorithm computes with `max(now, t)`, so a clock
/// that goes backwards (another isolate, a skewed machine) can never recover budget. `a`, `b`, `c` mean
/// what the algorithm says (GCRA: `a` = used budget, scaled; token bucket: `a` = tokens, scaled; windows:
/// `a` = window start, `b` = count in it, `c` = count in the previous window; the sliding log uses only
/// `t` and its entries).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// The latest time this state was written at (ms).
    pub t: u64,
    /// First field.
    pub a: u64,
    /// Second field.
    pub b: u64,
    /// Third field.
    pub c: u64,
    /// The sliding log's accepted requests, `(time, cost)`, oldest first (empty for the others).
    pub log: Vec<(u64, u64)>,
}

impl State {
    /// Four numbers and no log.
    pub fn new(t: u64, a: u64, b: u64, c: u64) -> State {
        State {
            t,
            a,
            b,
            c,
            log: Vec::new(),
        }
    }

    /// The stored text form.
    pub fn encode(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("{}:{}:{}:{}", self.t, self.a, self.b, self.c);
        for &(time, cost) in &self.log {
            let age = self.t.saturating_sub(time);
            let _ = if cost == 1 {
                write!(out, ",{age}")
            } else {
                write!(out, ",{age}:{cost}")
            };
        }
        out
    }

    /// Parses the stored form; anything else counts as no state (the key is then rewritten).
    pub fn parse(raw: &str) -> Option<State> {
        let mut entries = raw.split(',');
        let mut parts = entries.next()?.split(':').map(|p| p.parse::<u64>().ok());
        let mut state = State::new(
            parts.next()??,
            parts.next()??,
            parts.next()??,
            parts.next()??,
        );
        if parts.next().is_some() {
            return None;
        }
        for entry in entries {
            let (age, cost) = entry.split_once(':').unwrap_or((entry, "1"));
            let (age, cost) = (age.parse::<u64>().ok()?, cost.parse::<u64>().ok()?);
            state.log.push((state.t.checked_sub(age)?, cost));
        }
        Some(state)
    }
}

/// One policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Whether the request passes (for a peek: whether a request of cost 1 would).
    pub allowed: bool,
    /// Requests of cost 1 that would still pass now, after this one was charged.
    pub remaining: u64,
    /// Milliseconds until the budget is full again.
    pub reset_ms: u64,
    /// Milliseconds until this request would pass (0 when allowed).
    pub retry_after_ms: u64,
}

/// What to do with the key after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Leave it as it is (peeks and rejections never write).
    Keep,
    /// Store the state with this time to live in ms (always at least 1).
    Set(State, u64),
    /// The state is back to "nothing used": delete the key.
    Delete,
}

/// A verdict and the write that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The answer.
    pub verdict: Verdict,
    /// The state change.
    pub write: Write,
}

/// One policy's decision for `cost` at `now`: `cost > 0` charges, `0` peeks, `< 0` refunds.
///
/// The caller guarantees `cost <= algorithm.capacity(quota)` and a valid quota.
pub fn decide(
    algorithm: Algorithm,
    state: Option<&State>,
    now: u64,
    quota: &Quota,
    cost: i64,
) -> Step {
    match algorithm {
        Algorithm::Gcra => gcra::decide(state, now, quota, cost),
        Algorithm::SlidingWindow => sliding_window::decide(state, now, quota, cost),
        Algorithm::FixedWindow => fixed_window::decide(state, now, quota, cost),
        Algorithm::TokenBucket => token_bucket::decide(state, now, quota, cost),
        Algorithm::SlidingLog => sliding_log::decide(state, now, quota, cost),
    }
}

/// Several policies at once, as `scripts/check.lua` does in one atomic call: each is decided; if the
/// request costs something and any policy rejects it, NO policy is charged, and the policies that would
/// have allowed it report their uncharged budget (as a peek).
pub fn decide_all(
    policies: &[(Algorithm, Quota)],
    states: &[Option<State>],
    now: u64,
    cost: i64,
) -> Vec<Step> {
    let steps: Vec<Step> = policies
        .iter()
        .zip(states)
        .map(|((algorithm, quota), state)| decide(*algorithm, state.as_ref(), now, quota, cost))
        .collect();
    if cost <= 0 || steps.iter().all(|s| s.verdict.allowed) {
        return steps;
    }
    policies
        .iter()
        .zip(states)
        .zip(steps)
        .map(|(((algorithm, quota), state), step)| {
            if step.verdict.allowed {
                decide(*algorithm, state.as_ref(), now, quota, 0)
            } else {
                step
            }
        })
        .collect()
}

/// `ceil(a / b)` for `b > 0` (the script computes `floor((a + b - 1) / b)`, exact below 2^53).
pub(crate) fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

/// What is left of `amount` after `elapsed` ms draining at `rate` per ms (never below 0). Written so the
/// product `elapsed * rate` is only formed when it is below `amount`, so it stays exact in Lua too.
pub(crate) fn drain(amount: u64, elapsed: u64, rate: u64) -> u64 {
    if elapsed >= ceil_div(amount, rate) {
        0
    } else {
        amount - elapsed * rate
    }
}

/// The cost as a number of units: at least 1 (a peek asks about a request of cost 1).
pub(crate) fn units(cost: i64) -> u64 {
    cost.max(1).unsigned_abs()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

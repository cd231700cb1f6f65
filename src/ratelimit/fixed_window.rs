//! Fixed window: at most `limit` per window; windows start at multiples of the period since the Unix
//! epoch, so every isolate agrees on them.
//!
//! State: `a` = the window's start, `b` = what was counted in it. The key lives until the window ends.

use super::model::{State, Step, Verdict, Write, units};
use super::quota::Quota;

/// The reference decision; see [`super::model::decide`].
pub fn decide(state: Option<&State>, now: u64, quota: &Quota, cost: i64) -> Step {
    let (limit, period) = (quota.limit(), quota.period_ms());
    let t = state.map_or(now, |s| s.t);
    let now = now.max(t);
    let start = now - now % period;
    let end = start + period;
    let count = state.filter(|s| s.a == start).map_or(0, |s| s.b);
    let verdict = |allowed, count: u64, retry_after_ms| Verdict {
        allowed,
        remaining: limit - count.min(limit),
        reset_ms: if count > 0 { end - now } else { 0 },
        retry_after_ms,
    };
    let store = |count: u64| {
        if count == 0 {
            Write::Delete
        } else {
            Write::Set(State::new(now, start, count, 0), end - now)
        }
    };
    if cost < 0 {
        let count = count.saturating_sub(cost.unsigned_abs());
        return Step {
            verdict: verdict(true, count, 0),
            write: store(count),
        };
    }
    let after = count + units(cost);
    if after > limit {
        // The cost fits in an empty window (it is at most the limit): the next window lets it pass.
        return Step {
            verdict: verdict(false, count, end - now),
            write: Write::Keep,
        };
    }
    if cost == 0 {
        return Step {
            verdict: verdict(true, count, 0),
            write: Write::Keep,
        };
    }
    Step {
        verdict: verdict(true, after, 0),
        write: store(after),
    }
}

//! GCRA, the generic cell rate algorithm: requests are due every `period / limit` ms, and may arrive up
//! to `burst` emission intervals early.
//!
//! State: `a` = the budget in use, in units of 1/`limit` ms (the theoretical arrival time minus `t`,
//! scaled by `limit` so that an interval that is not a whole number of ms stays exact). It drains at
//! `limit` units per ms; a request of cost `n` adds `n * period` units; a request passes while the total
//! stays within `burst * period`. The key lives exactly as long as the budget takes to drain.

use super::model::{State, Step, Verdict, Write, ceil_div, drain, units};
use super::quota::Quota;

/// The reference decision; see [`super::model::decide`].
pub fn decide(state: Option<&State>, now: u64, quota: &Quota, cost: i64) -> Step {
    let (limit, period) = (quota.limit(), quota.period_ms());
    let (t, stored) = state.map_or((now, 0), |s| (s.t, s.a));
    let now = now.max(t);
    let used = drain(stored, now - t, limit);
    let capacity = quota.burst_size() * period;
    let verdict = |allowed, used: u64, retry_after_ms| Verdict {
        allowed,
        remaining: (capacity - used.min(capacity)) / period,
        reset_ms: ceil_div(used, limit),
        retry_after_ms,
    };
    let store = |used: u64| {
        if used == 0 {
            Write::Delete
        } else {
            Write::Set(State::new(now, used, 0, 0), ceil_div(used, limit))
        }
    };
    if cost < 0 {
        let used = used.saturating_sub(cost.unsigned_abs() * period);
        return Step {
            verdict: verdict(true, used, 0),
            write: store(used),
        };
    }
    let after = used + units(cost) * period;
    if after > capacity {
        let wait = ceil_div(after - capacity, limit);
        return Step {
            verdict: verdict(false, used, wait),
            write: Write::Keep,
        };
    }
    if cost == 0 {
        return Step {
            verdict: verdict(true, used, 0),
            write: Write::Keep,
        };
    }
    Step {
        verdict: verdict(true, after, 0),
        write: store(after),
    }
}

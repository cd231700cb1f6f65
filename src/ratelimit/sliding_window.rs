//! Sliding window, weighted two-bucket form: the count of the current fixed window plus the previous
//! window's count weighted by the share of it that the sliding window still covers.
//!
//! With `e` ms elapsed in the current window of length `w`, previous count `p` and current count `c`,
//! the estimate is `p * (w - e) / w + c`, and a request of cost `n` passes when the estimate plus `n` is
//! at most the limit. Everything is scaled by `w`, so the comparison is exact in integers.
//!
//! Error bound: the estimate assumes the previous window's requests were spread evenly. With even
//! traffic it counts exactly; in the worst case (the previous window's requests all at its very end)
//! a true sliding window of length `w` can see up to `2 * limit - 1` requests, never more, which is still
//! better than a fixed window's worst case (`2 * limit`) and keeps O(1) state: one key with four numbers,
//! where an exact sliding log needs one entry per request.
//!
//! `retry_after` is exact for this estimate: the earliest ms at which the weighted previous window has
//! decayed enough, or, if that is past the window's end, the point in the next window where the (then
//! previous) current count has decayed enough.
//!
//! State: `a` = the current window's start, `b` = its count, `c` = the previous window's count. The key
//! lives until the current window's count stops mattering (two periods after its start).

use super::model::{State, Step, Verdict, Write, units};
use super::quota::Quota;

/// The reference decision; see [`super::model::decide`].
pub fn decide(state: Option<&State>, now: u64, quota: &Quota, cost: i64) -> Step {
    let (limit, period) = (quota.limit(), quota.period_ms());
    let t = state.map_or(now, |s| s.t);
    let now = now.max(t);
    let start = now - now % period;
    let (current, previous) = match state {
        Some(s) if s.a == start => (s.b, s.c),
        Some(s) if s.a + period == start => (0, s.b),
        _ => (0, 0),
    };
    let elapsed = now - start;
    // The estimate, scaled by the period.
    let estimate = |current: u64| previous * (period - elapsed) + current * period;
    let capacity = limit * period;
    let verdict = |allowed, current: u64, retry_after_ms| Verdict {
        allowed,
        remaining: (capacity - estimate(current).min(capacity)) / period,
        reset_ms: if current > 0 {
            start + 2 * period - now
        } else if previous > 0 {
            start + period - now
        } else {
            0
        },
        retry_after_ms,
    };
    let store = |current: u64| {
        if current == 0 && previous == 0 {
            Write::Delete
        } else {
            let state = State::new(now, start, current, previous);
            Write::Set(state, start + 2 * period - now)
        }
    };
    if cost < 0 {
        let current = current.saturating_sub(cost.unsigned_abs());
        return Step {
            verdict: verdict(true, current, 0),
            write: store(current),
        };
    }
    let n = units(cost);
    if estimate(current) + n * period > capacity {
        let wait = retry_after(previous, current, n, limit, period, elapsed);
        return Step {
            verdict: verdict(false, current, wait),
            write: Write::Keep,
        };
    }
    if cost == 0 {
        return Step {
            verdict: verdict(true, current, 0),
            write: Write::Keep,
        };
    }
    Step {
        verdict: verdict(true, current + n, 0),
        write: store(current + n),
    }
}

/// The exact wait until a request of cost `n` passes, given that it does not pass now.
fn retry_after(previous: u64, current: u64, n: u64, limit: u64, period: u64, elapsed: u64) -> u64 {
    // Later in this window: need previous * (period - e) <= room, with room = (limit - current - n) * period.
    if previous > 0 && current + n <= limit {
        let room = (limit - current - n) * period;
        let at = period - room / previous;
        if at < period {
            return at - elapsed;
        }
    }
    // In the next window, today's count becomes the previous one: need current * (period - e) <=
    // (limit - n) * period.
    let at = match ((limit - n) * period).checked_div(current) {
        None => 0,
        Some(room) => period - room.min(period),
    };
    period - elapsed + at
}

//! Sliding log: the exact sliding window. Every accepted request is logged with its time and cost; a
//! request of cost `n` passes when the costs logged in the last `period` ms, plus `n`, are at most the
//! limit. No estimate and no error bound: over ANY `period` ms, at most `limit` pass.
//!
//! The price is state: one entry per accepted request still inside the window (requests accepted in the
//! same millisecond share one), so at most `limit` entries per key. The limit is therefore capped at
//! [`MAX_LOG_LIMIT`]; for larger limits, use GCRA (exact and O(1)) or the sliding window.
//!
//! `retry_after` is exact: the moment the oldest entries have left the window far enough for `n` to
//! fit. `reset` is the moment the newest entry leaves it. A refund gives back the most recent charges.
//!
//! State: `t` = the latest time written, `log` = the entries (`a`, `b`, `c` unused). The key lives until
//! its newest entry leaves the window.

use super::model::{State, Step, Verdict, Write, units};
use super::quota::Quota;

/// The largest limit a sliding-log policy may have (entries per key, at most).
pub const MAX_LOG_LIMIT: u64 = 10_000;

/// The reference decision; see [`super::model::decide`].
pub fn decide(state: Option<&State>, now: u64, quota: &Quota, cost: i64) -> Step {
    let (limit, period) = (quota.limit(), quota.period_ms());
    let now = now.max(state.map_or(now, |s| s.t));
    // The entries still inside the window (now - period, now].
    let mut log: Vec<(u64, u64)> = state
        .map(|s| {
            s.log
                .iter()
                .copied()
                .filter(|&(time, _)| time + period > now)
                .collect()
        })
        .unwrap_or_default();
    let used = |log: &[(u64, u64)]| log.iter().map(|&(_, c)| c).sum::<u64>();
    let verdict = |allowed, log: &[(u64, u64)], retry_after_ms| Verdict {
        allowed,
        remaining: limit - used(log).min(limit),
        reset_ms: log.last().map_or(0, |&(time, _)| time + period - now),
        retry_after_ms,
    };
    let store = |log: Vec<(u64, u64)>| match log.last() {
        None => Write::Delete,
        Some(&(newest, _)) => {
            let ttl = newest + period - now;
            let mut state = State::new(now, 0, 0, 0);
            state.log = log;
            Write::Set(state, ttl)
        }
    };
    if cost < 0 {
        let mut back = cost.unsigned_abs();
        while back > 0 {
            let Some(last) = log.last_mut() else { break };
            if last.1 <= back {
                back -= last.1;
                log.pop();
            } else {
                last.1 -= back;
                back = 0;
            }
        }
        return Step {
            verdict: verdict(true, &log, 0),
            write: store(log),
        };
    }
    let n = units(cost);
    let total = used(&log);
    if total + n > limit {
        // Wait until the oldest entries free at least `total + n - limit`: `n <= limit`, so they can.
        let needed = total + n - limit;
        let mut freed = 0;
        let mut at = now;
        for &(time, c) in &log {
            freed += c;
            if freed >= needed {
                at = time + period;
                break;
            }
        }
        return Step {
            verdict: verdict(false, &log, at - now),
            write: Write::Keep,
        };
    }
    if cost == 0 {
        return Step {
            verdict: verdict(true, &log, 0),
            write: Write::Keep,
        };
    }
    match log.last_mut() {
        Some(last) if last.0 == now => last.1 += n,
        _ => log.push((now, n)),
    }
    Step {
        verdict: verdict(true, &log, 0),
        write: store(log),
    }
}

//! Token bucket with continuous refill: a bucket holds up to `burst` tokens and refills at `limit` tokens
//! per `period`; a request of cost `n` takes `n` tokens or is refused without taking any.
//!
//! State: `a` = tokens in the bucket, in units of 1/`period` token (so that a refill rate that is not a
//! whole number of tokens per ms stays exact). A missing key is a full bucket; the key lives until the
//! bucket would be full again. This makes the same decisions as GCRA (a test checks it): pick it when
//! you think in tokens and refill rates.

use super::model::{State, Step, Verdict, Write, ceil_div, drain, units};
use super::quota::Quota;

/// The reference decision; see [`super::model::decide`].
pub fn decide(state: Option<&State>, now: u64, quota: &Quota, cost: i64) -> Step {
    let (rate, period) = (quota.limit(), quota.period_ms());
    let full = quota.burst_size() * period;
    let (t, stored) = state.map_or((now, full), |s| (s.t, s.a.min(full)));
    let now = now.max(t);
    // Refill: the missing tokens drain away at `rate` units per ms.
    let tokens = full - drain(full - stored, now - t, rate);
    let verdict = |allowed, tokens: u64, retry_after_ms| Verdict {
        allowed,
        remaining: tokens / period,
        reset_ms: ceil_div(full - tokens, rate),
        retry_after_ms,
    };
    let store = |tokens: u64| {
        if tokens == full {
            Write::Delete
        } else {
            let ttl = ceil_div(full - tokens, rate);
            Write::Set(State::new(now, tokens, 0, 0), ttl)
        }
    };
    if cost < 0 {
        let tokens = (tokens + cost.unsigned_abs() * period).min(full);
        return Step {
            verdict: verdict(true, tokens, 0),
            write: store(tokens),
        };
    }
    let need = units(cost) * period;
    if need > tokens {
        let wait = ceil_div(need - tokens, rate);
        return Step {
            verdict: verdict(false, tokens, wait),
            write: Write::Keep,
        };
    }
    if cost == 0 {
        return Step {
            verdict: verdict(true, tokens, 0),
            write: Write::Keep,
        };
    }
    Step {
        verdict: verdict(true, tokens - need, 0),
        write: store(tokens - need),
    }
}

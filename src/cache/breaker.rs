//! A per-isolate circuit breaker: after repeated Redis failures, skip Redis for a while and go straight
//! to the origin, so that a Redis outage costs each request nothing instead of a deadline.
//!
//! Closed (normal) → `failures` consecutive failures → Open for `open_ms` (Redis skipped) → HalfOpen: one
//! lookup probes Redis while the others still skip it → the probe's success closes the breaker, its
//! failure opens it again. A probe whose outcome never arrives (its request was cancelled) does not
//! block forever: after another `open_ms` a new probe is let through.
//!
//! The breaker takes the time as an argument, so it is pure logic and its tests never sleep.

use std::cell::Cell;

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (at least 1). Default 3.
    pub failures: u32,
    /// How long Redis is skipped once open. Default 5 s: short enough that a recovered Redis is used
    /// again quickly, long enough that a dead one costs only one probe per 5 s per isolate.
    pub open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 3,
            open_ms: 5_000,
        }
    }
}

/// The breaker's state, as reported in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Redis is used.
    Closed,
    /// Redis is skipped.
    Open,
    /// One probe may use Redis; the others skip it.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed { failures: u32 },
    Open { until: u64 },
    Probing { since: u64 },
}

/// The breaker: closed, then open after repeated failures, then half-open to let one probe through.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Cell<Inner>,
    opened: Cell<u64>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config: BreakerConfig {
                failures: config.failures.max(1),
                ..config
            },
            inner: Cell::new(Inner::Closed { failures: 0 }),
            opened: Cell::new(0),
        }
    }

    /// Whether a lookup at `now` may use Redis. In the half-open state the first caller becomes the
    /// probe and gets `true`; the others get `false` until the probe reports.
    pub fn allow(&self, now: u64) -> bool {
        match self.inner.get() {
            Inner::Closed { .. } => true,
            Inner::Open { until } if now < until => false,
            Inner::Probing { since } if now < since.saturating_add(self.config.open_ms) => false,
            // Open and due, or a probe that never reported: let one probe through.
            Inner::Open { .. } | Inner::Probing { .. } => {
                self.inner.set(Inner::Probing { since: now });
                true
            }
        }
    }

    /// Redis answered: the breaker closes and the failure count starts over.
    pub fn success(&self) {
        self.inner.set(Inner::Closed { failures: 0 });
    }

    /// Redis failed (unreachable, 5xx, deadline passed) at `now`.
    pub fn failure(&self, now: u64) {
        let next = match self.inner.get() {
            Inner::Closed { failures } if failures + 1 < self.config.failures => Inner::Closed {
                failures: failures + 1,
            },
            // A failure while already open (a lookup that started before the breaker opened) keeps
            // the current window rather than extending it.
            open @ Inner::Open { .. } => open,
            Inner::Closed { .. } | Inner::Probing { .. } => {
                self.opened.set(self.opened.get() + 1);
                Inner::Open {
                    until: now.saturating_add(self.config.open_ms),
                }
            }
        };
        self.inner.set(next);
    }

    /// The state at `now` (an open breaker whose time is up reports half-open: the next lookup probes).
    pub fn state(&self, now: u64) -> BreakerState {
        match self.inner.get() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now < until => BreakerState::Open,
            Inner::Open { .. } | Inner::Probing { .. } => BreakerState::HalfOpen,
        }
    }

    /// How many times the breaker has opened.
    pub fn times_opened(&self) -> u64 {
        self.opened.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            open_ms: 1_000,
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker();
        b.failure(0);
        b.failure(0);
        b.success();
        b.failure(0);
        b.failure(0);
        assert_eq!(b.state(0), BreakerState::Closed);
        assert!(b.allow(0));
        b.failure(10);
        assert_eq!(b.state(10), BreakerState::Open);
        assert!(!b.allow(10) && !b.allow(1_009));
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn half_open_lets_one_probe_through() {
        let b = breaker();
        for _ in 0..3 {
            b.failure(0);
        }
        assert_eq!(b.state(1_000), BreakerState::HalfOpen);
        assert!(b.allow(1_000), "the first caller probes");
        assert!(!b.allow(1_001), "the others skip Redis meanwhile");
        b.success();
        assert_eq!(b.state(1_002), BreakerState::Closed);
        assert!(b.allow(1_002));
    }

    #[test]
    fn a_failed_probe_opens_again_for_a_full_window() {
        let b = breaker();
        for _ in 0..3 {
            b.failure(0);
        }
        assert!(b.allow(1_500));
        b.failure(1_500);
        assert_eq!(b.state(1_500), BreakerState::Open);
        assert!(!b.allow(2_499));
        assert!(b.allow(2_500));
        assert_eq!(b.times_opened(), 2);
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_window() {
        let b = breaker();
        for _ in 0..3 {
            b.failure(0);
        }
        assert!(b.allow(1_000));
        assert!(!b.allow(1_999));
        assert!(b.allow(2_000), "the first probe never reported");
    }

    #[test]
    fn late_failures_do_not_extend_an_open_window() {
        let b = breaker();
        for _ in 0..3 {
            b.failure(0);
        }
        b.failure(900);
        assert!(b.allow(1_000));
        assert_eq!(b.times_opened(), 1);
        let one = Breaker::new(BreakerConfig {
            failures: 0,
            open_ms: 10,
        });
        one.failure(0);
        assert_eq!(one.state(0), BreakerState::Open, "at least one failure");
    }
}

//! What is allowed: a [`Quota`] (how many, per how long, how many at once) and the [`Algorithm`] that
//! enforces it.

use std::fmt;

/// The largest `limit * period_ms` (and `burst * period_ms`) a quota may have.
///
/// The scripts run in Redis's Lua, whose numbers are doubles: keeping every product below 2^50 keeps the
/// arithmetic exact (integers up to 2^53 are exact), so the script and the Rust reference agree to the
/// millisecond. 2^50 ms is still a million requests per 35 years-worth of milliseconds; in practice:
/// 10 000 per day, or a million per ten minutes.
pub const MAX_PRODUCT: u64 = 1 << 50;

/// How many requests are allowed per period, and how many may arrive at once.
///
/// ```
/// use redge::ratelimit::Quota;
/// let quota = Quota::per_minute(60).burst(10);
/// assert_eq!((quota.limit(), quota.period_ms(), quota.burst_size()), (60, 60_000, 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    limit: u64,
    period_ms: u64,
    burst: u64,
}

impl Quota {
    /// `limit` requests per `period_ms` milliseconds; the burst defaults to `limit`.
    ///
    /// Values are clamped to at least 1; [`Quota::validate`] reports quotas too large to compute exactly.
    pub fn new(limit: u64, period_ms: u64) -> Self {
        let limit = limit.max(1);
        Quota {
            limit,
            period_ms: period_ms.max(1),
            burst: limit,
        }
    }

    /// `limit` requests per second.
    pub fn per_second(limit: u64) -> Self {
        Self::new(limit, 1_000)
    }

    /// `limit` requests per minute.
    pub fn per_minute(limit: u64) -> Self {
        Self::new(limit, 60_000)
    }

    /// `limit` requests per hour.
    pub fn per_hour(limit: u64) -> Self {
        Self::new(limit, 3_600_000)
    }

    /// Sets how many requests may arrive at once (GCRA and token bucket; the window algorithms allow
    /// `limit` per window and ignore it). At least 1.
    pub fn burst(mut self, burst: u64) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// Requests per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period in milliseconds.
    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// Requests allowed at once.
    pub fn burst_size(&self) -> u64 {
        self.burst
    }

    /// Checks that the quota's arithmetic stays exact (see [`MAX_PRODUCT`]).
    ///
    /// # Errors
    /// A message naming the product that is too large.
    pub fn validate(&self) -> Result<(), String> {
        let big = |n: u64| {
            n.checked_mul(self.period_ms)
                .is_none_or(|p| p > MAX_PRODUCT)
        };
        if big(self.limit) || big(self.burst) {
            return Err(format!(
                "quota {self} is too large: limit x period and burst x period must stay below 2^50 \
                 (use a shorter period or a smaller limit)"
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {} ms (burst {})",
            self.limit, self.period_ms, self.burst
        )
    }
}

/// How a quota is enforced. All five are exact in the sense that the Lua script and the Rust reference
/// take the same decisions; they differ in what they promise:
///
/// - [`Algorithm::Gcra`] (default): requests are spaced `period / limit` apart with a tolerance of `burst`
///   requests; smooth, one timestamp of state, exact `retry_after`.
/// - [`Algorithm::TokenBucket`]: a bucket of `burst` tokens refilled continuously at `limit` per period.
///   It takes the same decisions as GCRA (the two are duals); it stores tokens instead of a time.
/// - [`Algorithm::FixedWindow`]: at most `limit` per window aligned on multiples of the period since the
///   Unix epoch. Simple, but allows up to `2 * limit` around a window boundary.
/// - [`Algorithm::SlidingWindow`]: two fixed windows, the previous one weighted by how much of it still
///   overlaps the sliding window. Smooths the boundary burst; see the module docs for its error bound.
/// - [`Algorithm::SlidingLog`]: the exact sliding window: at most `limit` in ANY `period` ms. It logs
///   every accepted request still in the window, so its limit is capped (see
///   the sliding log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// The generic cell rate algorithm.
    #[default]
    Gcra,
    /// Weighted two-bucket sliding window.
    SlidingWindow,
    /// Fixed window aligned on the epoch.
    FixedWindow,
    /// Token bucket with continuous refill.
    TokenBucket,
    /// Sliding log: the exact sliding window.
    SlidingLog,
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Gcra,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
        Algorithm::TokenBucket,
        Algorithm::SlidingLog,
    ];

    /// The name used in configuration and JSON: `gcra`, `sliding_window`, `fixed_window`,
    /// `token_bucket`, `sliding_log`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gcra => "gcra",
            Algorithm::SlidingWindow => "sliding_window",
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::SlidingLog => "sliding_log",
        }
    }

    /// Parses [`Algorithm::name`] in any of the spellings configuration uses: snake case
    /// (`sliding_window`, the Worker's variables), camelCase (`slidingWindow`, JavaScript options),
    /// kebab case (`sliding-window`), in any case (`GCRA`).
    pub fn parse(name: &str) -> Option<Self> {
        let mut snake = String::with_capacity(name.len() + 2);
        let mut previous_lower = false;
        for c in name.trim().chars() {
            // A capital after a lower-case letter or digit starts a word of a camelCase name.
            if c.is_ascii_uppercase() && previous_lower {
                snake.push('_');
            }
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            snake.push(if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            });
        }
        Self::ALL.into_iter().find(|a| a.name() == snake)
    }

    /// The largest cost one request may have: the burst for GCRA and token bucket, the limit for windows.
    pub fn capacity(self, quota: &Quota) -> u64 {
        match self {
            Algorithm::Gcra | Algorithm::TokenBucket => quota.burst,
            Algorithm::SlidingWindow | Algorithm::FixedWindow | Algorithm::SlidingLog => {
                quota.limit
            }
        }
    }

    /// Checks that `quota` can be enforced by this algorithm: [`Quota::validate`], and for the sliding
    /// log a limit of at most 10 000 (its state holds up
    /// to one entry per request allowed).
    ///
    /// # Errors
    /// A message that names the problem and what to do instead.
    pub fn validate(self, quota: &Quota) -> Result<(), String> {
        quota.validate()?;
        let max = super::sliding_log::MAX_LOG_LIMIT;
        if self == Algorithm::SlidingLog && quota.limit > max {
            return Err(format!(
                "quota {quota} is too large for sliding_log: it keeps one entry per request allowed, \
                 so its limit is at most {max} (use gcra or sliding_window for larger limits)"
            ));
        }
        Ok(())
    }

    /// The code the Lua script dispatches on.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Algorithm::Gcra => "g",
            Algorithm::SlidingWindow => "s",
            Algorithm::FixedWindow => "f",
            Algorithm::TokenBucket => "t",
            Algorithm::SlidingLog => "l",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_validation() {
        assert_eq!(Quota::per_hour(0).limit(), 1, "clamped");
        assert!(Quota::per_minute(100).validate().is_ok());
        assert!(Quota::new(1 << 30, 1 << 30).validate().is_err());
        assert!(Quota::per_second(10).burst(u64::MAX).validate().is_err());
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.name()), Some(a));
        }
        assert_eq!(
            Algorithm::parse("Token-Bucket"),
            Some(Algorithm::TokenBucket)
        );
        for (spelling, algorithm) in [
            ("slidingWindow", Algorithm::SlidingWindow),
            ("SlidingLog", Algorithm::SlidingLog),
            ("fixed_window", Algorithm::FixedWindow),
            ("token-bucket", Algorithm::TokenBucket),
            ("tokenBucket", Algorithm::TokenBucket),
            ("GCRA", Algorithm::Gcra),
            ("SLIDING_WINDOW", Algorithm::SlidingWindow),
        ] {
            assert_eq!(Algorithm::parse(spelling), Some(algorithm), "{spelling}");
        }
        assert_eq!(Algorithm::parse("leaky"), None);
        assert_eq!(Algorithm::parse("slidingwindow"), None);
        assert_eq!(Algorithm::parse("sliding__window"), None);
        let q = Quota::per_second(10).burst(3);
        assert_eq!(Algorithm::Gcra.capacity(&q), 3);
        assert_eq!(Algorithm::FixedWindow.capacity(&q), 10);
        assert_eq!(Algorithm::SlidingLog.capacity(&q), 10);
    }

    #[test]
    fn the_sliding_log_caps_its_limit() {
        let fine = Quota::new(10_000, 60_000);
        let big = Quota::new(10_001, 60_000);
        assert!(Algorithm::SlidingLog.validate(&fine).is_ok());
        let error = Algorithm::SlidingLog.validate(&big).unwrap_err();
        assert!(error.contains("at most 10000"), "{error}");
        assert!(Algorithm::Gcra.validate(&big).is_ok());
        assert!(
            Algorithm::Gcra
                .validate(&Quota::new(1 << 30, 1 << 30))
                .is_err()
        );
    }
}

//! Counters per key group (the policy's `group`, never the raw key: metrics must stay bounded however
//! many keys there are), read by the Worker's metrics route.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// Upper bounds (ms, inclusive) of the latency histogram's buckets; a last bucket counts the rest.
pub const LATENCY_BUCKETS_MS: [u64; 9] = [1, 5, 10, 25, 50, 100, 250, 500, 1_000];

/// The most groups tracked; lookups of further groups are counted under `other`.
pub const MAX_GROUPS: usize = 64;

/// What happened to one group's lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupMetrics {
    /// Lookups answered.
    pub lookups: u64,
    /// Fresh values served from Redis.
    pub hits: u64,
    /// Fresh values served from the isolate's memory tier (no round trip).
    pub memory_hits: u64,
    /// Fresh values served from the location's HTTP cache, the colo tier (no round trip).
    pub colo_hits: u64,
    /// Lookups that went to the origin because nothing usable was cached.
    pub misses: u64,
    /// Stale values served (during a background refresh or because the origin failed).
    pub stale: u64,
    /// Remembered "not found" answers served.
    pub negative: u64,
    /// Lookups that skipped Redis (breaker open, or Redis failed) and went to the origin.
    pub bypass: u64,
    /// Lookups that joined another lookup's origin call instead of making their own.
    pub coalesced: u64,
    /// Origin calls made (background refreshes included).
    pub origin_calls: u64,
    /// Origin calls that failed.
    pub origin_errors: u64,
    /// Redis failures (unreachable, deadline, unexpected reply) and values that could not be encoded.
    pub cache_errors: u64,
    /// Entries that did not decode (another schema version, damaged) and were rewritten.
    pub corrupt: u64,
    /// Values not written because they were over the policy's size cap.
    pub oversize: u64,
    /// Background refreshes started.
    pub refreshes: u64,
    /// Sum of lookup latencies (ms), for a mean.
    pub latency_ms_sum: u64,
    /// The slowest lookup (ms).
    pub latency_ms_max: u64,
    /// Lookups per latency bucket: one count per bound of 1, 5, 10, 25, 50, 100, 250, 500 and 1,000 ms, then the rest.
    pub latency_ms_buckets: [u64; LATENCY_BUCKETS_MS.len() + 1],
}

impl GroupMetrics {
    /// Lookups answered from the cache: fresh (Redis, memory or colo), stale and negative entries.
    pub fn answered_from_cache(&self) -> u64 {
        self.hits + self.memory_hits + self.colo_hits + self.stale + self.negative
    }

    /// Lookups with an outcome: answered from the cache, missed, or bypassed.
    pub fn with_outcome(&self) -> u64 {
        self.answered_from_cache() + self.misses + self.bypass
    }

    /// The share of lookups answered from the cache (0 before the first lookup).
    pub fn hit_ratio(&self) -> f64 {
        let all = self.with_outcome();
        if all == 0 {
            0.0
        } else {
            self.answered_from_cache() as f64 / all as f64
        }
    }

    /// Records one lookup's latency.
    pub fn observe(&mut self, ms: u64) {
        self.lookups += 1;
        self.latency_ms_sum = self.latency_ms_sum.saturating_add(ms);
        self.latency_ms_max = self.latency_ms_max.max(ms);
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        if let Some(count) = self.latency_ms_buckets.get_mut(bucket) {
            *count += 1;
        }
    }
}

/// Every group's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    groups: RefCell<BTreeMap<String, GroupMetrics>>,
}

impl Metrics {
    /// Applies `f` to `group`'s counters.
    pub fn with(&self, group: &str, f: impl FnOnce(&mut GroupMetrics)) {
        let mut groups = self.groups.borrow_mut();
        let name = if groups.contains_key(group) || groups.len() < MAX_GROUPS {
            group
        } else {
            "other"
        };
        f(groups.entry(name.to_owned()).or_default());
    }

    /// A copy of every group's counters.
    pub fn snapshot(&self) -> BTreeMap<String, GroupMetrics> {
        self.groups.borrow().clone()
    }

    /// Origin calls over every group.
    pub fn origin_calls(&self) -> u64 {
        self.groups.borrow().values().map(|g| g.origin_calls).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hit_ratio_counts_every_answer_from_the_cache() {
        let mut m = GroupMetrics::default();
        assert_eq!(m.hit_ratio(), 0.0);
        (
            m.hits,
            m.memory_hits,
            m.colo_hits,
            m.stale,
            m.negative,
            m.misses,
            m.bypass,
        ) = (4, 1, 1, 1, 1, 1, 1);
        assert_eq!(m.answered_from_cache(), 8);
        assert!((m.hit_ratio() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn latency_lands_in_its_bucket() {
        let mut g = GroupMetrics::default();
        for ms in [0, 1, 2, 100, 101, 5_000] {
            g.observe(ms);
        }
        assert_eq!(g.lookups, 6);
        assert_eq!(g.latency_ms_buckets, [2, 1, 0, 0, 0, 1, 1, 0, 0, 1]);
        assert_eq!((g.latency_ms_sum, g.latency_ms_max), (5_204, 5_000));
    }

    #[test]
    fn groups_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_GROUPS + 5 {
            m.with(&format!("g{i}"), |g| g.origin_calls += 1);
        }
        let snap = m.snapshot();
        assert_eq!(snap.len(), MAX_GROUPS + 1);
        assert_eq!(snap["other"].origin_calls, 5);
        assert_eq!(m.origin_calls(), (MAX_GROUPS + 5) as u64);
    }
}

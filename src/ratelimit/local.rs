//! Per-isolate memory: the block cache (identifiers known to be blocked are refused without a Redis call)
//! and the fallback limiter (decides alone when Redis fails and the failure policy says so).
//!
//! Both are bounded in entries and in bytes, and forget an entry the moment it expires: the block cache
//! never refuses a request past the exact time Redis said it would pass.

use std::collections::HashMap;

use super::model::{State, Verdict, Write, decide_all};
use super::quota::{Algorithm, Quota};

/// Bookkeeping bytes counted per entry on top of its key (hash map slot, value, expiry).
const ENTRY_OVERHEAD: usize = 64;

/// Bytes a sliding-log entry takes in memory.
const LOG_ENTRY_BYTES: usize = std::mem::size_of::<(u64, u64)>();

/// A map whose entries expire and whose size is capped; when full, expired entries go first, then the
/// ones that would expire soonest (those carry the least information). Each entry counts its key, the
/// fixed overhead and the extra bytes its value says it holds.
#[derive(Debug)]
struct Bounded<V> {
    // key -> (value, expiry, bytes counted for it)
    entries: HashMap<String, (V, u64, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<V> Bounded<V> {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Bounded {
            entries: HashMap::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    fn get(&mut self, key: &str, now: u64) -> Option<(&V, u64)> {
        if self
            .entries
            .get(key)
            .is_some_and(|(_, expires, _)| *expires <= now)
        {
            self.remove(key);
        }
        self.entries.get(key).map(|(v, expires, _)| (v, *expires))
    }

    fn remove(&mut self, key: &str) {
        if let Some((_, _, size)) = self.entries.remove(key) {
            self.bytes -= size;
        }
    }

    /// Keeps `value` until `expires`, counting `extra` bytes for what it holds besides itself.
    fn insert(&mut self, key: &str, value: V, expires: u64, now: u64, extra: usize) {
        self.remove(key);
        let size = key.len() + ENTRY_OVERHEAD + extra;
        if expires <= now || size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        if self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            self.entries.retain(|_, (_, e, _)| *e > now);
            self.bytes = self.entries.values().map(|(_, _, size)| size).sum();
        }
        while self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, e, _))| *e)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&soonest);
        }
        self.bytes += size;
        self.entries.insert(key.to_owned(), (value, expires, size));
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Identifiers known to be blocked, each until the exact time Redis said a request would pass.
#[derive(Debug)]
pub struct BlockCache {
    // key -> the smallest cost known to be refused until the expiry.
    map: Bounded<u64>,
}

impl BlockCache {
    /// A cache of at most `max_entries` entries and about `max_bytes` bytes (0 entries disables it).
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        BlockCache {
            map: Bounded::new(max_entries, max_bytes),
        }
    }

    /// Until when a request of `cost` on `key` is known to be refused, if it is at `now`.
    ///
    /// A refusal of cost `c` says nothing about a cheaper request, which may pass earlier: only requests
    /// costing at least as much are refused from the cache.
    pub fn blocked_until(&mut self, key: &str, now: u64, cost: u64) -> Option<u64> {
        self.map
            .get(key, now)
            .filter(|(blocked_cost, _)| cost >= **blocked_cost)
            .map(|(_, until)| until)
    }

    /// Remembers that a request of `cost` on `key` is refused until `until`.
    pub fn block(&mut self, key: &str, until: u64, cost: u64, now: u64) {
        self.map.insert(key, cost, until, now, 0);
    }

    /// Forgets `key` (after a reset or a refund).
    pub fn forget(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Entries held (expired ones included until they are touched or evicted).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The per-isolate fallback limiter: the same reference models as the scripts, with the state in memory.
///
/// Each isolate counts on its own, so with N isolates up to N times the quota may pass while Redis is
/// down: it protects the origin from a flood, it does not enforce the quota exactly.
#[derive(Debug)]
pub struct LocalLimiter {
    map: Bounded<State>,
}

impl LocalLimiter {
    /// A limiter keeping at most `max_entries` states and about `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        LocalLimiter {
            map: Bounded::new(max_entries, max_bytes),
        }
    }

    /// Decides `cost` on `keys` (one per policy) at `now`, as the script would, and keeps the new states.
    pub fn decide(
        &mut self,
        keys: &[String],
        policies: &[(Algorithm, Quota)],
        now: u64,
        cost: i64,
    ) -> Vec<Verdict> {
        let states: Vec<Option<State>> = keys
            .iter()
            .map(|k| self.map.get(k, now).map(|(s, _)| s.clone()))
            .collect();
        let steps = decide_all(policies, &states, now, cost);
        for (key, step) in keys.iter().zip(&steps) {
            match &step.write {
                Write::Keep => {}
                Write::Delete => self.map.remove(key),
                Write::Set(state, ttl) => {
                    let extra = state.log.len() * LOG_ENTRY_BYTES;
                    self.map.insert(key, state.clone(), now + ttl, now, extra);
                }
            }
        }
        steps.into_iter().map(|s| s.verdict).collect()
    }

    /// Forgets `key`.
    pub fn forget(&mut self, key: &str) {
        self.map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliding_log_counts_its_entries_against_the_memory_bound() {
        // Each full log: 100 entries of 16 bytes, plus a 1-byte key and the overhead: 1665 bytes.
        let mut local = LocalLimiter::new(100, 2_000);
        let policy = [(Algorithm::SlidingLog, Quota::new(100, 60_000))];
        let fill = |local: &mut LocalLimiter, key: &str, from: u64| {
            for i in 0..100 {
                let verdict = &local.decide(&[key.to_owned()], &policy, from + i, 1)[0];
                assert!(verdict.allowed, "{key} request {i}");
            }
            assert!(!local.decide(&[key.to_owned()], &policy, from + 100, 1)[0].allowed);
        };
        fill(&mut local, "a", 1_000);
        assert_eq!(local.map.len(), 1);
        // A second full log does not fit beside the first: the one that expires sooner goes.
        fill(&mut local, "b", 2_000);
        assert_eq!(local.map.len(), 1);
        assert!(local.map.bytes <= 2_000, "{}", local.map.bytes);
        assert!(
            local.decide(&["a".to_owned()], &policy, 2_200, 1)[0].allowed,
            "a's log was evicted"
        );
    }

    #[test]
    fn block_cache_refuses_until_the_exact_time_and_only_costs_at_least_as_high() {
        let mut cache = BlockCache::new(10, 10_000);
        cache.block("k", 1_500, 2, 1_000);
        assert_eq!(cache.blocked_until("k", 1_000, 2), Some(1_500));
        assert_eq!(cache.blocked_until("k", 1_000, 5), Some(1_500));
        assert_eq!(cache.blocked_until("k", 1_000, 1), None, "cheaper may pass");
        assert_eq!(cache.blocked_until("k", 1_499, 2), Some(1_500));
        assert_eq!(cache.blocked_until("k", 1_500, 2), None, "not one ms past");
        assert!(cache.is_empty(), "expired entries are dropped when touched");
        cache.block("k", 2_000, 1, 1_000);
        cache.forget("k");
        assert_eq!(cache.blocked_until("k", 1_000, 1), None);
    }

    #[test]
    fn block_cache_is_bounded_in_entries_and_bytes() {
        let mut cache = BlockCache::new(3, 100_000);
        for i in 0..10u64 {
            cache.block(&format!("k{i}"), 10_000 + i, 1, 0);
        }
        assert_eq!(cache.len(), 3);
        assert!(
            cache.blocked_until("k9", 0, 1).is_some(),
            "the longest blocks stay"
        );
        assert!(cache.blocked_until("k0", 0, 1).is_none());

        let mut cache = BlockCache::new(1_000, 3 * (ENTRY_OVERHEAD + 2));
        for i in 0..10u64 {
            cache.block(&format!("k{i}"), 10_000 + i, 1, 0);
        }
        assert_eq!(cache.len(), 3);
        cache.block(&"x".repeat(1_000), 99_999, 1, 0);
        assert_eq!(
            cache.len(),
            3,
            "an entry bigger than the whole cache is not kept"
        );
        let mut off = BlockCache::new(0, 1_000);
        off.block("k", 10, 1, 0);
        assert!(off.is_empty());
    }

    #[test]
    fn local_limiter_counts_and_bounds() {
        let mut local = LocalLimiter::new(2, 10_000);
        let policies = [(Algorithm::FixedWindow, Quota::new(2, 1_000))];
        let key = vec!["a".to_owned()];
        let allowed: Vec<bool> = (0..3)
            .map(|_| local.decide(&key, &policies, 100, 1)[0].allowed)
            .collect();
        assert_eq!(allowed, [true, true, false]);
        assert!(
            local.decide(&key, &policies, 1_000, 1)[0].allowed,
            "next window"
        );
        for name in ["b", "c", "d"] {
            local.decide(&[name.to_owned()], &policies, 1_000, 1);
        }
        assert!(local.map.len() <= 2);
        local.forget("d");
    }
}

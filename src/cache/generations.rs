//! Tag generations: how an invalidation reaches entries that live in other slots, and what this
//! isolate remembers of them so that [`Cache::set`](super::Cache::set) stays one round trip.
//!
//! An entry embeds the generation of each of its tags as read before its value was known, and is valid
//! only while every embedded generation equals the counter's current value. No script reads a counter
//! and writes an entry together (on a Redis Cluster they live in different slots), so correctness rests
//! on one property: **an entry's embedded generations are never ahead of the counters they copy**. An
//! entry that embeds an older generation than the counter's is simply a miss; one that embedded a
//! newer one could turn valid after later invalidations, which must never happen. Hence:
//!
//! - a counter only ever goes up, even across its own expiry: an invalidation adds one to a counter
//!   that exists and starts a missing one at the invalidating clock's time in ms (`bump.lua`), which
//!   is past any value the counter held before it expired ([`CacheOptions::tag_ttl_ms`] without an
//!   invalidation, 30 days by default, against at most one increment per invalidation);
//! - a write after a miss embeds the generations its read returned, read before the origin was called;
//! - [`Cache::set`](super::Cache::set) embeds the generations this isolate last saw (0 for a
//!   tag it never saw) and reads the counters in the same batch; when they differ it writes the entry
//!   once more with the generations just read, only if the entry is still the one it wrote.
//!
//! [`CacheOptions::tag_ttl_ms`]: super::CacheOptions::tag_ttl_ms

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use crate::client::Script;

/// Most tags remembered per isolate; past that the memory starts afresh (a forgotten tag costs one
/// more round trip in its next [`Cache::set`](super::Cache::set), never correctness).
pub const MAX_KNOWN_TAGS: usize = 10_000;

/// Invalidates a tag: see the module docs and `scripts/bump.lua`.
static BUMP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/bump.lua")));

/// The script behind [`Cache::invalidate_tag`](super::Cache::invalidate_tag).
pub(super) fn bump_script() -> &'static Script {
    &BUMP
}

/// The generations this isolate last saw, per tag.
#[derive(Debug, Default)]
pub(super) struct Known {
    map: RefCell<HashMap<String, u64>>,
}

impl Known {
    /// Remembers that `tags` were at `generations` (same order).
    pub(super) fn saw(&self, tags: &[String], generations: &[u64]) {
        let mut map = self.map.borrow_mut();
        for (tag, generation) in tags.iter().zip(generations) {
            if map.len() >= MAX_KNOWN_TAGS && !map.contains_key(tag) {
                map.clear();
            }
            map.insert(tag.clone(), *generation);
        }
    }

    /// The generations last seen of `tags`, 0 for a tag never seen.
    pub(super) fn of(&self, tags: &[String]) -> Vec<u64> {
        let map = self.map.borrow();
        tags.iter()
            .map(|t| map.get(t).copied().unwrap_or(0))
            .collect()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets_in_bulk() {
        let known = Known::default();
        let tags = ["a".to_owned(), "b".to_owned()];
        assert_eq!(known.of(&tags), [0, 0]);
        known.saw(&tags, &[3, 7]);
        known.saw(&tags[1..], &[8]);
        assert_eq!(known.of(&tags), [3, 8]);
        for i in 0..MAX_KNOWN_TAGS {
            known.saw(&[format!("t{i}")], &[1]);
        }
        assert!(known.map.borrow().len() <= MAX_KNOWN_TAGS);
    }
}

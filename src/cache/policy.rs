//! [`Policy`]: how long a value is fresh, how long it may be served stale, how long "not found" is
//! remembered, how big a value may be, and how long the cache may make a caller wait; and [`standing`],
//! what a stored entry is worth under a policy.

use super::envelope::Envelope;

/// The default time a value is fresh: one minute.
pub const DEFAULT_TTL_MS: u64 = 60_000;
/// The default largest value written to Redis: 1 MiB. Bigger values are returned but not cached.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;
/// The largest value any policy may write: comfortably below the service's 10 MB request limit, so the
/// write (value plus envelope plus JSON framing) always fits in one request.
pub const MAX_VALUE_BYTES_LIMIT: usize = 9_000_000;
/// The default deadline of the cache's own Redis round trips. A fresh hit from a nearby Redis takes a few
/// milliseconds; past 150 ms the origin is usually the faster answer, so the lookup goes there instead.
pub const DEFAULT_DEADLINE_MS: u32 = 150;
/// The default time waiters spend polling for a value another isolate is fetching under a lease.
pub const DEFAULT_LEASE_WAIT_MS: u64 = 300;

/// How a group of keys is cached. Build one per key group and reuse it:
///
/// ```
/// use redge::cache::Policy;
/// let policy = Policy::new("products")
///     .ttl_ms(30_000)          // fresh for 30 s
///     .grace_ms(300_000)       // then served stale for 5 min while refreshing (or while the origin fails)
///     .negative_ttl_ms(5_000); // "not found" remembered for 5 s
/// assert_eq!(policy.physical_ttl_ms(), 330_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The key group: a label for metrics (never the raw key, which would make metrics unbounded).
    pub group: String,
    /// How long a value is fresh after it was fetched. Default [`DEFAULT_TTL_MS`].
    pub ttl_ms: u64,
    /// How long after `ttl_ms` a value may still be served: at once while one background refresh runs
    /// (stale-while-revalidate), or when the origin fails (stale-if-error). Default 0.
    pub grace_ms: u64,
    /// How long "not found" is remembered; 0 = never cached. Default 0.
    pub negative_ttl_ms: u64,
    /// Values whose encoded form is bigger are returned but not written. Default
    /// [`DEFAULT_MAX_VALUE_BYTES`], capped at [`MAX_VALUE_BYTES_LIMIT`].
    pub max_value_bytes: usize,
    /// The deadline of the cache's own round trips; when it passes, the lookup goes to the origin.
    /// Default [`DEFAULT_DEADLINE_MS`].
    pub deadline_ms: u32,
    /// When set, a miss first takes a Redis lease (`SET NX PX`) for this long, so that only one isolate
    /// anywhere calls the origin; the others serve stale or poll briefly. Costs one more round trip per
    /// miss: use it for expensive origins. Default off.
    pub lease_ms: Option<u64>,
    /// How long a lookup that lost the lease polls for the winner's value before calling the origin
    /// itself. Default [`DEFAULT_LEASE_WAIT_MS`].
    pub lease_wait_ms: u64,
    /// When non-zero, fresh values are also kept in this isolate's memory for this long (capped by the
    /// value's own freshness): hot keys then cost no round trip at all. An invalidation made by another
    /// isolate reaches this one only after this delay, so keep it short. Default 0 (off).
    pub memory_ttl_ms: u64,
    /// When non-zero (and the cache has a [`ColoStore`](super::ColoStore)), fresh values are also kept
    /// in the location's HTTP cache, shared by every isolate there: a hit there costs no round trip. A
    /// change made in Redis (an invalidation, a delete, a set) reaches colo readers within this time;
    /// see [`colo`](super::colo) for the exact bound. Capped at
    /// [`MAX_COLO_TTL_MS`](super::MAX_COLO_TTL_MS). Default 0 (off).
    pub colo_ttl_ms: u64,
}

impl Policy {
    /// A policy for the key group `group` with the defaults.
    pub fn new(group: impl Into<String>) -> Self {
        Policy {
            group: group.into(),
            ttl_ms: DEFAULT_TTL_MS,
            grace_ms: 0,
            negative_ttl_ms: 0,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            deadline_ms: DEFAULT_DEADLINE_MS,
            lease_ms: None,
            lease_wait_ms: DEFAULT_LEASE_WAIT_MS,
            memory_ttl_ms: 0,
            colo_ttl_ms: 0,
        }
    }

    /// Sets [`Policy::ttl_ms`] (at least 1 ms).
    pub fn ttl_ms(mut self, ms: u64) -> Self {
        self.ttl_ms = ms.max(1);
        self
    }

    /// Sets [`Policy::grace_ms`].
    pub fn grace_ms(mut self, ms: u64) -> Self {
        self.grace_ms = ms;
        self
    }

    /// Sets [`Policy::negative_ttl_ms`].
    pub fn negative_ttl_ms(mut self, ms: u64) -> Self {
        self.negative_ttl_ms = ms;
        self
    }

    /// Sets [`Policy::max_value_bytes`] (capped at [`MAX_VALUE_BYTES_LIMIT`]).
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes.min(MAX_VALUE_BYTES_LIMIT);
        self
    }

    /// Sets [`Policy::deadline_ms`] (at least 1 ms).
    pub fn deadline_ms(mut self, ms: u32) -> Self {
        self.deadline_ms = ms.max(1);
        self
    }

    /// Turns the distributed lease on for `ms` (at least 1 ms); see [`Policy::lease_ms`].
    pub fn lease_ms(mut self, ms: u64) -> Self {
        self.lease_ms = Some(ms.max(1));
        self
    }

    /// Sets [`Policy::lease_wait_ms`].
    pub fn lease_wait_ms(mut self, ms: u64) -> Self {
        self.lease_wait_ms = ms;
        self
    }

    /// Sets [`Policy::memory_ttl_ms`].
    pub fn memory_ttl_ms(mut self, ms: u64) -> Self {
        self.memory_ttl_ms = ms;
        self
    }

    /// Sets [`Policy::colo_ttl_ms`] (capped at [`MAX_COLO_TTL_MS`](super::MAX_COLO_TTL_MS)).
    pub fn colo_ttl_ms(mut self, ms: u64) -> Self {
        self.colo_ttl_ms = ms.min(super::colo::MAX_COLO_TTL_MS);
        self
    }

    /// How long Redis keeps a value: fresh time plus grace. Past that, nothing could serve it.
    pub fn physical_ttl_ms(&self) -> u64 {
        self.ttl_ms.saturating_add(self.grace_ms)
    }

    /// The largest value size in force (the field, capped at [`MAX_VALUE_BYTES_LIMIT`]).
    pub fn value_cap(&self) -> usize {
        self.max_value_bytes.min(MAX_VALUE_BYTES_LIMIT)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new("default")
    }
}

/// Where an entry stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Servable as is.
    Fresh,
    /// Past its fresh time but inside the grace window: servable while refreshing, or if the origin fails.
    Stale,
    /// Past the grace window (Redis would normally have dropped it already): a miss.
    Expired,
}

/// Where an entry that is fresh until `fresh_until` stands at `now` under `policy`. The grace window is
/// measured from `fresh_until` with the CURRENT policy's grace, so shortening the grace takes effect at
/// once for entries already written.
pub fn freshness(fresh_until: u64, now: u64, policy: &Policy) -> Freshness {
    if now < fresh_until {
        Freshness::Fresh
    } else if now < fresh_until.saturating_add(policy.grace_ms) {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

/// What an entry read from Redis is worth at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A value, fresh.
    Fresh(Envelope),
    /// A value past its fresh time, inside the grace window.
    Stale(Envelope),
    /// A remembered "not found", still fresh. It gets no grace: past its time it is [`Standing::Unusable`].
    Absent,
    /// Nothing usable: no entry, past the grace window, or written before one of its tags was invalidated
    /// (or under another tag list).
    Unusable,
    /// Bytes that are not an envelope of this schema version.
    Corrupt,
}

/// Where the entry `stored` stands at `now` under `policy`, for a key whose tags are at `generations`
/// now. The one place that decides; lookups, `get` and `update` all read entries through it.
pub fn standing(stored: Option<&[u8]>, generations: &[u64], now: u64, policy: &Policy) -> Standing {
    let Some(bytes) = stored else {
        return Standing::Unusable;
    };
    let Ok(envelope) = Envelope::decode(bytes) else {
        return Standing::Corrupt;
    };
    if envelope.generations != generations {
        return Standing::Unusable;
    }
    match (
        freshness(envelope.fresh_until, now, policy),
        envelope.is_negative(),
    ) {
        (Freshness::Fresh, true) => Standing::Absent,
        (Freshness::Fresh, false) => Standing::Fresh(envelope),
        (Freshness::Stale, true) | (Freshness::Expired, _) => Standing::Unusable,
        (Freshness::Stale, false) => Standing::Stale(envelope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::envelope::Kind;

    #[test]
    fn standing_of_stored_entries() {
        let p = Policy::new("g").ttl_ms(1_000).grace_ms(500);
        let entry = |kind, generations: Vec<u64>| Envelope {
            created: 9_000,
            fresh_until: 10_000,
            kind,
            generations,
            payload: if kind == Kind::Negative { "" } else { "v" }.into(),
        };
        let text = entry(Kind::Text, vec![3]);
        let stored = text.encode();
        let at = |now, generations: &[u64]| standing(Some(stored.as_bytes()), generations, now, &p);
        assert_eq!(at(9_999, &[3]), Standing::Fresh(text.clone()));
        assert_eq!(at(10_000, &[3]), Standing::Stale(text.clone()));
        assert_eq!(at(10_500, &[3]), Standing::Unusable, "past the grace");
        assert_eq!(
            at(9_999, &[4]),
            Standing::Unusable,
            "a tag invalidated since"
        );
        assert_eq!(at(9_999, &[]), Standing::Unusable, "another tag list");
        let negative = entry(Kind::Negative, vec![]).encode();
        let neg = |now| standing(Some(negative.as_bytes()), &[], now, &p);
        assert_eq!(neg(9_999), Standing::Absent);
        assert_eq!(neg(10_000), Standing::Unusable, "no grace for not found");
        assert_eq!(standing(None, &[], 0, &p), Standing::Unusable);
        assert_eq!(standing(Some(b"junk"), &[], 0, &p), Standing::Corrupt);
    }

    #[test]
    fn defaults_are_documented_values() {
        let p = Policy::default();
        assert_eq!(p.ttl_ms, DEFAULT_TTL_MS);
        assert_eq!(p.max_value_bytes, 1_048_576);
        assert_eq!(p.deadline_ms, 150);
        assert_eq!((p.grace_ms, p.negative_ttl_ms, p.lease_ms), (0, 0, None));
        assert_eq!(p.physical_ttl_ms(), DEFAULT_TTL_MS);
    }

    #[test]
    fn builders_clamp() {
        let p = Policy::new("g")
            .ttl_ms(0)
            .deadline_ms(0)
            .max_value_bytes(usize::MAX)
            .lease_ms(0);
        assert_eq!((p.ttl_ms, p.deadline_ms, p.lease_ms), (1, 1, Some(1)));
        assert_eq!(p.value_cap(), MAX_VALUE_BYTES_LIMIT);
        let huge = Policy::new("g").ttl_ms(u64::MAX).grace_ms(u64::MAX);
        assert_eq!(huge.physical_ttl_ms(), u64::MAX);
    }

    #[test]
    fn freshness_windows_are_half_open() {
        let p = Policy::new("g").ttl_ms(1_000).grace_ms(500);
        let fresh_until = 10_000;
        assert_eq!(freshness(fresh_until, 9_999, &p), Freshness::Fresh);
        assert_eq!(freshness(fresh_until, 10_000, &p), Freshness::Stale);
        assert_eq!(freshness(fresh_until, 10_499, &p), Freshness::Stale);
        assert_eq!(freshness(fresh_until, 10_500, &p), Freshness::Expired);
        let no_grace = Policy::new("g");
        assert_eq!(
            freshness(fresh_until, 10_000, &no_grace),
            Freshness::Expired
        );
        assert_eq!(
            freshness(u64::MAX, u64::MAX - 1, &no_grace),
            Freshness::Fresh
        );
    }
}

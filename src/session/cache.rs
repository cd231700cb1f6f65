//! [`SessionCache`]: sessions this isolate read recently, served again without waiting on Redis.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::record::Session;
use super::token::Token;

/// The longest a session may be served from an isolate's memory: one minute.
pub const MAX_SESSION_CACHE_MS: u64 = 60_000;

/// Sessions this isolate read recently, served again without waiting on Redis.
///
/// A session read is on the critical path of almost every request of a signed-in user, and Redis may be
/// a long way from the isolate. With a cache of `max_age_ms`, a session this isolate loaded from Redis
/// less than `max_age_ms` ago is served from memory: the request costs no round trip for it.
///
/// # What it costs (the trade-off, plainly)
///
/// - **A sign-out or revocation through another isolate takes effect here within `max_age_ms`.** Until
///   then this isolate still accepts the token. Through this isolate (any [`SessionStore`] given the
///   same cache) it takes effect at once: revoking the session forgets it, "sign out everywhere" and
///   [`SessionStore::revoke_user`] forget every session of the cache that could be the user's.
/// - **Data written through another isolate is seen here within `max_age_ms`.** Writes through this
///   isolate (update, counters, rotation) forget the session, so its next read goes to Redis.
/// - **Writes are not cached**: they always go to Redis, and a cached read never extends the idle
///   expiry (only reads that reach Redis do, as without a cache). A cached session is never served past
///   its own idle or absolute expiry.
/// - The token's secret is checked as on a Redis read: the entry keeps the SHA-256 of the secret, and a
///   token with the right id and another secret is not served (it goes to Redis, which refuses it).
///
/// `max_age_ms` is capped at [`MAX_SESSION_CACHE_MS`]; 0 turns the cache off. The cache holds at most
/// `max_entries` sessions (the oldest read goes first).
///
/// [`SessionStore`]: crate::session::SessionStore
/// [`SessionStore::revoke_user`]: crate::session::SessionStore::revoke_user
#[derive(Debug)]
pub struct SessionCache {
    max_age_ms: u64,
    max_entries: usize,
    entries: RefCell<HashMap<String, Entry>>,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

#[derive(Debug)]
struct Entry {
    secret_hash: String,
    session: Session,
    cached_at: u64,
}

impl SessionCache {
    /// A cache serving sessions read less than `max_age_ms` ago (capped at
    /// [`MAX_SESSION_CACHE_MS`]; 0: off), holding at most `max_entries` (at least 1).
    pub fn new(max_age_ms: u64, max_entries: usize) -> Rc<Self> {
        Rc::new(SessionCache {
            max_age_ms: max_age_ms.min(MAX_SESSION_CACHE_MS),
            max_entries: max_entries.max(1),
            entries: RefCell::new(HashMap::new()),
            hits: Cell::new(0),
            misses: Cell::new(0),
        })
    }

    /// How long a session is served from memory, in ms (0: never).
    pub fn max_age_ms(&self) -> u64 {
        self.max_age_ms
    }

    /// Reads served from memory, and reads that had to go to Redis, since the cache was made.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session of `token` when it was read less than `max_age_ms` ago, the secret matches and it
    /// has not expired by `now`.
    pub(super) fn get(&self, token: &Token, now: u64) -> Option<Session> {
        if self.max_age_ms == 0 {
            return None;
        }
        let entries = self.entries.borrow();
        let found = entries.get(token.id().as_str()).filter(|e| {
            now.saturating_sub(e.cached_at) < self.max_age_ms
                && now < e.session.idle_expires_at
                && now < e.session.absolute_expires_at
                && token.secret_hash().matches_hex(e.secret_hash.as_bytes())
        });
        match found {
            Some(entry) => {
                self.hits.set(self.hits.get() + 1);
                Some(entry.session.clone())
            }
            None => {
                self.misses.set(self.misses.get() + 1);
                None
            }
        }
    }

    /// Keeps what a Redis read of `token` returned.
    pub(super) fn put(&self, token: &Token, session: &Session, now: u64) {
        if self.max_age_ms == 0 {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        let id = token.id().as_str();
        if !entries.contains_key(id) && entries.len() >= self.max_entries {
            // Make room: first anything past its age, then the oldest read.
            let max_age = self.max_age_ms;
            entries.retain(|_, e| now.saturating_sub(e.cached_at) < max_age);
            if entries.len() >= self.max_entries
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.cached_at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            id.to_owned(),
            Entry {
                secret_hash: token.secret_hash().to_hex(),
                session: session.clone(),
                cached_at: now,
            },
        );
    }

    /// Forgets the session with this public id.
    pub(super) fn forget(&self, id: &str) {
        self.entries.borrow_mut().remove(id);
    }

    /// Forgets every session of `user`.
    pub(super) fn forget_user(&self, user: &str) {
        self.entries
            .borrow_mut()
            .retain(|_, e| e.session.user != user);
    }

    /// The user of session `id`, when it is held.
    pub(super) fn user_of(&self, id: &str) -> Option<String> {
        self.entries
            .borrow()
            .get(id)
            .map(|e| e.session.user.clone())
    }

    /// Forgets every session of `user`, or, when the user is unknown, everything: serving a revoked
    /// session is worse than a round trip.
    pub(super) fn forget_user_or_all(&self, user: Option<&str>) {
        match user {
            Some(user) => self.forget_user(user),
            None => self.entries.borrow_mut().clear(),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::session::token::Counter;

    fn token(seed: u8) -> Token {
        Token::generate(&Counter::new(seed.wrapping_mul(101))).unwrap()
    }

    fn session(token: &Token, user: &str, idle_expires_at: u64) -> Session {
        Session {
            id: token.id().clone(),
            user: user.to_owned(),
            created: 0,
            last_seen: 0,
            idle_expires_at,
            absolute_expires_at: idle_expires_at + 1,
            version: 1,
            data: serde_json::json!({}),
            counters: BTreeMap::new(),
        }
    }

    #[test]
    fn served_within_its_age_and_its_expiry_only() {
        let cache = SessionCache::new(1_000, 10);
        let t = token(1);
        cache.put(&t, &session(&t, "ada", 5_000), 100);
        assert!(cache.get(&t, 1_099).is_some());
        assert!(cache.get(&t, 1_100).is_none(), "past its age");
        cache.put(&t, &session(&t, "ada", 5_000), 4_500);
        assert!(cache.get(&t, 4_999).is_some());
        assert!(
            cache.get(&t, 5_000).is_none(),
            "past the session's own expiry"
        );
        assert_eq!(cache.stats(), (2, 2));
    }

    #[test]
    fn another_secret_for_the_same_id_is_not_served() {
        let cache = SessionCache::new(1_000, 10);
        let t = token(1);
        cache.put(&t, &session(&t, "ada", 5_000), 0);
        let text = t.expose();
        let (id, secret) = text.split_once('.').unwrap();
        let other = token(2).expose();
        let other_secret = other.split_once('.').unwrap().1;
        assert_ne!(secret, other_secret);
        let forged = Token::parse(&format!("{id}.{other_secret}")).unwrap();
        assert!(cache.get(&forged, 1).is_none());
        assert!(cache.get(&t, 1).is_some());
    }

    #[test]
    fn off_at_zero_and_capped_at_a_minute() {
        let off = SessionCache::new(0, 10);
        let t = token(1);
        off.put(&t, &session(&t, "ada", u64::MAX - 1), 0);
        assert!(off.is_empty() && off.get(&t, 0).is_none());
        assert_eq!(
            SessionCache::new(10 * 60_000, 10).max_age_ms(),
            MAX_SESSION_CACHE_MS
        );
    }

    #[test]
    fn full_it_drops_the_oldest_read() {
        let cache = SessionCache::new(1_000, 2);
        let (a, b, c) = (token(1), token(2), token(3));
        cache.put(&a, &session(&a, "a", 9_000), 10);
        cache.put(&b, &session(&b, "b", 9_000), 20);
        cache.put(&c, &session(&c, "c", 9_000), 30);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&a, 40).is_none() && cache.get(&b, 40).is_some());
    }

    #[test]
    fn forgetting_a_user_or_everyone() {
        let cache = SessionCache::new(1_000, 10);
        let (a, b, c) = (token(1), token(2), token(3));
        cache.put(&a, &session(&a, "eve", 9_000), 0);
        cache.put(&b, &session(&b, "eve", 9_000), 0);
        cache.put(&c, &session(&c, "fay", 9_000), 0);
        assert_eq!(cache.user_of(a.id().as_str()).as_deref(), Some("eve"));
        cache.forget_user_or_all(Some("eve"));
        assert_eq!(cache.len(), 1);
        cache.forget_user_or_all(None);
        assert!(cache.is_empty());
    }
}

//! The optional per-isolate memory tier (L1): fresh envelopes kept for a very short time, so that a hot
//! key costs no round trip at all. Bounded by entry count and by bytes; when full, expired entries go
//! first, then the oldest.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::envelope::Envelope;

#[derive(Debug)]
struct Slot {
    expires: u64,
    envelope: Rc<Envelope>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    order: VecDeque<String>,
    bytes: usize,
}

/// The memory tier; see the [module docs](self).
#[derive(Debug)]
pub struct Memory {
    max_entries: usize,
    max_bytes: usize,
    inner: RefCell<Inner>,
}

impl Memory {
    /// An empty tier holding at most `max_entries` envelopes and `max_bytes` of payload.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Memory {
            max_entries,
            max_bytes,
            inner: RefCell::default(),
        }
    }

    /// The envelope under `key`, if it has not expired at `now`.
    pub fn get(&self, key: &str, now: u64) -> Option<Rc<Envelope>> {
        let mut inner = self.inner.borrow_mut();
        match inner.slots.get(key) {
            Some(slot) if now < slot.expires => Some(Rc::clone(&slot.envelope)),
            Some(_) => {
                Self::remove_from(&mut inner, key);
                None
            }
            None => None,
        }
    }

    /// Keeps `envelope` under `key` until `expires`; an envelope too big for the tier is not kept.
    pub fn put(&self, key: &str, envelope: Rc<Envelope>, expires: u64, now: u64) {
        let size = envelope.payload.len() + key.len();
        if self.max_entries == 0 || size > self.max_bytes / 4 {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        Self::remove_from(&mut inner, key);
        // Expired entries go first, then the oldest, until the new one fits.
        if inner.slots.len() >= self.max_entries || inner.bytes + size > self.max_bytes {
            let expired: Vec<String> = inner
                .slots
                .iter()
                .filter(|(_, s)| s.expires <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                Self::remove_from(&mut inner, &k);
            }
        }
        while inner.slots.len() >= self.max_entries || inner.bytes + size > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            Self::remove_from(&mut inner, &oldest);
        }
        inner.bytes += size;
        inner.order.push_back(key.to_owned());
        inner
            .slots
            .insert(key.to_owned(), Slot { expires, envelope });
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &str) {
        Self::remove_from(&mut self.inner.borrow_mut(), key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        *self.inner.borrow_mut() = Inner::default();
    }

    /// How many envelopes are kept.
    pub fn len(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    /// Whether nothing is kept.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove_from(inner: &mut Inner, key: &str) {
        if let Some(slot) = inner.slots.remove(key) {
            inner.bytes -= slot.envelope.payload.len() + key.len();
            inner.order.retain(|k| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::envelope::Kind;

    fn env(payload: &str) -> Rc<Envelope> {
        Rc::new(Envelope {
            created: 0,
            fresh_until: 0,
            kind: Kind::Text,
            generations: vec![],
            payload: payload.into(),
        })
    }

    #[test]
    fn entries_expire() {
        let m = Memory::new(10, 1_000);
        m.put("a", env("1"), 100, 0);
        assert_eq!(m.get("a", 99).map(|e| e.payload.clone()), Some("1".into()));
        assert!(m.get("a", 100).is_none());
        assert!(m.is_empty());
    }

    #[test]
    fn bounded_by_count_and_bytes_oldest_first() {
        let m = Memory::new(2, 1_000);
        m.put("a", env("1"), 100, 0);
        m.put("b", env("2"), 100, 0);
        m.put("c", env("3"), 100, 0);
        assert!(m.get("a", 0).is_none() && m.get("c", 0).is_some());
        assert_eq!(m.len(), 2);

        let m = Memory::new(100, 40);
        m.put("a", env(&"x".repeat(9)), 100, 0);
        m.put("b", env(&"x".repeat(9)), 100, 0);
        m.put("c", env(&"x".repeat(9)), 100, 0);
        m.put("d", env(&"x".repeat(9)), 100, 0);
        assert!(m.get("a", 0).is_some(), "40 bytes fit exactly");
        m.put("e", env(&"x".repeat(9)), 100, 0);
        assert!(m.get("a", 0).is_none() && m.get("e", 0).is_some());
        m.put("big", env(&"x".repeat(20)), 100, 0);
        assert!(m.get("big", 0).is_none(), "over a quarter of the tier");
        m.remove("d");
        m.clear();
        assert!(m.is_empty());
        Memory::new(0, 0).put("a", env("1"), 100, 0);
    }

    #[test]
    fn expired_entries_make_room_before_fresh_ones() {
        let m = Memory::new(2, 1_000);
        m.put("old", env("1"), 10, 0);
        m.put("keep", env("2"), 100, 0);
        m.put("new", env("3"), 100, 50);
        assert!(m.get("keep", 50).is_some() && m.get("new", 50).is_some());
    }
}

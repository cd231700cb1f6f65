//! The session record: a small versioned envelope stored as one Redis hash, and the expiry arithmetic.
//!
//! # Layout
//!
//! One hash per session, at `<prefix>:{<tag>}:s:<id>` (see [`keys`](super::keys)), with one-letter
//! fields so that a record stays small:
//!
//! | field | meaning |
//! |---|---|
//! | `v` | envelope version ([`ENVELOPE_VERSION`]); any other value is refused, never guessed at |
//! | `h` | SHA-256 of the token's secret, lowercase hex |
//! | `u` | user id |
//! | `c` | created (Unix ms) |
//! | `s` | last seen: the last time the session was refreshed or written (Unix ms) |
//! | `e` | idle expiry: `min(s + idle, a)` (Unix ms) |
//! | `a` | absolute expiry: `c + absolute` (Unix ms) |
//! | `n` | version counter of `d`, for compare-and-set |
//! | `d` | the application's data, JSON |
//! | `#<name>` | a counter, changed only by `HINCRBY`, so concurrent requests never overwrite each other |
//!
//! Redis owns expiry: the hash's TTL is set to the idle expiry on every write, so nothing sweeps.

use std::collections::BTreeMap;

use serde::Serialize;

use super::token::SessionId;
use crate::{Error, Result};

/// The envelope version this code writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// Default idle timeout: 30 minutes without a request ends a session.
pub const DEFAULT_IDLE_MS: u64 = 30 * 60 * 1000;
/// Default absolute lifetime: 12 hours after sign-in, whatever the activity.
pub const DEFAULT_ABSOLUTE_MS: u64 = 12 * 60 * 60 * 1000;

/// How long sessions live: an idle timeout with sliding refresh, and an absolute cap.
///
/// ```
/// use redge::session::Lifetimes;
/// let l = Lifetimes::default();
/// let (idle, absolute) = l.initial(0);
/// assert_eq!((idle, absolute), (30 * 60_000, 12 * 3_600_000));
/// // Half the idle window left or more: a read writes nothing.
/// assert!(!l.refresh_due(15 * 60_000, idle, absolute));
/// assert!(l.refresh_due(15 * 60_000 + 1, idle, absolute));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    idle_ms: u64,
    absolute_ms: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            idle_ms: DEFAULT_IDLE_MS,
            absolute_ms: DEFAULT_ABSOLUTE_MS,
        }
    }
}

impl Lifetimes {
    /// Custom lifetimes.
    ///
    /// # Errors
    /// [`Error::Config`] when the idle timeout is under one second or the absolute lifetime is shorter
    /// than the idle timeout.
    pub fn new(idle_ms: u64, absolute_ms: u64) -> Result<Self> {
        if idle_ms < 1_000 {
            return Err(Error::Config(format!(
                "the session idle timeout must be at least 1000 ms, got {idle_ms}"
            )));
        }
        if absolute_ms < idle_ms {
            return Err(Error::Config(format!(
                "the session absolute lifetime ({absolute_ms} ms) must be at least the idle timeout ({idle_ms} ms)"
            )));
        }
        Ok(Lifetimes {
            idle_ms,
            absolute_ms,
        })
    }

    /// The idle timeout in milliseconds.
    pub fn idle_ms(&self) -> u64 {
        self.idle_ms
    }

    /// The absolute lifetime in milliseconds.
    pub fn absolute_ms(&self) -> u64 {
        self.absolute_ms
    }

    /// `(idle expiry, absolute expiry)` of a session created at `now`.
    pub fn initial(&self, now: u64) -> (u64, u64) {
        let absolute = now.saturating_add(self.absolute_ms);
        (self.refreshed(now, absolute), absolute)
    }

    /// The idle expiry after a refresh at `now`: never beyond the absolute expiry.
    pub fn refreshed(&self, now: u64, absolute_expires_at: u64) -> u64 {
        now.saturating_add(self.idle_ms).min(absolute_expires_at)
    }

    /// Whether a read at `now` should extend the session: only when less than half the idle window is
    /// left (so most reads write nothing), and only if the absolute cap leaves room to extend.
    pub fn refresh_due(&self, now: u64, idle_expires_at: u64, absolute_expires_at: u64) -> bool {
        let left = idle_expires_at.saturating_sub(now);
        left.saturating_mul(2) < self.idle_ms && idle_expires_at < absolute_expires_at
    }

    /// Whether a session with these expiries is over at `now`.
    pub fn expired(now: u64, idle_expires_at: u64, absolute_expires_at: u64) -> bool {
        now >= idle_expires_at || now >= absolute_expires_at
    }
}

/// A live session as read from Redis. Serializes to the JSON the Worker's routes return.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    /// The public session id (never the secret).
    pub id: SessionId,
    /// Who signed in.
    pub user: String,
    /// When the session was created (Unix ms).
    pub created: u64,
    /// When the session was last refreshed or written (Unix ms); reads between refreshes do not move it.
    pub last_seen: u64,
    /// When the session ends if no refresh happens (Unix ms).
    pub idle_expires_at: u64,
    /// When the session ends whatever happens (Unix ms).
    pub absolute_expires_at: u64,
    /// The data's version counter: +1 on every data update; pass it back for compare-and-set.
    pub version: u64,
    /// The application's data.
    pub data: serde_json::Value,
    /// Counters changed with `HINCRBY`, one field each.
    pub counters: BTreeMap<String, i64>,
}

impl Session {
    /// The data as a typed value.
    ///
    /// # Errors
    /// [`Error::Type`] when the stored JSON does not fit `T`.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.data).map_err(|e| Error::Type {
            command: "session data".into(),
            expected: std::any::type_name::<T>(),
            actual: e.to_string(),
        })
    }
}

/// The part of a session shown in "my sessions".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    /// The public session id.
    pub id: SessionId,
    /// When it was created (Unix ms).
    pub created: u64,
    /// When it was last refreshed or written (Unix ms).
    pub last_seen: u64,
    /// When it ends without a refresh (Unix ms).
    pub expires_at: u64,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// A record's fields as read back (`HGETALL`): the session, and the stored secret hash for a constant-time
/// check.
pub(crate) struct Decoded {
    pub session: Session,
    pub hash: Vec<u8>,
}

/// Builds a [`Session`] from a hash's fields.
///
/// # Errors
/// [`Error::Protocol`] for an unknown envelope version or a missing or malformed field.
pub(crate) fn decode(id: &SessionId, fields: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Decoded> {
    let mut map: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut counters = BTreeMap::new();
    for (name, value) in fields {
        if let Some(counter) = name.strip_prefix(b"#") {
            let counter = String::from_utf8_lossy(counter).into_owned();
            counters.insert(counter, int(&value, "counter")?);
        } else {
            map.insert(name, value);
        }
    }
    let field = |name: &'static str| -> Result<&Vec<u8>> {
        map.get(name.as_bytes())
            .ok_or_else(|| Error::Protocol(format!("session record without field {name:?}")))
    };
    let version = int(field("v")?, "envelope version")?;
    check_version(version)?;
    let data = serde_json::from_slice(field("d")?)
        .map_err(|e| Error::Protocol(format!("session data is not JSON: {e}")))?;
    let user = String::from_utf8(field("u")?.clone())
        .map_err(|_| Error::Protocol("session user is not UTF-8".into()))?;
    let uint = |name: &'static str| -> Result<u64> {
        u64::try_from(int(field(name)?, name)?)
            .map_err(|_| Error::Protocol(format!("session field {name:?} is negative")))
    };
    Ok(Decoded {
        session: Session {
            id: id.clone(),
            user,
            created: uint("c")?,
            last_seen: uint("s")?,
            idle_expires_at: uint("e")?,
            absolute_expires_at: uint("a")?,
            version: uint("n")?,
            data,
            counters,
        },
        hash: field("h")?.clone(),
    })
}

/// Refuses any envelope version but [`ENVELOPE_VERSION`].
///
/// # Errors
/// [`Error::Protocol`] naming the version found.
pub(crate) fn check_version(version: i64) -> Result<()> {
    if version == i64::from(ENVELOPE_VERSION) {
        Ok(())
    } else {
        Err(Error::Protocol(format!(
            "session record has envelope version {version}; this code reads version {ENVELOPE_VERSION} only"
        )))
    }
}

fn int(bytes: &[u8], what: &str) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Protocol(format!("session {what} is not an integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn id() -> SessionId {
        SessionId::parse(&"A".repeat(22)).unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn record(version: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        fields(&[
            ("v", version),
            ("h", "ab"),
            ("u", "alice"),
            ("c", "1000"),
            ("s", "2000"),
            ("e", "3000"),
            ("a", "9000"),
            ("n", "4"),
            ("d", r#"{"theme":"dark"}"#),
            ("#views", "12"),
        ])
    }

    #[test]
    fn lifetimes_validate() {
        assert!(Lifetimes::new(999, 10_000).is_err());
        assert!(Lifetimes::new(10_000, 9_999).is_err());
        let l = Lifetimes::new(10_000, 10_000).unwrap();
        assert_eq!((l.idle_ms(), l.absolute_ms()), (10_000, 10_000));
    }

    #[test]
    fn idle_expiry_never_passes_the_absolute_cap() {
        let l = Lifetimes::new(30 * MIN, 60 * MIN).unwrap();
        assert_eq!(l.initial(0), (30 * MIN, 60 * MIN));
        assert_eq!(l.refreshed(20 * MIN, 60 * MIN), 50 * MIN);
        assert_eq!(l.refreshed(45 * MIN, 60 * MIN), 60 * MIN);
        assert_eq!(l.initial(u64::MAX - 5), (u64::MAX, u64::MAX));
    }

    #[test]
    fn refresh_only_when_less_than_half_the_idle_window_is_left() {
        let l = Lifetimes::default();
        let (idle, absolute) = l.initial(0);
        for now in [0, MIN, 10 * MIN, 15 * MIN] {
            assert!(!l.refresh_due(now, idle, absolute), "{now}");
        }
        for now in [15 * MIN + 1, 20 * MIN, 30 * MIN - 1] {
            assert!(l.refresh_due(now, idle, absolute), "{now}");
        }
        // Capped by the absolute expiry: extending is pointless.
        assert!(!l.refresh_due(12 * 60 * MIN - MIN, absolute, absolute));
    }

    #[test]
    fn expiry_by_idle_time_and_by_the_cap() {
        assert!(!Lifetimes::expired(99, 100, 200));
        assert!(Lifetimes::expired(100, 100, 200));
        assert!(Lifetimes::expired(150, 300, 150));
    }

    #[test]
    fn a_record_decodes() {
        let d = decode(&id(), record("1")).unwrap();
        let s = d.session;
        assert_eq!(s.user, "alice");
        assert_eq!(
            (
                s.created,
                s.last_seen,
                s.idle_expires_at,
                s.absolute_expires_at
            ),
            (1000, 2000, 3000, 9000)
        );
        assert_eq!(s.version, 4);
        assert_eq!(s.data["theme"], "dark");
        #[derive(serde::Deserialize)]
        struct Prefs {
            theme: String,
        }
        assert_eq!(s.data_as::<Prefs>().unwrap().theme, "dark");
        assert!(s.data_as::<Vec<u8>>().is_err());
        assert_eq!(s.counters.get("views"), Some(&12));
        assert_eq!(d.hash, b"ab");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["id"], "A".repeat(22));
        assert_eq!(json["idle_expires_at"], 3000);
    }

    #[test]
    fn unknown_versions_and_broken_fields_are_refused_cleanly() {
        let err = decode(&id(), record("2")).err().unwrap();
        assert!(err.to_string().contains("envelope version 2"), "{err}");
        assert!(decode(&id(), record("x")).is_err());
        let mut missing = record("1");
        missing.retain(|(k, _)| k != b"a");
        assert!(
            decode(&id(), missing)
                .err()
                .unwrap()
                .to_string()
                .contains("\"a\"")
        );
        let mut bad_json = record("1");
        bad_json.retain(|(k, _)| k != b"d");
        bad_json.push((b"d".to_vec(), b"{".to_vec()));
        assert!(decode(&id(), bad_json).is_err());
        let mut negative = record("1");
        negative.retain(|(k, _)| k != b"c");
        negative.push((b"c".to_vec(), b"-5".to_vec()));
        assert!(decode(&id(), negative).is_err());
    }
}

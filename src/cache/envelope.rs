//! The versioned envelope every cached value is stored in, and [`CacheValue`], how a Rust value becomes
//! its payload.
//!
//! # Format
//!
//! One header line, then the payload:
//!
//! ```text
//! rc1 <created ms> <fresh-until ms> <kind> <tag generations>\n<payload>
//! ```
//!
//! `kind` is `j` (JSON through serde), `t` (UTF-8 text), `b` (raw bytes, base64) or `n` (the origin said
//! "not found": a negative entry, no payload). Tag generations are comma-separated integers, one per tag
//! of the key in the order given, or `-` without tags. A text header keeps decoding cheap (no JSON parse
//! of the whole entry) and the payload untouched: a JSON value is parsed once, by the caller's type.
//!
//! The protocol carries text only (JSON requests), which is why bytes are base64'd.
//!
//! Anything that does not decode (another schema version, a truncated header, a payload of the wrong
//! kind) is reported as [`Corrupt`]: the lookup treats it as a miss and the write that follows repairs it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::client::Json;

/// The schema version written in every header. Bump it when the format changes: old entries then read
/// as misses and are rewritten, with no migration step.
pub const SCHEMA: &str = "rc1";

/// What the header holds in place of generations for a key without tags.
pub const NO_GENERATIONS: &str = "-";

/// What the payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// JSON text produced by serde.
    Json,
    /// UTF-8 text, stored as is.
    Text,
    /// Raw bytes, base64.
    Bytes,
    /// No value: the origin said "not found".
    Negative,
}

impl Kind {
    fn code(self) -> char {
        match self {
            Kind::Json => 'j',
            Kind::Text => 't',
            Kind::Bytes => 'b',
            Kind::Negative => 'n',
        }
    }

    fn from_code(code: &str) -> Option<Kind> {
        Some(match code {
            "j" => Kind::Json,
            "t" => Kind::Text,
            "b" => Kind::Bytes,
            "n" => Kind::Negative,
            _ => return None,
        })
    }
}

/// One cached entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// When the value was fetched from the origin (ms).
    pub created: u64,
    /// Until when it is fresh (ms); the grace window follows.
    pub fresh_until: u64,
    /// What the payload holds.
    pub kind: Kind,
    /// The generation of each of the key's tags when the value was fetched; a tag invalidated since has
    /// a higher generation, which makes the entry a miss.
    pub generations: Vec<u64>,
    /// The encoded value (empty for a negative entry).
    pub payload: String,
}

/// Why stored bytes are not a usable envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupt {
    /// Written by another schema version.
    Version,
    /// Not an envelope at all, or a damaged one.
    Malformed,
}

impl Envelope {
    /// The stored text.
    pub fn encode(&self) -> String {
        let (head, tail) = self.encode_around_generations();
        let generations = if self.generations.is_empty() {
            NO_GENERATIONS.to_owned()
        } else {
            self.generations
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut out = String::with_capacity(head.len() + generations.len() + tail.len());
        out.push_str(&head);
        out.push_str(&generations);
        out.push_str(&tail);
        out
    }

    /// The stored text without its generations: what comes before them and what comes after (they go
    /// in between, comma-separated, or `NO_GENERATIONS`), so that the header's layout is defined here
    /// only.
    pub fn encode_around_generations(&self) -> (String, String) {
        let head = format!(
            "{SCHEMA} {} {} {} ",
            self.created,
            self.fresh_until,
            self.kind.code()
        );
        let mut tail = String::with_capacity(1 + self.payload.len());
        tail.push('\n');
        tail.push_str(&self.payload);
        (head, tail)
    }

    /// Reads stored bytes back.
    ///
    /// # Errors
    /// An error when the bytes are not an envelope of this schema version.
    pub fn decode(stored: &[u8]) -> Result<Envelope, Corrupt> {
        let text = std::str::from_utf8(stored).map_err(|_| Corrupt::Malformed)?;
        let (header, payload) = text.split_once('\n').ok_or(Corrupt::Malformed)?;
        let mut fields = header.split(' ');
        let version = fields.next().ok_or(Corrupt::Malformed)?;
        if version != SCHEMA {
            return Err(if version.starts_with("rc") {
                Corrupt::Version
            } else {
                Corrupt::Malformed
            });
        }
        let mut number = || -> Result<u64, Corrupt> {
            fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or(Corrupt::Malformed)
        };
        let created = number()?;
        let fresh_until = number()?;
        let kind = fields
            .next()
            .and_then(Kind::from_code)
            .ok_or(Corrupt::Malformed)?;
        let generations = match fields.next().ok_or(Corrupt::Malformed)? {
            NO_GENERATIONS => Vec::new(),
            list => list
                .split(',')
                .map(|g| g.parse().map_err(|_| Corrupt::Malformed))
                .collect::<Result<_, _>>()?,
        };
        if fields.next().is_some() || (kind == Kind::Negative && !payload.is_empty()) {
            return Err(Corrupt::Malformed);
        }
        Ok(Envelope {
            created,
            fresh_until,
            kind,
            generations,
            payload: payload.to_owned(),
        })
    }

    /// Whether the entry says "not found".
    pub fn is_negative(&self) -> bool {
        self.kind == Kind::Negative
    }

    /// The value, when the entry holds one of `V`'s kind that decodes; `None` for a negative entry or a
    /// payload that does not fit (which the lookup treats as corrupt).
    pub fn value<V: CacheValue>(&self) -> Option<V> {
        if self.kind != V::KIND {
            return None;
        }
        V::from_payload(&self.payload)
    }
}

/// A value the cache can store: how it becomes a payload and back.
///
/// Implemented for [`String`] (text), `Vec<u8>` (bytes) and [`Json<T>`] for any serde type.
pub trait CacheValue: Sized {
    /// The payload kind written in the envelope.
    const KIND: Kind;

    /// Encodes the value.
    ///
    /// # Errors
    /// A description when the value cannot be encoded (a serde error); the lookup then returns the
    /// value without caching it.
    fn to_payload(&self) -> Result<String, String>;

    /// Decodes a payload; `None` when it does not decode (treated as a corrupt entry).
    fn from_payload(payload: &str) -> Option<Self>;
}

impl CacheValue for String {
    const KIND: Kind = Kind::Text;

    fn to_payload(&self) -> Result<String, String> {
        Ok(self.clone())
    }

    fn from_payload(payload: &str) -> Option<Self> {
        Some(payload.to_owned())
    }
}

impl CacheValue for Vec<u8> {
    const KIND: Kind = Kind::Bytes;

    fn to_payload(&self) -> Result<String, String> {
        Ok(B64.encode(self))
    }

    fn from_payload(payload: &str) -> Option<Self> {
        B64.decode(payload).ok()
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> CacheValue for Json<T> {
    const KIND: Kind = Kind::Json;

    fn to_payload(&self) -> Result<String, String> {
        serde_json::to_string(&self.0).map_err(|e| e.to_string())
    }

    fn from_payload(payload: &str) -> Option<Self> {
        serde_json::from_str(payload).ok().map(Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, payload: &str, generations: Vec<u64>) -> Envelope {
        Envelope {
            created: 1_700_000_000_000,
            fresh_until: 1_700_000_060_000,
            kind,
            generations,
            payload: payload.into(),
        }
    }

    #[test]
    fn round_trips_every_kind() {
        for e in [
            entry(Kind::Json, r#"{"a":[1,2,"x\ny"]}"#, vec![]),
            entry(Kind::Text, "line one\nline two 😀", vec![0, 7, 42]),
            entry(Kind::Bytes, "AAEC/w==", vec![3]),
            entry(Kind::Negative, "", vec![]),
            entry(Kind::Text, "", vec![]),
        ] {
            let stored = e.encode();
            assert_eq!(Envelope::decode(stored.as_bytes()), Ok(e));
        }
        assert_eq!(
            entry(Kind::Text, "v", vec![1, 2]).encode(),
            "rc1 1700000000000 1700000060000 t 1,2\nv"
        );
    }

    #[test]
    fn values_encode_and_decode_by_kind() {
        let bytes = vec![0u8, 1, 2, 255];
        let e = entry(Kind::Bytes, &bytes.to_payload().unwrap(), vec![]);
        assert_eq!(e.value::<Vec<u8>>(), Some(bytes));
        assert_eq!(e.value::<String>(), None, "a kind mismatch is no value");

        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct User {
            id: u32,
            name: String,
        }
        let user = Json(User {
            id: 7,
            name: "Zoë".into(),
        });
        let e = entry(Kind::Json, &user.to_payload().unwrap(), vec![]);
        assert_eq!(e.value::<Json<User>>().map(|j| j.0), Some(user.0));
        let bad = entry(Kind::Json, "{not json", vec![]);
        assert!(bad.value::<Json<User>>().is_none());
        assert!(entry(Kind::Negative, "", vec![]).is_negative());
    }

    #[test]
    fn damaged_or_foreign_entries_are_corrupt_never_a_panic() {
        use Corrupt::*;
        let cases: [(&[u8], Corrupt); 12] = [
            (b"", Malformed),
            (b"plain old value", Malformed),
            (b"rc0 1 2 t -\nv", Version),
            (b"rc2 1 2 t -\nv", Version),
            (b"rc1 1 2 t\nv", Malformed),
            (b"rc1 1 2 x -\nv", Malformed),
            (b"rc1 a 2 t -\nv", Malformed),
            (b"rc1 1 2 t 1,,2\nv", Malformed),
            (b"rc1 1 2 t - extra\nv", Malformed),
            (b"rc1 1 2 n -\nvalue", Malformed),
            (b"rc1 -1 2 t -\nv", Malformed),
            (&[0xff, 0xfe, b'\n'], Malformed),
        ];
        for (stored, why) in cases {
            assert_eq!(
                Envelope::decode(stored),
                Err(why),
                "{:?}",
                String::from_utf8_lossy(stored)
            );
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_envelope_round_trips(created: u64, fresh: u64, gens in proptest::collection::vec(any::<u64>(), 0..5), payload in ".*") {
                let e = Envelope { created, fresh_until: fresh, kind: Kind::Text, generations: gens, payload };
                prop_assert_eq!(Envelope::decode(e.encode().as_bytes()), Ok(e));
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                let _ = Envelope::decode(&bytes);
            }
        }
    }
}

//! Key layout. Everything a cache writes lives under its namespace:
//!
//! | key | holds | TTL |
//! |---|---|---|
//! | `<ns>:v:{<h>}:<key>` | the envelope | ttl + grace (negative ttl for "not found") |
//! | `<ns>:t:<tag>` | the tag's generation (an integer, `INCR`ed by each invalidation) | [`CacheOptions::tag_ttl_ms`](super::CacheOptions::tag_ttl_ms) |
//! | `<ns>:l:{<h>}:<key>` | a lease token while one isolate fetches the key | the policy's lease time |
//!
//! The segment after the namespace tells the three apart, so no user key can collide with a tag or a lease.
//!
//! On a Redis Cluster: `<h>` ([`HASH_LEN`] characters: base64url of the first 3 bytes of the key's
//! SHA-1; 2^24 values, which CRC16 spreads evenly over the 16384 slots, where 4 hex digits would leave a
//! quarter of them empty) is the hash tag of the entry
//! and of its lease, so the two share a slot and entries spread over the cluster by key, whatever
//! braces the key itself holds. A tag's counter lives in its own slot (its key is hashed whole), so
//! that a popular tag does not pull the entries it marks onto one node. No script touches an entry and
//! a counter together: a read gets the entry and the counters with one `MGET` per slot in one batch,
//! and a write embeds generations it observed (see [`Cache::set`](super::Cache::set) and the module
//! docs), which is safe because an entry is valid only while its embedded generations are current.

use crate::slot::plain_prefix;

/// The longest key or tag accepted: Redis allows 512 MB, but a key this long is a bug in the caller.
pub const MAX_KEY_BYTES: usize = 1_024;

/// Characters of an entry's hash tag.
pub const HASH_LEN: usize = 4;

/// The hash tag of the entry `key`: base64url of the first 3 bytes of its SHA-1 ([`HASH_LEN`]
/// characters, never a brace).
pub fn hash(key: &str) -> String {
    use base64::Engine;
    let digest = sha1_smol::Sha1::from(key.as_bytes()).digest().bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..3])
}

/// The Redis key of an entry.
pub fn entry(namespace: &str, key: &str) -> String {
    format!("{}:v:{{{}}}:{key}", plain_prefix(namespace), hash(key))
}

/// The Redis key of a tag's generation counter.
pub fn tag(namespace: &str, tag: &str) -> String {
    format!("{}:t:{tag}", plain_prefix(namespace))
}

/// The Redis key of a lease: in its entry's slot.
pub fn lease(namespace: &str, key: &str) -> String {
    format!("{}:l:{{{}}}:{key}", plain_prefix(namespace), hash(key))
}

/// The `SCAN MATCH` pattern for every entry whose key starts with `prefix`, glob characters escaped so
/// that a prefix such as `user[1]*` matches itself only; the hash tag is matched by one `?` per digit.
pub fn entry_pattern(namespace: &str, prefix: &str) -> String {
    let mut pattern = String::with_capacity(namespace.len() + prefix.len() + 16);
    let glob = |pattern: &mut String, text: &str| {
        for c in text.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
    };
    glob(&mut pattern, &plain_prefix(namespace));
    pattern.push_str(":v:{");
    pattern.push_str(&"?".repeat(HASH_LEN));
    pattern.push_str("}:");
    glob(&mut pattern, prefix);
    pattern.push('*');
    pattern
}

/// Checks a key or tag supplied by the caller.
///
/// # Errors
/// A message saying what is wrong (empty, or longer than [`MAX_KEY_BYTES`]).
pub fn validate(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the cache {what} is empty"));
    }
    if name.len() > MAX_KEY_BYTES {
        return Err(format!(
            "the cache {what} is {} bytes long; the limit is {MAX_KEY_BYTES}",
            name.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_patterns() {
        let h = hash("user:1");
        assert_eq!(h.len(), HASH_LEN);
        assert_eq!(entry("cache", "user:1"), format!("cache:v:{{{h}}}:user:1"));
        assert_eq!(tag("cache", "demo"), "cache:t:demo");
        assert_eq!(lease("cache", "user:1"), format!("cache:l:{{{h}}}:user:1"));
        assert_eq!(entry_pattern("c", "u:"), "c:v:{????}:u:*");
        assert_eq!(
            entry_pattern("c*", "a[1]?\\"),
            "c\\*:v:{????}:a\\[1\\]\\?\\\\*"
        );
        assert_eq!(entry_pattern("c", ""), "c:v:{????}:*");
        assert_eq!(
            entry("c{x}", "k"),
            format!("c%7Bx%7D:v:{{{}}}:k", hash("k"))
        );
    }

    #[test]
    fn an_entry_and_its_lease_share_a_slot_and_entries_spread() {
        use crate::slot::{same_slot, slot};
        for key in ["user:1", "{a}b", "}{", "", &"k".repeat(1024)] {
            assert!(
                same_slot(&[entry("ns:{x}", key), lease("ns:{x}", key)]),
                "{key}"
            );
        }
        let slots: std::collections::HashSet<u16> = (0..1000)
            .map(|i| slot(entry("cache", &format!("item:{i}")).as_bytes()))
            .collect();
        assert!(slots.len() > 950, "1000 keys on {} slots", slots.len());
        let tags: std::collections::HashSet<u16> = (0..1000)
            .map(|i| slot(tag("cache", &format!("group-{i}")).as_bytes()))
            .collect();
        assert!(tags.len() > 900, "1000 tags on {} slots", tags.len());
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        assert!(validate("key", "k").is_ok());
        assert!(validate("key", "").unwrap_err().contains("empty"));
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        assert!(validate("tag", &long).unwrap_err().contains("1024"));
    }
}

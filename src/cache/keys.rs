//! Key layout. Everything a cache writes lives under its namespace:
//!
//! | key | holds | TTL |
//! |---|---|---|
//! | `<ns>:v:<key>` | the envelope | ttl + grace (negative ttl for "not found") |
//! | `<ns>:t:<tag>` | the tag's generation (an integer, `INCR`ed by each invalidation) | [`CacheOptions::tag_ttl_ms`](super::CacheOptions::tag_ttl_ms) |
//! | `<ns>:l:<key>` | a lease token while one isolate fetches the key | the policy's lease time |
//!
//! The segment after the namespace tells the three apart, so no user key can collide with a tag or a lease.

/// The longest key or tag accepted: Redis allows 512 MB, but a key this long is a bug in the caller.
pub const MAX_KEY_BYTES: usize = 1_024;

/// The Redis key of an entry.
pub fn entry(namespace: &str, key: &str) -> String {
    format!("{namespace}:v:{key}")
}

/// The Redis key of a tag's generation counter.
pub fn tag(namespace: &str, tag: &str) -> String {
    format!("{namespace}:t:{tag}")
}

/// The Redis key of a lease.
pub fn lease(namespace: &str, key: &str) -> String {
    format!("{namespace}:l:{key}")
}

/// The `SCAN MATCH` pattern for every entry whose key starts with `prefix`, glob characters escaped so
/// that a prefix such as `user[1]*` matches itself only.
pub fn entry_pattern(namespace: &str, prefix: &str) -> String {
    let mut pattern = String::with_capacity(namespace.len() + prefix.len() + 8);
    for c in entry(namespace, "").chars().chain(prefix.chars()) {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
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
        assert_eq!(entry("cache", "user:1"), "cache:v:user:1");
        assert_eq!(tag("cache", "demo"), "cache:t:demo");
        assert_eq!(lease("cache", "user:1"), "cache:l:user:1");
        assert_eq!(entry_pattern("c", "u:"), "c:v:u:*");
        assert_eq!(entry_pattern("c*", "a[1]?\\"), "c\\*:v:a\\[1\\]\\?\\\\*");
        assert_eq!(entry_pattern("c", ""), "c:v:*");
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        assert!(validate("key", "k").is_ok());
        assert!(validate("key", "").unwrap_err().contains("empty"));
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        assert!(validate("tag", &long).unwrap_err().contains("1024"));
    }
}

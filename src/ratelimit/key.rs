//! Redis keys: `<prefix>:<policy>:<identifier>`, with the identifier escaped or hashed so that no
//! identifier can reach another policy's or another identifier's key, or carry glob characters (`*`, `?`,
//! `[`) into a `SCAN MATCH` an operator runs.

/// Identifiers longer than this (after escaping) are replaced by their SHA1, so keys stay short.
pub const MAX_ESCAPED_LEN: usize = 128;

/// The key of `identifier` under `policy`.
///
/// Bytes outside `A-Z a-z 0-9 . _ - @` are percent-encoded (`%3A` for `:`), so the identifier part never
/// contains `:`, `*`, `?`, `[`, `]`, `{`, `}`, `~` or whitespace. An escaped identifier over
/// [`MAX_ESCAPED_LEN`] bytes becomes `~` followed by the SHA1 of the raw identifier: `~` is always
/// escaped in the first form, so the two forms cannot collide.
///
/// ```
/// use redge::ratelimit::key;
/// assert_eq!(key("rl", "api", "user:42*"), "rl:api:user%3A42%2A");
/// ```
pub fn key(prefix: &str, policy: &str, identifier: &str) -> String {
    format!("{prefix}:{policy}:{}", escape(identifier))
}

/// The identifier part of a key; see [`key`].
pub fn escape(identifier: &str) -> String {
    let mut out = String::with_capacity(identifier.len());
    for byte in identifier.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
        if out.len() > MAX_ESCAPED_LEN {
            return format!("~{}", sha1_smol::Sha1::from(identifier.as_bytes()).digest());
        }
    }
    out
}

/// Whether `name` is a usable policy name: 1 to 64 of `a-z 0-9 _ -` (it appears in keys and in quoted
/// header strings, so it must need no escaping in either).
pub fn is_policy_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators_and_globs() {
        assert_eq!(escape("1.2.3.4"), "1.2.3.4");
        assert_eq!(escape("a:b"), "a%3Ab");
        assert_eq!(escape("*?[]{} "), "%2A%3F%5B%5D%7B%7D%20");
        assert_eq!(escape("é"), "%C3%A9");
        assert_eq!(escape(""), "");
        // "a:b" under policy "p" must not equal "b" under policy "p:a".
        assert_ne!(key("x", "p", "a:b"), key("x", "p:a", "b"));
    }

    #[test]
    fn long_identifiers_are_hashed_without_colliding_with_short_ones() {
        let long = "x".repeat(500);
        let escaped = escape(&long);
        assert!(escaped.starts_with('~') && escaped.len() == 41);
        assert_ne!(escaped, escape("~"), "a literal ~ is escaped");
        assert_eq!(escape("~"), "%7E");
        assert_eq!(escape(&"y".repeat(MAX_ESCAPED_LEN)).len(), MAX_ESCAPED_LEN);
        assert_ne!(escape(&"%".repeat(100)), escape(&"%".repeat(101)));
    }

    #[test]
    fn policy_names() {
        assert!(is_policy_name("burst") && is_policy_name("per-ip_2"));
        assert!(!is_policy_name("") && !is_policy_name("A") && !is_policy_name("a\"b"));
        assert!(!is_policy_name(&"a".repeat(65)));
    }
}

//! Redis keys: `<prefix>:<policy>:{<identifier>}`, with the identifier escaped or hashed so that no
//! identifier can reach another policy's or another identifier's key, or carry glob characters (`*`, `?`,
//! `[`) into a `SCAN MATCH` an operator runs.
//!
//! The escaped identifier is the key's hash tag: every policy's key of one identifier falls in one Redis
//! Cluster slot (a check of several policies on one identifier stays one atomic script), while different
//! identifiers spread over the cluster. The escaping never leaves a `{` or `}` in the tag, braces in the
//! prefix are encoded ([`plain_prefix`](crate::slot::plain_prefix)), and the empty identifier is tagged
//! `{~}` (`{}` is no hash tag to Redis).

/// Identifiers longer than this (after escaping) are replaced by their SHA1, so keys stay short.
pub const MAX_ESCAPED_LEN: usize = 128;

/// The key of `identifier` under `policy`: `<prefix>:<policy>:{<escaped identifier>}`.
///
/// Bytes outside `A-Z a-z 0-9 . _ - @` are percent-encoded (`%3A` for `:`), so the identifier part never
/// contains `:`, `*`, `?`, `[`, `]`, `{`, `}`, `~` or whitespace. An escaped identifier over
/// [`MAX_ESCAPED_LEN`] bytes becomes `~` followed by the SHA1 of the raw identifier: `~` is always
/// escaped in the first form, so the two forms cannot collide; nor can the empty identifier's `~`.
///
/// ```
/// use redge::ratelimit::key;
/// assert_eq!(key("rl", "api", "user:42*"), "rl:api:{user%3A42%2A}");
/// assert_eq!(key("rl", "api", ""), "rl:api:{~}");
/// ```
pub fn key(prefix: &str, policy: &str, identifier: &str) -> String {
    let escaped = escape(identifier);
    let tag = if escaped.is_empty() { "~" } else { &escaped };
    format!("{}:{policy}:{{{tag}}}", crate::slot::plain_prefix(prefix))
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
    fn one_identifier_is_one_slot_and_identifiers_spread() {
        use crate::slot::{same_slot, slot};
        for id in ["", "~", "1.2.3.4", "{x}", "}{", "user:42", &"z".repeat(300)] {
            let keys = ["a", "burst", "per-user_2"].map(|p| key("rl:{old}", p, id));
            assert!(same_slot(&keys), "{keys:?}");
            assert!(keys.iter().all(|k| k.matches('{').count() == 1));
        }
        let slots: std::collections::HashSet<u16> = (0..1000)
            .map(|i| slot(key("rl", "api", &format!("10.0.{}.{}", i / 256, i % 256)).as_bytes()))
            .collect();
        assert!(
            slots.len() > 900,
            "1000 identifiers on {} slots",
            slots.len()
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn every_identifier_tags_its_keys(id in ".{0,40}", prefix in "[a-z:{}]{1,10}") {
            let one = key(&prefix, "p", &id);
            let two = key(&prefix, "q-2", &id);
            proptest::prop_assert!(crate::slot::same_slot(&[&one, &two]));
            let tag = crate::slot::hash_tag(one.as_bytes());
            proptest::prop_assert!(!tag.is_empty() && tag.len() < one.len());
        }
    }

    #[test]
    fn policy_names() {
        assert!(is_policy_name("burst") && is_policy_name("per-ip_2"));
        assert!(!is_policy_name("") && !is_policy_name("A") && !is_policy_name("a\"b"));
        assert!(!is_policy_name(&"a".repeat(65)));
    }
}

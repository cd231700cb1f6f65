//! The lookup demo's tags: every item is tagged `demo` and `group-<id % 10>`, and only those tags can
//! be invalidated.
//!
//! Invalidating a tag writes its generation key (kept as long as a tagged entry may live), so a tag
//! chosen by the client would let anyone create keys at will: one per request, each kept for days.
//! The route takes the eleven tags items can carry and answers 400, with the list, for any other.

/// The tags of item `id`.
pub fn tags_of(id: u64) -> [String; 2] {
    ["demo".to_owned(), format!("group-{}", id % 10)]
}

/// Whether some item can carry `tag`.
pub fn is_known(tag: &str) -> bool {
    tag == "demo"
        || tag
            .strip_prefix("group-")
            .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
}

/// What the route answers for an unknown tag.
pub const KNOWN: &str = "`demo` and `group-0` to `group-9`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_an_item_carries_is_known_and_nothing_else() {
        for id in 1..=1_000 {
            for tag in tags_of(id) {
                assert!(is_known(&tag), "{tag}");
            }
        }
        for bad in [
            "", "demo2", "Demo", "group-", "group-10", "group--1", "group-a", "x", "group-٣",
        ] {
            assert!(!is_known(bad), "{bad:?}");
        }
    }
}

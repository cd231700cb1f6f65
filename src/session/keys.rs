//! Key layout: a session and its user's index share a Redis Cluster slot, and the token tells which.
//!
//! | key | holds | TTL |
//! |---|---|---|
//! | `<prefix>:{<tag>}:s:<id>` | the session's record (a hash) | its idle expiry |
//! | `<prefix>:{<tag>}:u:<user>` | the user's index: session ids scored by idle expiry | its longest-lived session |
//!
//! `<tag>` is the user's tag: the first [`TAG_BYTES`] of SHA-256 of the user id, in base64url
//! ([`TAG_LEN`] characters). A session id begins with its user's tag, so a load that has only the
//! cookie finds the session's key (and its slot) without a second round trip, every script of one
//! user (sign-in, load, rotation, list, revoke one or all) runs in one slot, and users spread over the
//! cluster (2^24 tags over 16384 slots). The tag is public, as the id is; what authenticates a token is
//! its secret (see [`Token`](super::Token)).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::token::SessionId;

/// Bytes of a user's tag at the start of a session id.
pub const TAG_BYTES: usize = 3;
/// Characters of a user's tag (base64url of [`TAG_BYTES`]; a multiple of 3 bytes, so the tag is
/// exactly the first characters of the id's encoding).
pub const TAG_LEN: usize = 4;

/// The tag of `user`'s sessions, as bytes.
pub fn user_tag_bytes(user: &str) -> [u8; TAG_BYTES] {
    let digest = Sha256::digest(user.as_bytes());
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(&digest[..TAG_BYTES]);
    tag
}

/// The tag of `user`'s sessions: what their ids begin with and their keys' hash tag.
///
/// ```
/// use redge::session::user_tag;
/// assert_eq!(user_tag("alice").len(), 4);
/// ```
pub fn user_tag(user: &str) -> String {
    URL_SAFE_NO_PAD.encode(user_tag_bytes(user))
}

/// `<prefix>:{<tag>}`: what every key of the tag's sessions begins with (the scripts' `ARGV[1]`).
pub(super) fn base(prefix: &str, tag: &str) -> String {
    format!("{}:{{{tag}}}", crate::slot::plain_prefix(prefix))
}

/// The key of the session `id`: `<prefix>:{<tag>}:s:<id>`, the tag read from the id.
pub fn session_key(prefix: &str, id: &SessionId) -> String {
    format!("{}:s:{id}", base(prefix, id.tag()))
}

/// The key of `user`'s index: `<prefix>:{<tag>}:u:<user>`.
pub fn index_key(prefix: &str, user: &str) -> String {
    format!("{}:u:{user}", base(prefix, &user_tag(user)))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::super::token::{Counter, Token};
    use super::*;
    use crate::slot::{same_slot, slot};

    #[test]
    fn a_users_sessions_and_index_share_a_slot_and_users_spread() {
        let random = Counter::new(1);
        for user in ["alice", "bob", "{x}", "}", "é", &"u".repeat(256)] {
            let tag = user_tag_bytes(user);
            let ids: Vec<Token> = (0..5)
                .map(|_| Token::generate_tagged(&random, tag).unwrap())
                .collect();
            let mut keys: Vec<String> = ids
                .iter()
                .map(|t| session_key("redge:{s}", t.id()))
                .collect();
            keys.push(index_key("redge:{s}", user));
            assert!(same_slot(&keys), "{keys:?}");
            assert!(ids.iter().all(|t| t.id().tag() == user_tag(user)));
        }
        let slots: std::collections::HashSet<u16> = (0..1000)
            .map(|i| slot(index_key("redge:session", &format!("user-{i}")).as_bytes()))
            .collect();
        assert!(slots.len() > 950, "1000 users on {} slots", slots.len());
    }

    proptest::proptest! {
        #[test]
        fn any_user_and_prefix_keep_sessions_with_their_index(
            user in ".{1,64}",
            prefix in "[a-z:{}]{1,12}",
            seed in 0u8..255,
        ) {
            let token = Token::generate_tagged(&Counter::new(seed), user_tag_bytes(&user)).unwrap();
            let parsed = Token::parse(&token.expose()).unwrap();
            proptest::prop_assert_eq!(parsed.id().tag(), user_tag(&user));
            let keys = [session_key(&prefix, parsed.id()), index_key(&prefix, &user)];
            proptest::prop_assert!(same_slot(&keys), "{:?}", keys);
        }
    }

    #[test]
    fn layout() {
        let id = SessionId::parse("AAAAbbbbccccddddeeeeeg").unwrap();
        assert_eq!(id.tag(), "AAAA");
        assert_eq!(session_key("p", &id), "p:{AAAA}:s:AAAAbbbbccccddddeeeeeg");
        let tag = user_tag("alice");
        assert_eq!(index_key("p", "alice"), format!("p:{{{tag}}}:u:alice"));
        assert_eq!(base("a{b}", "T"), "a%7Bb%7D:{T}");
    }
}

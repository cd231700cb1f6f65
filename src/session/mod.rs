//! Sessions: secure tokens, one round trip per request, and no session lost to a Redis blink.
//!
//! # How it works
//!
//! - **Tokens** ([`Token`]): `<id>.<secret>`, a 128-bit public id (its user's 24-bit tag, then random
//!   bits) and a 256-bit secret from Web Crypto.
//!   Redis stores only SHA-256 of the secret; the record's hash is compared in the script and again, in
//!   constant time, in Rust. A malformed token (wrong length, characters or encoding) is refused before
//!   any command is built, so junk cookies cost no round trip. Keys hold the id, never the secret, and no
//!   error or `Debug` output shows a secret.
//! - **Records** ([`Session`]): one small hash per session, with an envelope version; the data is JSON
//!   (serde), counters have their own fields.
//! - **Lifetimes** ([`Lifetimes`]): an idle timeout (default 30 min) with sliding refresh, throttled so
//!   that a read writes only when less than half the idle window is left, and an absolute cap (default
//!   12 h). Redis owns expiry (the hash's TTL follows the idle expiry), so nothing sweeps. The scripts take
//!   "now" from the injected [`Clock`](crate::clock::Clock), so tests drive expiry exactly.
//! - **One round trip** for every operation: each is one Lua script that authenticates the token and acts
//!   (reads and refreshes, updates, lists, revokes). Every operation comes as `prepare_*` (add to a shared
//!   [`Batch`](crate::client::Batch), then [`Pending::finish`] after it is sent) and as an `async fn` that sends its own batch.
//! - **Writes**: a session is created like `SET NX` (a taken id is never overwritten; a second candidate
//!   id is tried in the same script) and only ever updated while it exists (like `SET XX`), so a late write
//!   cannot bring back a session that was signed out or expired.
//! - **Rotation** ([`SessionStore::rotate`], and sign-in over an existing session): a new token, the data
//!   kept, the old token deleted, atomically.
//! - **Keys and Redis Cluster** ([`keys`]): a session's key and its user's index carry the user's tag
//!   as hash tag, and the id begins with it: every operation is one script in one slot, found from the
//!   cookie alone, and users spread over the cluster. Signing in over another user's session ends that
//!   session with a second script in the same round trip.
//! - **Per-user index**: a sorted set of the user's session ids scored by idle expiry, pruned on every
//!   write, with a TTL that follows its longest-lived session; list, revoke one and revoke all ("sign out
//!   everywhere", one script, however many sessions) use it.
//! - **Concurrency**: the data blob is last-writer-wins, like every peer's; pass the version you read to
//!   [`SessionStore::update`] for compare-and-set ([`Update::Conflict`] when someone wrote in between).
//!   Counters ([`SessionStore::incr`]) are `HINCRBY` on their own fields: concurrent requests add up.
//! - **Failure policy**: when Redis cannot be reached the operation fails with an [`Error`] for which
//!   [`Error::is_unavailable`](crate::Error::is_unavailable) holds: answer 503 and leave the cookie alone. It never turns into "no
//!   session", so a Redis restart signs nobody out. A write answered with a timeout is not applied
//!   later by a Redis that was only hung: every script that writes (sign-in, rotation, update,
//!   counters) carries a deadline, the wall clock plus the client's timeout plus
//!   [`WRITE_DEADLINE_SLACK_MS`] for clock differences, and changes nothing when Redis's own `TIME` is
//!   past it. Revocations have none (a sign-out that lands late ends only what was asked to end).
//!
//! ```no_run
//! # async fn route(client: &redge::Client, token_from_cookie: &str) -> redge::Result<()> {
//! // In a Worker (any JavaScript runtime with fetch and Web Crypto):
//! use redge::session::{SessionConfig, SessionStore};
//! let store = SessionStore::new(client, SessionConfig::default());
//! // After your own credential check:
//! let issued = store.sign_in("alice", &serde_json::json!({}), None).await?;
//! let set_cookie = store.set_cookie(&issued.token, &issued.session); // the Set-Cookie header value
//! // Later, from the cookie, in one round trip with the rate limiter's and the cache's reads:
//! let plan = redge::Plan::new(client);
//! let session = plan.load_session(&store, token_from_cookie);
//! plan.send().await; // each part reads its own outcome
//! match session.finish() {
//!     Ok(Some(loaded)) => { /* signed in as loaded.session.user */ }
//!     Ok(None) => { /* 401 */ }
//!     Err(e) if e.is_unavailable() => { /* 503, cookie untouched */ }
//!     Err(e) => { /* 500 */ }
//! }
//! # Ok(()) }
//! ```

mod cache;
mod cookie;
pub mod keys;
pub mod origin;
mod outcome;
mod pending;
mod record;
mod store;
mod token;

pub use cache::{MAX_SESSION_CACHE_MS, SessionCache};
pub use cookie::{CookieConfig, DEFAULT_NAME as DEFAULT_COOKIE_NAME};
pub use keys::{index_key, session_key, user_tag};
pub use outcome::{Issued, Loaded, Revoked, Update};
pub use pending::Pending;
pub use record::{DEFAULT_ABSOLUTE_MS, DEFAULT_IDLE_MS, Lifetimes, Session, SessionSummary};
pub use store::{SessionStore, WRITE_DEADLINE_SLACK_MS};
#[cfg(test)]
pub(crate) use token::Counter;
pub use token::{Random, SessionId, TOKEN_LEN, Token, TokenError, WebCrypto};

use crate::{Error, Result};

/// The default key prefix: sessions live at `redge:session:{<tag>}:s:<id>`, indexes at
/// `redge:session:{<tag>}:u:<user>` ([`keys`]).
pub const DEFAULT_PREFIX: &str = "redge:session";
/// The default largest session data, as JSON text.
pub const DEFAULT_MAX_DATA_BYTES: usize = 16 * 1024;
/// The longest user id accepted.
pub const MAX_USER_LEN: usize = 256;
/// The longest counter name accepted.
pub const MAX_COUNTER_LEN: usize = 64;

/// How sessions are stored and how long they live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Idle timeout and absolute cap.
    pub lifetimes: Lifetimes,
    /// Key prefix.
    pub prefix: String,
    /// The largest data accepted (JSON bytes); larger updates fail with [`Error::TooLarge`].
    pub max_data_bytes: usize,
    /// The cookie's name and flags.
    pub cookie: CookieConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            lifetimes: Lifetimes::default(),
            prefix: DEFAULT_PREFIX.to_owned(),
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
            cookie: CookieConfig::default(),
        }
    }
}

/// Which sessions [`SessionStore::revoke`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// The session of the token (sign out).
    Current,
    /// Another session of the same user, by its public id.
    One(&'a str),
    /// Every session of the user, this one included (sign out everywhere).
    All,
}

/// A user id: 1 to [`MAX_USER_LEN`] bytes, no control characters.
///
/// # Errors
/// [`Error::InvalidArgument`] saying which rule failed.
pub fn validate_user(user: &str) -> Result<()> {
    if user.is_empty() || user.len() > MAX_USER_LEN {
        return Err(Error::InvalidArgument(format!(
            "a user id has 1 to {MAX_USER_LEN} bytes, got {}",
            user.len()
        )));
    }
    if user.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(
            "a user id has no control characters".into(),
        ));
    }
    Ok(())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

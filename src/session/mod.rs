//! Sessions: secure tokens, one round trip per request, and no session lost to a Redis blink.
//!
//! # How it works
//!
//! - **Tokens** ([`Token`]): `<id>.<secret>`, a 128-bit public id and a 256-bit secret from Web Crypto.
//!   Redis stores only SHA-256 of the secret; the record's hash is compared in the script and again, in
//!   constant time, in Rust. A malformed token (wrong length, characters or encoding) is refused before
//!   any command is built, so junk cookies cost no round trip. Keys hold the id, never the secret, and no
//!   error or `Debug` output shows a secret.
//! - **Records** ([`record`]): one small hash per session, with an envelope version; the data is JSON
//!   (serde), counters have their own fields.
//! - **Lifetimes** ([`Lifetimes`]): an idle timeout (default 30 min) with sliding refresh, throttled so
//!   that a read writes only when less than half the idle window is left, and an absolute cap (default
//!   12 h). Redis owns expiry (the hash's TTL follows the idle expiry), so nothing sweeps. The scripts take
//!   "now" from the injected [`Clock`], so tests drive expiry exactly.
//! - **One round trip** for every operation: each is one Lua script that authenticates the token and acts
//!   (reads and refreshes, updates, lists, revokes). Every operation comes as `prepare_*` (add to a shared
//!   [`Batch`], then [`Pending::finish`] after it is sent) and as an `async fn` that sends its own batch.
//! - **Writes**: a session is created like `SET NX` (a taken id is never overwritten; a second candidate
//!   id is tried in the same script) and only ever updated while it exists (like `SET XX`), so a late write
//!   cannot bring back a session that was signed out or expired.
//! - **Rotation** ([`SessionStore::rotate`], and sign-in over an existing session): a new token, the data
//!   kept, the old token deleted, atomically.
//! - **Per-user index**: a sorted set of the user's session ids scored by idle expiry, pruned on every
//!   write, with a TTL that follows its longest-lived session; list, revoke one and revoke all ("sign out
//!   everywhere", one script, however many sessions) use it.
//! - **Concurrency**: the data blob is last-writer-wins, like every peer's; pass the version you read to
//!   [`SessionStore::update`] for compare-and-set ([`Update::Conflict`] when someone wrote in between).
//!   Counters ([`SessionStore::incr`]) are `HINCRBY` on their own fields: concurrent requests add up.
//! - **Failure policy**: when Redis cannot be reached the operation fails with an [`Error`] for which
//!   [`Error::is_unavailable`] holds: answer 503 and leave the cookie alone. It never turns into "no
//!   session", so a Redis restart signs nobody out.
//!
//! ```ignore
//! // In a Worker (any JavaScript runtime with fetch and Web Crypto):
//! use redge::session::{SessionConfig, SessionStore};
//! let store = SessionStore::new(&client, SessionConfig::default());
//! let issued = store.sign_in("alice", &serde_json::json!({}), None).await?;
//! let cookie = store.cookie_config().set_cookie(&issued.token.expose(), 1800);
//! // Later, from the cookie, in one round trip with the rate limiter's and the cache's commands:
//! let batch = client.batch();
//! let session = store.prepare_load(&batch, &token_from_cookie);
//! batch.send().await.ok(); // each capability reads its own outcome
//! match session.finish() {
//!     Ok(Some(loaded)) => { /* signed in */ }
//!     Ok(None) => { /* 401 */ }
//!     Err(e) if e.is_unavailable() => { /* 503, cookie untouched */ }
//!     Err(e) => { /* 500 */ }
//! }
//! ```

pub mod cookie;
pub mod origin;
mod outcome;
pub mod record;
pub mod token;

use std::rc::Rc;
use std::sync::OnceLock;

pub use cookie::CookieConfig;
pub use outcome::{Issued, Loaded, Revoked, Update};
pub use record::{Lifetimes, Session, SessionSummary};
#[cfg(target_arch = "wasm32")]
pub use token::WebCrypto;
pub use token::{Random, SessionId, Token, TokenError};

use crate::client::{Batch, Client, Handle, Reply, Script, Transport};
use crate::clock::Clock;
use crate::{Error, Result};

/// The default key prefix: sessions live at `redge:session:s:<id>`, indexes at `redge:session:u:<user>`.
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

/// An operation added to a batch; [`Pending::finish`] reads its outcome once the batch was sent.
#[derive(Debug)]
pub struct Pending<R> {
    state: State<R>,
}

#[derive(Debug)]
enum State<R> {
    /// Decided without Redis (a malformed token, bad input).
    Ready(Result<R>),
    Waiting(Handle<R>),
}

impl<R: 'static> Pending<R> {
    fn ready(value: Result<R>) -> Self {
        Pending {
            state: State::Ready(value),
        }
    }

    /// Whether the operation added a command to the batch (false when it was decided locally, for
    /// example for a malformed token).
    pub fn is_queued(&self) -> bool {
        matches!(self.state, State::Waiting(_))
    }

    /// The outcome.
    ///
    /// # Errors
    /// The batch's error for this entry when Redis could not be reached ([`Error::is_unavailable`]:
    /// answer 503, keep the cookie), a Redis or protocol error, [`Error::NotSent`] before the batch was
    /// sent, or an input error decided before sending.
    pub fn finish(self) -> Result<R> {
        match self.state {
            State::Ready(value) => value,
            State::Waiting(handle) => handle.take(),
        }
    }
}

struct Scripts {
    load: Script,
    update: Script,
    incr: Script,
    issue: Script,
    list: Script,
    revoke: Script,
    revoke_user: Script,
}

macro_rules! session_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("scripts/common.lua"),
            include_str!(concat!("scripts/", $file))
        ))
    };
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        load: session_script!("load.lua"),
        update: session_script!("update.lua"),
        incr: session_script!("incr.lua"),
        issue: session_script!("issue.lua"),
        list: session_script!("list.lua"),
        revoke: session_script!("revoke.lua"),
        revoke_user: session_script!("revoke_user.lua"),
    })
}

/// Sessions in one HTTP Redis service; see the [module docs](self).
pub struct SessionStore<'c, T: Transport> {
    client: &'c Client<T>,
    config: SessionConfig,
    clock: Rc<dyn Clock>,
    random: Rc<dyn Random>,
}

impl<T: Transport> std::fmt::Debug for SessionStore<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.config)
            .finish()
    }
}

#[cfg(target_arch = "wasm32")]
impl<'c, T: Transport> SessionStore<'c, T> {
    /// A store using the system clock and Web Crypto.
    pub fn new(client: &'c Client<T>, config: SessionConfig) -> Self {
        Self::with_parts(client, config, crate::clock::SystemClock, WebCrypto)
    }
}

impl<'c, T: Transport> SessionStore<'c, T> {
    /// A store with the given clock and random source (tests pass a [`crate::clock::FakeClock`]).
    pub fn with_parts(
        client: &'c Client<T>,
        config: SessionConfig,
        clock: impl Clock + 'static,
        random: impl Random + 'static,
    ) -> Self {
        SessionStore {
            client,
            config,
            clock: Rc::new(clock),
            random: Rc::new(random),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The cookie configuration.
    pub fn cookie_config(&self) -> &CookieConfig {
        &self.config.cookie
    }

    /// The current time by the store's clock (Unix ms).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The `Set-Cookie` value for a session just issued or refreshed: the token, with `Max-Age` running
    /// from the write (`last_seen`) to the idle expiry, so the idle timeout unless the absolute cap is
    /// nearer.
    pub fn set_cookie(&self, token: &Token, session: &Session) -> String {
        let max_age = cookie::max_age_s(session.last_seen, session.idle_expires_at);
        self.config.cookie.set_cookie(&token.expose(), max_age)
    }

    /// The `Set-Cookie` value that sends an existing token again after a refresh, with the new
    /// `Max-Age`; `None` if `token` is malformed.
    pub fn refresh_cookie(&self, token: &str, session: &Session) -> Option<String> {
        Token::parse(token)
            .ok()
            .map(|t| self.set_cookie(&t, session))
    }

    /// Runs `prepare` in a batch of its own: one round trip.
    async fn once<R: 'static>(
        &self,
        prepare: impl FnOnce(&Batch<'_, T>) -> Pending<R>,
    ) -> Result<R> {
        let batch = self.client.batch();
        let pending = prepare(&batch);
        if pending.is_queued() {
            // The error, if any, is also what the entry's handle reports.
            let _ = batch.send().await;
        }
        pending.finish()
    }

    /// Adds a session script call: ARGV = prefix, id, hash, now, idle, then `extra`.
    fn call<R: 'static>(
        &self,
        batch: &Batch<'_, T>,
        script: &Script,
        id: &str,
        hash: &str,
        extra: Vec<String>,
        decode: impl FnOnce(Reply) -> Result<R> + 'static,
    ) -> Pending<R> {
        let mut args = vec![
            self.config.prefix.clone(),
            id.to_owned(),
            hash.to_owned(),
            self.now_ms().to_string(),
            self.config.lifetimes.idle_ms().to_string(),
        ];
        args.extend(extra);
        let handle = batch
            .add_script::<Reply, &str, String>(script, [], args)
            .map(decode);
        Pending {
            state: State::Waiting(handle),
        }
    }

    /// Reads the session of `token` and refreshes it when due.
    ///
    /// A malformed token is `Ok(None)` and adds nothing to the batch.
    pub fn prepare_load(&self, batch: &Batch<'_, T>, token: &str) -> Pending<Option<Loaded>> {
        let Ok(token) = Token::parse(token) else {
            return Pending::ready(Ok(None));
        };
        let (id, hash) = (token.id().to_string(), token.secret_hash().to_hex());
        self.call(batch, &scripts().load, &id, &hash, vec![], move |r| {
            outcome::loaded(&token, r)
        })
    }

    /// [`Self::prepare_load`] in one round trip.
    ///
    /// # Errors
    /// See [`Pending::finish`].
    pub async fn load(&self, token: &str) -> Result<Option<Loaded>> {
        self.once(|b| self.prepare_load(b, token)).await
    }

    /// Signs `user` in: a new session with `data` (anything serde serializes; read it back with
    /// [`Session::data_as`]). When `replacing` is a valid session, it is ended in the
    /// same step, and if it belongs to the same user its data, version and counters are kept instead of
    /// `data` (rotation on sign-in). A malformed `replacing` token is ignored.
    pub fn prepare_sign_in(
        &self,
        batch: &Batch<'_, T>,
        user: &str,
        data: &(impl serde::Serialize + ?Sized),
        replacing: Option<&str>,
    ) -> Pending<Issued> {
        let checked = validate_user(user).and_then(|()| self.encode_data(data));
        let candidates = checked.and_then(|data| Ok((data, self.candidates()?)));
        let (data, candidates) = match candidates {
            Ok(ok) => ok,
            Err(e) => return Pending::ready(Err(e)),
        };
        let old = replacing.and_then(|t| Token::parse(t).ok());
        let extra = self.issue_args(user, data, old.as_ref(), "sign_in", &candidates);
        let (id, hash) = (
            candidates[0].id().to_string(),
            candidates[0].secret_hash().to_hex(),
        );
        self.call(batch, &scripts().issue, &id, &hash, extra, move |r| {
            outcome::issued(candidates, r)?
                .ok_or_else(|| Error::Protocol("sign-in refused without a reason".into()))
        })
    }

    /// [`Self::prepare_sign_in`] in one round trip.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or oversized user id, [`Error::TooLarge`] for oversized
    /// data, and see [`Pending::finish`].
    pub async fn sign_in(
        &self,
        user: &str,
        data: &(impl serde::Serialize + ?Sized),
        replacing: Option<&str>,
    ) -> Result<Issued> {
        self.once(|b| self.prepare_sign_in(b, user, data, replacing))
            .await
    }

    /// Gives the session of `token` a new token (on a privilege change), keeping everything else; the old
    /// token stops working at once. `None` when `token` is not a valid session.
    pub fn prepare_rotate(&self, batch: &Batch<'_, T>, token: &str) -> Pending<Option<Issued>> {
        let Ok(old) = Token::parse(token) else {
            return Pending::ready(Ok(None));
        };
        let candidates = match self.candidates() {
            Ok(c) => c,
            Err(e) => return Pending::ready(Err(e)),
        };
        let extra = self.issue_args("", "{}".into(), Some(&old), "rotate", &candidates);
        let (id, hash) = (
            candidates[0].id().to_string(),
            candidates[0].secret_hash().to_hex(),
        );
        self.call(batch, &scripts().issue, &id, &hash, extra, move |r| {
            outcome::issued(candidates, r)
        })
    }

    /// [`Self::prepare_rotate`] in one round trip.
    ///
    /// # Errors
    /// See [`Pending::finish`].
    pub async fn rotate(&self, token: &str) -> Result<Option<Issued>> {
        self.once(|b| self.prepare_rotate(b, token)).await
    }

    /// Replaces the session's data (anything serde serializes). With `expected_version`, only if the session's version is still that
    /// one ([`Update::Conflict`] otherwise); without, last writer wins.
    pub fn prepare_update(
        &self,
        batch: &Batch<'_, T>,
        token: &str,
        data: &(impl serde::Serialize + ?Sized),
        expected_version: Option<u64>,
    ) -> Pending<Update> {
        let Ok(token) = Token::parse(token) else {
            return Pending::ready(Ok(Update::Unauthenticated));
        };
        let data = match self.encode_data(data) {
            Ok(d) => d,
            Err(e) => return Pending::ready(Err(e)),
        };
        let expected = expected_version.map(|v| v.to_string()).unwrap_or_default();
        let (id, hash) = (token.id().to_string(), token.secret_hash().to_hex());
        self.call(
            batch,
            &scripts().update,
            &id,
            &hash,
            vec![data, expected],
            move |r| outcome::updated(&token, r),
        )
    }

    /// [`Self::prepare_update`] in one round trip.
    ///
    /// # Errors
    /// [`Error::TooLarge`] for oversized data, and see [`Pending::finish`].
    pub async fn update(
        &self,
        token: &str,
        data: &(impl serde::Serialize + ?Sized),
        expected_version: Option<u64>,
    ) -> Result<Update> {
        self.once(|b| self.prepare_update(b, token, data, expected_version))
            .await
    }

    /// Adds `by` to the session's counter `name` and returns the new value (`None`: no valid session).
    pub fn prepare_incr(
        &self,
        batch: &Batch<'_, T>,
        token: &str,
        name: &str,
        by: i64,
    ) -> Pending<Option<i64>> {
        let Ok(token) = Token::parse(token) else {
            return Pending::ready(Ok(None));
        };
        if name.is_empty() || name.len() > MAX_COUNTER_LEN {
            return Pending::ready(Err(Error::InvalidArgument(format!(
                "a counter name has 1 to {MAX_COUNTER_LEN} bytes"
            ))));
        }
        let (id, hash) = (token.id().to_string(), token.secret_hash().to_hex());
        let extra = vec![name.to_owned(), by.to_string()];
        self.call(batch, &scripts().incr, &id, &hash, extra, outcome::counted)
    }

    /// [`Self::prepare_incr`] in one round trip.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad counter name, and see [`Pending::finish`].
    pub async fn incr(&self, token: &str, name: &str, by: i64) -> Result<Option<i64>> {
        self.once(|b| self.prepare_incr(b, token, name, by)).await
    }

    /// The live sessions of the token's user, oldest first (`None`: no valid session).
    pub fn prepare_list(
        &self,
        batch: &Batch<'_, T>,
        token: &str,
    ) -> Pending<Option<Vec<SessionSummary>>> {
        let Ok(token) = Token::parse(token) else {
            return Pending::ready(Ok(None));
        };
        let (id, hash) = (token.id().to_string(), token.secret_hash().to_hex());
        let current = token.id().clone();
        self.call(batch, &scripts().list, &id, &hash, vec![], move |r| {
            outcome::listed(&current, r)
        })
    }

    /// [`Self::prepare_list`] in one round trip.
    ///
    /// # Errors
    /// See [`Pending::finish`].
    pub async fn list(&self, token: &str) -> Result<Option<Vec<SessionSummary>>> {
        self.once(|b| self.prepare_list(b, token)).await
    }

    /// Ends sessions of the token's user: this one, another one of theirs, or all of them, atomically.
    pub fn prepare_revoke(
        &self,
        batch: &Batch<'_, T>,
        token: &str,
        which: Revoke<'_>,
    ) -> Pending<Revoked> {
        let Ok(token) = Token::parse(token) else {
            return Pending::ready(Ok(Revoked::Unauthenticated));
        };
        let extra = match which {
            Revoke::Current => vec!["current".to_owned()],
            Revoke::All => vec!["all".to_owned()],
            Revoke::One(target) => match SessionId::parse(target) {
                Ok(target) => vec!["one".to_owned(), target.to_string()],
                Err(_) => return Pending::ready(Ok(Revoked::NotFound)),
            },
        };
        let (id, hash) = (token.id().to_string(), token.secret_hash().to_hex());
        self.call(
            batch,
            &scripts().revoke,
            &id,
            &hash,
            extra,
            outcome::revoked,
        )
    }

    /// [`Self::prepare_revoke`] in one round trip.
    ///
    /// # Errors
    /// See [`Pending::finish`]. (A malformed target id is [`Revoked::NotFound`], decided locally.)
    pub async fn revoke(&self, token: &str, which: Revoke<'_>) -> Result<Revoked> {
        self.once(|b| self.prepare_revoke(b, token, which)).await
    }

    /// Ends every session of `user`, without a token: for the application itself (after a password
    /// change, an account deletion). Returns how many ended.
    pub fn prepare_revoke_user(&self, batch: &Batch<'_, T>, user: &str) -> Pending<u64> {
        if let Err(e) = validate_user(user) {
            return Pending::ready(Err(e));
        }
        self.call(
            batch,
            &scripts().revoke_user,
            "",
            "",
            vec![user.to_owned()],
            |r| match outcome::revoked(r)? {
                Revoked::Ended(n) => Ok(n),
                _ => Err(Error::Protocol(
                    "revoke_user answered without a count".into(),
                )),
            },
        )
    }

    /// [`Self::prepare_revoke_user`] in one round trip.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad user id, and see [`Pending::finish`].
    pub async fn revoke_user(&self, user: &str) -> Result<u64> {
        self.once(|b| self.prepare_revoke_user(b, user)).await
    }

    fn candidates(&self) -> Result<[Token; 2]> {
        Ok([
            Token::generate(self.random.as_ref())?,
            Token::generate(self.random.as_ref())?,
        ])
    }

    fn issue_args(
        &self,
        user: &str,
        data: String,
        old: Option<&Token>,
        mode: &str,
        candidates: &[Token; 2],
    ) -> Vec<String> {
        let (old_id, old_hash) = old
            .map(|t| (t.id().to_string(), t.secret_hash().to_hex()))
            .unwrap_or_default();
        vec![
            self.config.lifetimes.absolute_ms().to_string(),
            user.to_owned(),
            data,
            old_id,
            old_hash,
            mode.to_owned(),
            candidates[1].id().to_string(),
            candidates[1].secret_hash().to_hex(),
        ]
    }

    fn encode_data(&self, data: &(impl serde::Serialize + ?Sized)) -> Result<String> {
        let text = serde_json::to_string(data)
            .map_err(|e| Error::InvalidArgument(format!("session data: {e}")))?;
        if text.len() > self.config.max_data_bytes {
            return Err(Error::TooLarge(format!(
                "session data of {} bytes is over the {}-byte limit",
                text.len(),
                self.config.max_data_bytes
            )));
        }
        Ok(text)
    }
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

//! [`SessionStore`]: every session operation, each one Lua script, in `prepare_*` and `async` forms.

use std::rc::Rc;

use super::CookieConfig;
use super::cache::SessionCache;
use super::keys::{self, user_tag, user_tag_bytes};
use super::outcome::{self, Issued, Loaded, Revoked, Update};
use super::pending::{Pending, State, scripts};
use super::record::{Session, SessionSummary};
use super::token::{Random, SessionId, Token, WebCrypto};
use super::{MAX_COUNTER_LEN, Revoke, SessionConfig, cookie, validate_user};
use crate::client::{Batch, Client, FetchTransport, Reply, Script, Transport};
use crate::clock::{Clock, SystemClock};
use crate::{Error, Result};

/// How far past the client's deadline (by the caller's wall clock) Redis may still apply a session
/// write: room for the two clocks to disagree. A write Redis reaches later than that changes nothing.
pub const WRITE_DEADLINE_SLACK_MS: u64 = 500;

/// Sessions in one HTTP Redis service; see the [module docs](super).
pub struct SessionStore<'c, T: Transport = FetchTransport> {
    client: &'c Client<T>,
    config: SessionConfig,
    clock: Rc<dyn Clock>,
    random: Rc<dyn Random>,
    cache: Option<Rc<SessionCache>>,
}

impl<T: Transport> std::fmt::Debug for SessionStore<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.config)
            .finish()
    }
}

impl<'c, T: Transport> SessionStore<'c, T> {
    /// A store using the system clock and Web Crypto.
    pub fn new(client: &'c Client<T>, config: SessionConfig) -> Self {
        Self::with_clock(client, config, crate::clock::SystemClock)
    }

    /// A store using `clock` and Web Crypto.
    pub fn with_clock(
        client: &'c Client<T>,
        config: SessionConfig,
        clock: impl Clock + 'static,
    ) -> Self {
        Self::with_parts(client, config, clock, WebCrypto)
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
            cache: None,
        }
    }

    /// Serves sessions this isolate read recently from `cache` (shared by the stores of every request
    /// of the isolate), without a round trip: see [`SessionCache`] for what that trades.
    pub fn with_cache(mut self, cache: Rc<SessionCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Forgets `token`'s session in the cache, now and again when the write answers (a read that was in
    /// flight meanwhile must not keep the old state).
    fn forget_on_write<R: 'static>(&self, token: &Token, pending: Pending<R>) -> Pending<R> {
        let Some(cache) = self.cache.clone() else {
            return pending;
        };
        let id = token.id().as_str().to_owned();
        cache.forget(&id);
        pending.after(move || cache.forget(&id))
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

    /// Adds a session script call: KEYS = `keys` (the session keys it reads or writes, or the user's
    /// index: at least one, all with the hash tag `tag`, so that a cluster routes the script to their
    /// slot), ARGV = `<prefix>:{<tag>}`, id, hash, now, idle, deadline, then `extra`. The scripts
    /// derive the other keys of the tag from ARGV[1] (the user's index, the sessions listed in it).
    ///
    /// The deadline is the wall clock (not the store's clock, which tests move freely) plus the
    /// client's timeout and [`WRITE_DEADLINE_SLACK_MS`]: the scripts that write refuse to run after it
    /// (`late`, decoded here as the timeout the caller has already seen), so that a write answered
    /// with a timeout is not applied later by a Redis that was only slow.
    #[allow(clippy::too_many_arguments)]
    fn call<R: 'static>(
        &self,
        batch: &Batch<'_, T>,
        script: &Script,
        tag: &str,
        keys: Vec<String>,
        id: &str,
        hash: &str,
        extra: Vec<String>,
        decode: impl FnOnce(Reply) -> Result<R> + 'static,
    ) -> Pending<R> {
        let mut args = vec![
            keys::base(&self.config.prefix, tag),
            id.to_owned(),
            hash.to_owned(),
            self.now_ms().to_string(),
            self.config.lifetimes.idle_ms().to_string(),
        ];
        let budget = self.client.current_options().timeout_ms;
        let deadline = SystemClock.now_ms() + u64::from(budget) + WRITE_DEADLINE_SLACK_MS;
        args.push(deadline.to_string());
        args.extend(extra);
        let handle = batch
            .add_script::<Reply, String, String>(script, keys, args)
            .map(move |reply| {
                if outcome::is_late(&reply) {
                    Err(Error::Timeout(budget))
                } else {
                    decode(reply)
                }
            });
        Pending {
            state: State::Waiting(handle),
            after: None,
        }
    }

    /// A call of `script` on the session of `token`: its key declared, its tag as ARGV's base.
    fn on_session<R: 'static>(
        &self,
        batch: &Batch<'_, T>,
        script: &Script,
        token: &Token,
        extra: Vec<String>,
        decode: impl FnOnce(Reply) -> Result<R> + 'static,
    ) -> Pending<R> {
        let id = token.id();
        let keys = vec![self.session_key(id)];
        let hash = token.secret_hash().to_hex();
        self.call(
            batch,
            script,
            id.tag(),
            keys,
            id.as_str(),
            &hash,
            extra,
            decode,
        )
    }

    /// The Redis key of the session `id` ([`keys`](super::keys)).
    pub fn session_key(&self, id: &SessionId) -> String {
        keys::session_key(&self.config.prefix, id)
    }

    /// The Redis key of `user`'s index of sessions ([`keys`](super::keys)).
    pub fn index_key(&self, user: &str) -> String {
        keys::index_key(&self.config.prefix, user)
    }

    /// Reads the session of `token` and refreshes it when due.
    ///
    /// A malformed token is `Ok(None)` and adds nothing to the batch.
    pub fn prepare_load(&self, batch: &Batch<'_, T>, token: &str) -> Pending<Option<Loaded>> {
        let Ok(token) = Token::parse(token) else {
            return Pending::ready(Ok(None));
        };
        let now = self.now_ms();
        if let Some(session) = self.cache.as_ref().and_then(|c| c.get(&token, now)) {
            return Pending::ready(Ok(Some(Loaded {
                session,
                refreshed: false,
            })));
        }
        let cache = self.cache.clone();
        let reading = token.clone();
        self.on_session(batch, &scripts().load, &reading, vec![], move |r| {
            let loaded = outcome::loaded(&token, r);
            if let Some(cache) = cache {
                match &loaded {
                    Ok(Some(l)) => cache.put(&token, &l.session, now),
                    Ok(None) => cache.forget(token.id().as_str()),
                    Err(_) => {}
                }
            }
            loaded
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
    /// [`Session::data_as`]), its id tagged with the user's tag. When `replacing` is a valid session,
    /// it is ended in the same round trip, and if it belongs to the same user its data, version and
    /// counters are kept instead of `data` (rotation on sign-in). A malformed `replacing` token is
    /// ignored.
    ///
    /// A session of the same user (same tag, same slot) is replaced atomically by the script that
    /// creates the new one. A session of another user lives in another slot: its removal is a second
    /// script in the same batch (a sign-out, as [`Revoke::Current`](super::Revoke::Current) does),
    /// which carries nothing over, and which happens even when the new session could not be created
    /// (the browser was leaving that user's session anyway).
    pub fn prepare_sign_in(
        &self,
        batch: &Batch<'_, T>,
        user: &str,
        data: &(impl serde::Serialize + ?Sized),
        replacing: Option<&str>,
    ) -> Pending<Issued> {
        let checked = validate_user(user).and_then(|()| self.encode_data(data));
        let tag = user_tag_bytes(user);
        let candidates = checked.and_then(|data| Ok((data, self.candidates(tag)?)));
        let (data, candidates) = match candidates {
            Ok(ok) => ok,
            Err(e) => return Pending::ready(Err(e)),
        };
        let old = replacing.and_then(|t| Token::parse(t).ok());
        let user_tag = user_tag(user);
        // Only a session in the new one's slot can be replaced by the same script.
        let (same_slot, other) = match &old {
            Some(old) if old.id().tag() == user_tag => (Some(old), None),
            Some(old) => (None, Some(old)),
            None => (None, None),
        };
        let extra = self.issue_args(user, data, same_slot, "sign_in", &candidates);
        let mut keys = self.issue_keys(&candidates, same_slot);
        keys.push(self.index_key(user));
        let pending = self.issue(
            batch,
            &user_tag,
            keys,
            extra,
            candidates,
            |candidates, r| {
                outcome::issued(candidates, r)?
                    .ok_or_else(|| Error::Protocol("sign-in refused without a reason".into()))
            },
        );
        if let Some(other) = other {
            // Its outcome is not the sign-in's: a session already gone is as good as ended.
            let _ = self.on_session(
                batch,
                &scripts().revoke,
                other,
                vec!["current".to_owned()],
                outcome::revoked,
            );
        }
        match &old {
            // Signing in over a session replaces it: the old token must stop working here too.
            Some(old) => self.forget_on_write(old, pending),
            None => pending,
        }
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
        // The new token keeps the tag: the session stays in its user's slot.
        let candidates = match self.candidates(old.id().tag_bytes()) {
            Ok(c) => c,
            Err(e) => return Pending::ready(Err(e)),
        };
        let extra = self.issue_args("", "{}".into(), Some(&old), "rotate", &candidates);
        let keys = self.issue_keys(&candidates, Some(&old));
        let pending = self.issue(batch, old.id().tag(), keys, extra, candidates, |c, r| {
            outcome::issued(c, r)
        });
        self.forget_on_write(&old, pending)
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
        let forget = token.clone();
        let pending = self.on_session(
            batch,
            &scripts().update,
            &forget,
            vec![data, expected],
            move |r| outcome::updated(&token, r),
        );
        self.forget_on_write(&forget, pending)
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
        let extra = vec![name.to_owned(), by.to_string()];
        let pending = self.on_session(batch, &scripts().incr, &token, extra, outcome::counted);
        self.forget_on_write(&token, pending)
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
        let current = token.id().clone();
        self.on_session(batch, &scripts().list, &token, vec![], move |r| {
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
                // Another tag is another user's (another slot): the script, which still
                // authenticates the token, is given no target and answers `not_found`.
                Ok(target) if target.tag() != token.id().tag() => vec!["one".to_owned(), "".into()],
                Ok(target) => vec!["one".to_owned(), target.to_string()],
                Err(_) => return Pending::ready(Ok(Revoked::NotFound)),
            },
        };
        let id = token.id().to_string();
        let pending = self.on_session(batch, &scripts().revoke, &token, extra, outcome::revoked);
        match (&self.cache, which) {
            (None, _) => pending,
            (Some(_), Revoke::Current) => self.forget_on_write(&token, pending),
            (Some(cache), Revoke::One(target)) => {
                let (cache, target) = (Rc::clone(cache), target.to_owned());
                cache.forget(&target);
                pending.after(move || cache.forget(&target))
            }
            (Some(cache), Revoke::All) => {
                let (cache, user) = (Rc::clone(cache), cache.user_of(&id));
                cache.forget_user_or_all(user.as_deref());
                pending.after(move || cache.forget_user_or_all(user.as_deref()))
            }
        }
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
        if let Some(cache) = &self.cache {
            cache.forget_user(user);
        }
        self.call(
            batch,
            &scripts().revoke_user,
            &user_tag(user),
            vec![self.index_key(user)],
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

    /// Two fresh tokens whose ids begin with `tag`.
    fn candidates(&self, tag: [u8; keys::TAG_BYTES]) -> Result<[Token; 2]> {
        Ok([
            Token::generate_tagged(self.random.as_ref(), tag)?,
            Token::generate_tagged(self.random.as_ref(), tag)?,
        ])
    }

    /// The issue script's KEYS: both candidates' keys, then the replaced session's (same tag).
    fn issue_keys(&self, candidates: &[Token; 2], old: Option<&Token>) -> Vec<String> {
        candidates
            .iter()
            .chain(old)
            .map(|t| self.session_key(t.id()))
            .collect()
    }

    /// The issue script's call, on the first candidate's id.
    fn issue<R: 'static>(
        &self,
        batch: &Batch<'_, T>,
        tag: &str,
        keys: Vec<String>,
        extra: Vec<String>,
        candidates: [Token; 2],
        decode: impl FnOnce([Token; 2], Reply) -> Result<R> + 'static,
    ) -> Pending<R> {
        let (id, hash) = (
            candidates[0].id().to_string(),
            candidates[0].secret_hash().to_hex(),
        );
        self.call(
            batch,
            &scripts().issue,
            tag,
            keys,
            &id,
            &hash,
            extra,
            move |r| decode(candidates, r),
        )
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

//! `/api/session` and `/api/sessions`: the demo's cookie sessions, one session script each.
//!
//! Reads (who am I, list) add their script to the request's shared batch, so they share its one round trip
//! with the middleware. Writes (sign in, update, sign out, revoke) run after the middleware has decided
//! (a request refused by rate limiting must not write), in one round trip of their own.
//!
//! CSRF: state-changing routes require an allowed `Origin` (the Worker's own, `CORS_ALLOWED_ORIGINS` or
//! `SESSION_ALLOWED_ORIGINS`), else 403, checked before anything touches Redis. A missing `Origin` on a
//! write is refused too: browsers send it on every cross-origin request and on same-origin POST, PATCH
//! and DELETE.
//!
//! Store down: a 503 problem, and the cookie is left alone; the session is still valid when Redis is back.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::context::{Cx, Handler, Shared, Tr, json_response};
use crate::problem::Problem;
use crate::reply::Reply;
use crate::state;
use redge::Error;
use redge::plan::{Plan, Wait};
use redge::session::{
    Loaded, Pending, Revoke, Revoked, SessionConfig, SessionStore, Update, origin,
};

/// What every session route reads from the request: the store settings and the cookie's token.
pub(crate) struct Visit {
    store: SessionConfig,
    token: Option<String>,
}

impl Visit {
    /// Reads the cookie, and applies the Origin check to state-changing methods.
    fn new(cx: &Cx) -> Result<Visit, Problem> {
        let settings = &cx.config.session;
        if origin::is_state_changing(cx.method.as_str()) {
            let sent = cx.header("origin");
            if !origin::origin_allowed(sent.as_deref(), &cx.url, &settings.allowed_origins) {
                return Err(Problem::new(
                    403,
                    "this request changes the session, so it must come from an allowed Origin \
                     (this site, CORS_ALLOWED_ORIGINS or SESSION_ALLOWED_ORIGINS)",
                ));
            }
        }
        Ok(Visit::read(cx))
    }

    /// Reads the cookie only (the middleware loads the session on routes that do not change it).
    pub(crate) fn read(cx: &Cx) -> Visit {
        let settings = &cx.config.session;
        let mut store = settings.store.clone();
        store.cookie.insecure_dev = settings.insecure_cookie
            && origin::is_local_development(&cx.url, |name| cx.header(name).is_some());
        let cookie = cx.header("cookie").unwrap_or_default();
        let token = store.cookie.read(&cookie).map(str::to_owned);
        Visit { store, token }
    }

    /// Whether the request carries a session cookie (then the session is loaded from Redis).
    pub(crate) fn has_cookie(&self) -> bool {
        self.token.is_some()
    }

    /// Adds the session load to the request's plan when there is a cookie.
    pub(crate) fn prepare_load(
        &self,
        cx: &Cx,
        plan: &Plan<'_, Tr>,
    ) -> Option<Pending<Option<Loaded>>> {
        self.token
            .as_deref()
            .map(|token| plan.load_session(&self.store(cx), token))
    }

    /// The cookie that ends a stale session on the client (sent when the cookie names no live session).
    pub(crate) fn clear_cookie(&self) -> String {
        self.store.cookie.clear_cookie()
    }

    fn store<'c>(&self, cx: &'c Cx) -> SessionStore<'c, Tr> {
        let store = SessionStore::new(&cx.redis, self.store.clone());
        match state::session_cache(&cx.config) {
            Some(cache) => store.with_cache(cache),
            None => store,
        }
    }

    fn token(&self) -> &str {
        self.token.as_deref().unwrap_or("")
    }

    /// 401, clearing a cookie that names no live session (never used when the store failed).
    fn unauthenticated(&self) -> Problem {
        let problem = Problem::new(401, "no valid session: sign in first");
        if self.token.is_some() {
            problem.header("set-cookie", &self.store.cookie.clear_cookie())
        } else {
            problem
        }
    }

    /// [`Visit::refreshed`] with this visit's store.
    pub(crate) fn resend_if_refreshed(&self, cx: &Cx, loaded: &Loaded) {
        self.refreshed(cx, &self.store(cx), loaded);
    }

    /// Sends the cookie again when the session's idle expiry moved.
    fn refreshed(&self, cx: &Cx, store: &SessionStore<'_, Tr>, loaded: &Loaded) {
        if loaded.refreshed
            && let Some(cookie) = store.refresh_cookie(self.token(), &loaded.session)
        {
            cx.add_header("set-cookie", &cookie);
        }
    }
}

/// The store's error as a problem; the cookie is never touched here.
pub(crate) fn failed(error: &Error) -> Problem {
    if error.is_unavailable() {
        Problem::new(
            503,
            format!(
                "the session store could not be reached ({error}); your session is kept: try again shortly"
            ),
        )
        .header("retry-after", "1")
    } else if error.is_too_large() {
        Problem::new(413, error.to_string())
    } else if matches!(error, Error::InvalidArgument(_)) {
        Problem::bad_request(error.to_string())
    } else {
        Problem::new(500, format!("the session store failed: {error}"))
    }
}

/// `GET /api/session`: who am I (refreshes the session when due, then re-sends the cookie).
pub(crate) struct Current;

impl Handler for Current {
    type Pending = (Visit, Option<Pending<Option<Loaded>>>);

    async fn prepare(cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        let visit = Visit::new(cx)?;
        let pending = visit.prepare_load(cx, plan);
        Ok((visit, pending))
    }

    async fn respond(
        cx: &Cx,
        (visit, pending): Self::Pending,
        _: Shared,
    ) -> Result<Reply, Problem> {
        let Some(pending) = pending else {
            return Err(visit.unauthenticated());
        };
        match pending.finish() {
            Ok(Some(loaded)) => {
                visit.refreshed(cx, &visit.store(cx), &loaded);
                json_response(200, &json!({ "session": loaded.session }))
            }
            Ok(None) => Err(visit.unauthenticated()),
            Err(e) => Err(failed(&e)),
        }
    }
}

/// `GET /api/sessions`: my live sessions.
pub(crate) struct List;

impl Handler for List {
    type Pending = (
        Visit,
        Option<Pending<Option<Vec<redge::session::SessionSummary>>>>,
    );

    async fn prepare(cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        let visit = Visit::new(cx)?;
        let pending = visit.token.as_deref().map(|token| {
            plan.add(Wait::Full, |batch| {
                visit.store(cx).prepare_list(batch, token)
            })
        });
        Ok((visit, pending))
    }

    async fn respond(_: &Cx, (visit, pending): Self::Pending, _: Shared) -> Result<Reply, Problem> {
        let Some(pending) = pending else {
            return Err(visit.unauthenticated());
        };
        match pending.finish() {
            Ok(Some(sessions)) => json_response(200, &json!({ "sessions": sessions })),
            Ok(None) => Err(visit.unauthenticated()),
            Err(e) => Err(failed(&e)),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SignInBody {
    user: String,
}

/// `POST /api/session {"user"}`: 201 and a cookie; replaces (rotates) the current session if any.
pub(crate) struct SignIn;

impl Handler for SignIn {
    type Pending = (Visit, SignInBody);

    async fn prepare(cx: &Cx, _: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        Ok((Visit::new(cx)?, cx.json()?))
    }

    async fn respond(cx: &Cx, (visit, body): Self::Pending, _: Shared) -> Result<Reply, Problem> {
        let store = visit.store(cx);
        let issued = store
            .sign_in(body.user.trim(), &json!({}), visit.token.as_deref())
            .await
            .map_err(|e| failed(&e))?;
        cx.add_header(
            "set-cookie",
            &store.set_cookie(&issued.token, &issued.session),
        );
        json_response(201, &json!({ "session": issued.session }))
    }
}

#[derive(Deserialize)]
pub(crate) struct PatchBody {
    data: Map<String, Value>,
    #[serde(default)]
    version: Option<u64>,
}

/// `PATCH /api/session {"data", "version"?}`: 200, or 409 when `version` is stale.
pub(crate) struct Patch;

impl Handler for Patch {
    type Pending = (Visit, PatchBody);

    async fn prepare(cx: &Cx, _: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        Ok((Visit::new(cx)?, cx.json()?))
    }

    async fn respond(cx: &Cx, (visit, body): Self::Pending, _: Shared) -> Result<Reply, Problem> {
        if visit.token.is_none() {
            return Err(visit.unauthenticated());
        }
        let store = visit.store(cx);
        let outcome = store
            .update(visit.token(), &Value::Object(body.data), body.version)
            .await
            .map_err(|e| failed(&e))?;
        match outcome {
            Update::Saved(loaded) => {
                visit.refreshed(cx, &store, &loaded);
                json_response(200, &json!({ "session": loaded.session }))
            }
            Update::Conflict(current) => Err(Problem::new(
                409,
                format!(
                    "the session data is at version {}, not {}: reload and try again",
                    current.version,
                    body.version.unwrap_or_default()
                ),
            )
            .with("current_version", json!(current.version))
            .with("session", json!(current))),
            Update::Unauthenticated => Err(visit.unauthenticated()),
        }
    }
}

/// Which sessions a `DELETE` ends.
#[derive(Clone, Copy)]
enum Target {
    Current,
    One,
    All,
}

/// `DELETE /api/session` (sign out), `DELETE /api/sessions` (everywhere), `DELETE /api/sessions/{id}`.
pub(crate) struct SignOut<const T: u8>;

/// Sign out of this session.
pub(crate) type SignOutCurrent = SignOut<0>;
/// Revoke one of my sessions by id.
pub(crate) type RevokeOne = SignOut<1>;
/// Sign out everywhere.
pub(crate) type SignOutAll = SignOut<2>;

impl<const T: u8> SignOut<T> {
    const TARGET: Target = match T {
        0 => Target::Current,
        1 => Target::One,
        _ => Target::All,
    };
}

impl<const T: u8> Handler for SignOut<T> {
    type Pending = (Visit, String);

    async fn prepare(cx: &Cx, _: &Plan<'_, Tr>) -> Result<Self::Pending, Problem> {
        let id = cx.param("id").unwrap_or_default().to_owned();
        Ok((Visit::new(cx)?, id))
    }

    async fn respond(cx: &Cx, (visit, id): Self::Pending, _: Shared) -> Result<Reply, Problem> {
        if visit.token.is_none() {
            return Err(visit.unauthenticated());
        }
        let (which, ends_mine) = match Self::TARGET {
            Target::Current => (Revoke::Current, true),
            Target::All => (Revoke::All, true),
            Target::One => (
                Revoke::One(&id),
                visit.token().split('.').next() == Some(id.as_str()),
            ),
        };
        match visit.store(cx).revoke(visit.token(), which).await {
            Ok(Revoked::Ended(_)) => {
                if ends_mine {
                    cx.add_header("set-cookie", &visit.store.cookie.clear_cookie());
                }
                json_response(204, &Value::Null)
            }
            Ok(Revoked::NotFound) => Err(Problem::new(404, "no session of yours has this id")),
            Ok(Revoked::Unauthenticated) => Err(visit.unauthenticated()),
            Err(e) => Err(failed(&e)),
        }
    }
}

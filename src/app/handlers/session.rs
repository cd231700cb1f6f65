//! `/api/session` and `/api/sessions`: the demo's cookie sessions. Each route that touches Redis makes
//! exactly one round trip (one session script); the count is reported in the `redge-round-trips` header.
//!
//! CSRF: state-changing routes require an allowed `Origin` (see [`crate::session::origin`]), else 403.
//! Store down: 503 problem, and the cookie is left alone.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use worker::{Env, Request, Response};

use crate::Error;
use crate::app::{config, problem};
use crate::client::{Client, FetchTransport};
use crate::session::{Revoke, Revoked, SessionStore, Update, origin};

/// The largest request body read.
const MAX_BODY_BYTES: usize = 64 * 1024;

type Answer = worker::Result<Response>;

/// What every session route needs: the client, the settings and the cookie's token.
struct Ctx {
    client: Client<FetchTransport>,
    settings: config::SessionSettings,
    token: Option<String>,
}

impl Ctx {
    /// Reads configuration and the cookie, and applies the Origin check to state-changing methods.
    fn new(req: &Request, env: &Env) -> Result<Ctx, Answer> {
        let misconfigured = |m: String| Err(problem::problem(500, "Misconfigured", &m));
        let client = match config::client(env) {
            Ok(c) => c,
            Err(m) => return misconfigured(m),
        };
        let mut settings = match config::session(env) {
            Ok(s) => s,
            Err(m) => return misconfigured(m),
        };
        // The raw URL: `Request::url` parses it with the `url` crate, whose IDNA tables cost about 190 KB
        // of wasm; the origin check needs only the scheme and authority.
        let url = req.inner().url();
        settings.config.cookie.insecure_dev =
            settings.insecure_cookie && origin::is_loopback_http(&url);
        let method = req.method().to_string();
        let headers = req.headers();
        if origin::is_state_changing(&method) {
            let sent = headers.get("origin").ok().flatten();
            if !origin::origin_allowed(sent.as_deref(), &url, &settings.allowed_origins) {
                return Err(problem::problem(
                    403,
                    "Forbidden",
                    "this request changes the session, so it must come from an allowed Origin \
                     (this site, or one in SESSION_ALLOWED_ORIGINS)",
                ));
            }
        }
        let cookie = headers.get("cookie").ok().flatten().unwrap_or_default();
        let token = settings.config.cookie.read(&cookie).map(str::to_owned);
        Ok(Ctx {
            client,
            settings,
            token,
        })
    }

    fn store(&self) -> SessionStore<'_, FetchTransport> {
        SessionStore::new(&self.client, self.settings.config.clone())
    }

    fn token(&self) -> &str {
        self.token.as_deref().unwrap_or("")
    }

    /// A JSON answer with `no-store`, the round-trip count and, when given, a `Set-Cookie`.
    fn json(&self, status: u16, body: &Value, cookie: Option<String>) -> Answer {
        let response = if status == 204 {
            Response::empty()?.with_status(204)
        } else {
            Response::from_json(body)?.with_status(status)
        };
        self.finish(response, cookie)
    }

    fn finish(&self, mut response: Response, cookie: Option<String>) -> Answer {
        let headers = response.headers_mut();
        headers.set("cache-control", "no-store")?;
        headers.set(
            "redge-round-trips",
            &self.client.stats().round_trips.to_string(),
        )?;
        if let Some(cookie) = cookie {
            headers.append("set-cookie", &cookie)?;
        }
        Ok(response)
    }

    /// 401, clearing a cookie that names no live session (never used when the store failed).
    fn unauthenticated(&self) -> Answer {
        let response = problem::problem(401, "Unauthorized", "no valid session: sign in first")?;
        let clear = self
            .token
            .is_some()
            .then(|| self.settings.config.cookie.clear_cookie());
        self.finish(response, clear)
    }

    /// The store's error as a problem; the cookie is never touched here.
    fn failed(&self, error: &Error) -> Answer {
        let (status, title, detail) = if error.is_unavailable() {
            (
                503,
                "Session store unavailable",
                format!(
                    "the session store could not be reached ({error}); your session is kept: try again shortly"
                ),
            )
        } else if error.is_too_large() {
            (413, "Payload Too Large", error.to_string())
        } else if matches!(error, Error::InvalidArgument(_)) {
            (400, "Bad Request", error.to_string())
        } else {
            (500, "Session store error", error.to_string())
        };
        let mut response = problem::problem(status, title, &detail)?;
        if status == 503 {
            response.headers_mut().set("retry-after", "1")?;
        }
        self.finish(response, None)
    }
}

macro_rules! ctx {
    ($req:expr, $env:expr) => {
        match Ctx::new($req, $env) {
            Ok(ctx) => ctx,
            Err(answer) => return answer,
        }
    };
}

/// Reads a JSON body of at most [`MAX_BODY_BYTES`].
async fn body<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T, Answer> {
    let text = req.text().await.unwrap_or_default();
    if text.len() > MAX_BODY_BYTES {
        return Err(problem::problem(
            413,
            "Payload Too Large",
            &format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    serde_json::from_str(&text)
        .map_err(|e| problem::problem(400, "Bad Request", &format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
struct SignIn {
    user: String,
}

/// `POST /api/session {"user"}`: 201 and a cookie; replaces (rotates) the current session if any.
pub async fn sign_in(mut req: Request, env: Env) -> Answer {
    let ctx = ctx!(&req, &env);
    let SignIn { user } = match body(&mut req).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let store = ctx.store();
    match store
        .sign_in(user.trim(), &json!({}), ctx.token.as_deref())
        .await
    {
        Ok(issued) => {
            let cookie = store.set_cookie(&issued.token, &issued.session);
            ctx.json(201, &json!({ "session": issued.session }), Some(cookie))
        }
        Err(e) => ctx.failed(&e),
    }
}

/// `GET /api/session`: who am I (refreshes the session when due, then re-sends the cookie).
pub async fn current(req: Request, env: Env) -> Answer {
    let ctx = ctx!(&req, &env);
    let store = ctx.store();
    match store.load(ctx.token()).await {
        Ok(Some(loaded)) => {
            let cookie = loaded
                .refreshed
                .then(|| store.refresh_cookie(ctx.token(), &loaded.session));
            ctx.json(200, &json!({ "session": loaded.session }), cookie.flatten())
        }
        Ok(None) => ctx.unauthenticated(),
        Err(e) => ctx.failed(&e),
    }
}

#[derive(Deserialize)]
struct Patch {
    data: Map<String, Value>,
    #[serde(default)]
    version: Option<u64>,
}

/// `PATCH /api/session {"data", "version"?}`: 200, or 409 when `version` is stale.
pub async fn update(mut req: Request, env: Env) -> Answer {
    let ctx = ctx!(&req, &env);
    let Patch { data, version } = match body(&mut req).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let store = ctx.store();
    match store
        .update(ctx.token(), &Value::Object(data), version)
        .await
    {
        Ok(Update::Saved(loaded)) => {
            let cookie = loaded
                .refreshed
                .then(|| store.refresh_cookie(ctx.token(), &loaded.session));
            ctx.json(200, &json!({ "session": loaded.session }), cookie.flatten())
        }
        Ok(Update::Conflict(current)) => {
            let mut extensions = Map::new();
            extensions.insert("current_version".into(), json!(current.version));
            extensions.insert("session".into(), json!(current));
            let response = problem::problem_with(
                409,
                "Conflict",
                &format!(
                    "the session data is at version {}, not {}: reload and try again",
                    current.version,
                    version.unwrap_or_default()
                ),
                extensions,
            )?;
            ctx.finish(response, None)
        }
        Ok(Update::Unauthenticated) => ctx.unauthenticated(),
        Err(e) => ctx.failed(&e),
    }
}

/// `GET /api/sessions`: my live sessions.
pub async fn list(req: Request, env: Env) -> Answer {
    let ctx = ctx!(&req, &env);
    match ctx.store().list(ctx.token()).await {
        Ok(Some(sessions)) => ctx.json(200, &json!({ "sessions": sessions }), None),
        Ok(None) => ctx.unauthenticated(),
        Err(e) => ctx.failed(&e),
    }
}

/// `DELETE /api/session` (sign out), `DELETE /api/sessions` (everywhere), `DELETE /api/sessions/:id`.
pub async fn revoke(req: Request, env: Env, which: Revoke<'_>) -> Answer {
    let ctx = ctx!(&req, &env);
    let ends_mine = match which {
        Revoke::One(id) => ctx.token().split('.').next() == Some(id),
        Revoke::Current | Revoke::All => true,
    };
    match ctx.store().revoke(ctx.token(), which).await {
        Ok(Revoked::Ended(_)) => {
            let clear = ends_mine.then(|| ctx.settings.config.cookie.clear_cookie());
            ctx.json(204, &Value::Null, clear)
        }
        Ok(Revoked::NotFound) => {
            let response = problem::problem(404, "Not Found", "no session of yours has this id")?;
            ctx.finish(response, None)
        }
        Ok(Revoked::Unauthenticated) => ctx.unauthenticated(),
        Err(e) => ctx.failed(&e),
    }
}

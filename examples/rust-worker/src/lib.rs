//! A workers-rs Worker on redge: your own sign-in check, a session, and a rate-limited cached route.
//!
//! - `POST /sign-in` `{"user": "ada", "password": "..."}`: the password is checked here (against the
//!   `DEMO_PASSWORD` secret), and only then does redge create the session and its cookie.
//! - `GET /me`: who the session cookie belongs to; 401 without a valid one.
//! - `GET /item/:id`: an item from an origin (standing in for a database or an API), cached in Redis,
//!   5 requests a minute per client IP.
//!   The session load, the rate-limit check and the cache read share one Redis round trip (a
//!   [`redge::Plan`]), which waits no longer than the limiter's and the cache's deadlines allow.
//! - `POST /sign-out`: the session ends and the cookie is cleared.
use std::rc::Rc;

use redge::Plan;
use redge::cache::{Cache, CacheOptions, CacheState, Policy as CachePolicy};
use redge::client::{Client, FetchTransport, Json};
use redge::ratelimit::{Algorithm, Policy, Quota, RateLimiter, headers};
use redge::session::{Loaded, Revoke, SessionConfig, SessionStore, validate_user};
use serde_json::{Value, json};
use worker::{Context, Env, Method, Request, Response, Result, event};

type Store<'c> = SessionStore<'c, FetchTransport>;

thread_local! {
    // Built once per isolate: the limiter's block cache and the cache's single flight outlive a request.
    static LIMITER: redge::Result<Rc<RateLimiter>> =
        RateLimiter::new(vec![Policy::new("items", Algorithm::Gcra, Quota::per_minute(5))]).map(Rc::new);
    static CACHE: Rc<CacheState> = CacheState::new(CacheOptions::default());
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    let client = Rc::new(Client::from_env(&env)?);
    let mut config = SessionConfig::default();
    // Plain http://127.0.0.1 in development: a cookie without `__Host-` and `Secure`.
    config.cookie.insecure_dev = env
        .var("SESSION_COOKIE_INSECURE")
        .is_ok_and(|v| v.to_string() == "true");
    let store = SessionStore::new(&client, config);
    let header = req.headers().get("cookie")?.unwrap_or_default();
    let token = store
        .cookie_config()
        .read(&header)
        .unwrap_or_default()
        .to_owned();
    let path = req.path();
    match (req.method(), path.as_str()) {
        (Method::Post, "/sign-in") => {
            let body: Value = req.json().await.unwrap_or_default();
            let user = body["user"].as_str().unwrap_or_default();
            let password = body["password"].as_str().unwrap_or_default();
            // Your own credential check comes first; redge only issues the session after it.
            if validate_user(user).is_err()
                || !same(password, &env.secret("DEMO_PASSWORD")?.to_string())
            {
                return Response::error("wrong user or password", 401);
            }
            let issued = store.sign_in(user, &json!({}), Some(&token)).await?;
            let cookie = store.set_cookie(&issued.token, &issued.session);
            with(
                Response::from_json(&json!({ "user": user }))?,
                [("set-cookie", cookie)],
            )
        }
        (Method::Get, "/me") => match store.load(&token).await? {
            Some(loaded) => with(
                Response::from_json(&json!({ "user": loaded.session.user }))?,
                refresh(&store, &token, &loaded),
            ),
            None => Response::error("not signed in", 401),
        },
        (Method::Post, "/sign-out") => {
            store.revoke(&token, Revoke::Current).await?;
            with(
                Response::ok("signed out")?,
                [("set-cookie", store.cookie_config().clear_cookie())],
            )
        }
        (Method::Get, _) => match path
            .strip_prefix("/item/")
            .and_then(|id| id.parse::<u64>().ok())
        {
            Some(id) => item(&req, &client, &store, &token, id, ctx).await,
            None => Response::error("not found", 404),
        },
        _ => Response::error("not found", 404),
    }
}

async fn item(
    req: &Request,
    client: &Rc<Client<FetchTransport>>,
    store: &Store<'_>,
    token: &str,
    id: u64,
    ctx: Context,
) -> Result<Response> {
    let ip = req
        .headers()
        .get("cf-connecting-ip")?
        .unwrap_or_else(|| "unknown".into());
    let limiter = LIMITER.with(Clone::clone)?;
    let cache = Cache::new(Rc::clone(client), CACHE.with(Rc::clone))
        .spawner(move |task| ctx.wait_until(task));
    let policy = CachePolicy::new("items").ttl_ms(60_000).grace_ms(600_000);
    // Three capabilities, one round trip: each reads its own outcome once the plan is sent.
    let plan = Plan::new(client);
    let session = plan.load_session(store, token);
    let limit = plan.limit(&limiter, &[("items", &ip)], 1)?;
    let read = plan.lookup::<Json<Value>>(&cache, format!("item:{id}"), &policy);
    plan.send().await; // a failure reaches each outcome, which applies its own policy
    let decision = limit.finish();
    let mut out = headers::headers(&decision, false);
    if !decision.allowed {
        return with(Response::error("too many requests", 429)?, out);
    }
    let loaded = match session.finish() {
        Ok(loaded) => loaded,
        // Redis unavailable: 503 and the cookie left alone, never "signed out".
        Err(e) => return Response::error(e.to_string(), e.status()),
    };
    out.extend(loaded.as_ref().and_then(|l| refresh(store, token, l)));
    // A hit is served as it is; a miss calls the origin and writes its answer (one more round trip).
    let lookup = cache
        .resolve(read.finish(), move || origin(id))
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    out.push(("x-cache", lookup.status.as_str().to_owned()));
    let user = loaded.map(|l| l.session.user);
    match lookup.value {
        Some(Json(item)) => with(
            Response::from_json(&json!({ "item": item, "user": user }))?,
            out,
        ),
        None => with(Response::error(format!("no item {id}"), 404)?, out),
    }
}

/// Stands in for a database or an API: items 1 to 1000 exist.
async fn origin(id: u64) -> std::result::Result<Option<Json<Value>>, String> {
    Ok((1..=1000)
        .contains(&id)
        .then(|| Json(json!({ "id": id, "name": format!("Item {id}") }))))
}

/// The cookie again, with its new `Max-Age`, when this read extended the session.
fn refresh(store: &Store<'_>, token: &str, loaded: &Loaded) -> Option<(&'static str, String)> {
    let cookie = loaded
        .refreshed
        .then(|| store.refresh_cookie(token, &loaded.session));
    Some(("set-cookie", cookie.flatten()?))
}

/// Adds `headers` to `response`.
fn with(
    mut response: Response,
    headers: impl IntoIterator<Item = (&'static str, String)>,
) -> Result<Response> {
    for (name, value) in headers {
        response.headers_mut().set(name, &value)?;
    }
    Ok(response)
}

/// Compares without stopping at the first difference, so the time taken does not reveal the password.
fn same(given: &str, expected: &str) -> bool {
    let diff = given
        .bytes()
        .zip(expected.bytes())
        .fold(0, |acc, (a, b)| acc | (a ^ b));
    !expected.is_empty() && given.len() == expected.len() && diff == 0
}

//! The per-request context and the one-round-trip pipeline every API route runs through.
//!
//! # One round trip per request
//!
//! A request that needs Redis costs one HTTP round trip, however many parts of the Worker read from it.
//! [`run`] makes that structural:
//!
//! 1. `batch = cx.redis.batch()`: one shared [`Batch`] for the request;
//! 2. [`Middleware::prepare`] adds what every API route needs (rate limiting, session loading), and the
//!    route's [`Handler::prepare`] adds its own reads; neither sends anything;
//! 3. `batch.send()`: the one round trip (nothing is sent when nobody added anything);
//! 4. [`Middleware::finish`] reads its handles and applies each capability's failure policy (a denial
//!    answers 429 here, before the route runs); then [`Handler::respond`] reads the route's handles and
//!    builds the response. A handler that must write after reading (rotate a session, fill the cache on a
//!    miss) uses `cx.redis` again: that is a second, visible round trip, counted like the first.
//!
//! A request-level failure of the send is not returned by `run`: every handle of the batch carries it,
//! so each capability decides for itself (fail open, fail closed, go to origin).
//!
//! # Plugging a capability in
//!
//! As middleware (applies to every API route; the route table's [`Group`](super::routes::Group) picks a
//! policy or skips it):
//!
//! ```text
//! pub(crate) struct Middleware { ratelimit: Option<ratelimit::Pending> }   // the prepared handle
//! pub(crate) struct Shared { pub decision: Option<ratelimit::Decision> }    // what routes may read
//!
//! // prepare: ratelimit: policy_for(cx.route.group).map(|p| limiter.prepare(batch, p, &cx.identifier()))
//! // finish:  let decision = self.ratelimit.map(|p| p.finish());           // failure policy inside
//! //          cx.add_header("RateLimit", ...);                             // on every response
//! //          if denied { return Err(Problem::new(429, ..).with("decision", ..)) }
//! ```
//!
//! As a route: a unit struct implementing [`Handler`] in `handlers/<capability>.rs`, a row in
//! [`ROUTES`](super::routes::ROUTES) with a new [`RouteId`](super::routes::RouteId), and one arm in
//! [`dispatch`](super::dispatch)'s `match`. `prepare` validates the input (path parameters, query, JSON
//! body: all already read) and adds the route's reads with `capability.prepare(batch, ..)`; `respond`
//! calls `pending.finish()` and builds the JSON. A route with nothing to read uses `type Pending = ()`.
//!
//! Around it: a capability's settings are fields of [`Config`] (parsed in `Config::from_vars`, their
//! problems pushed to the same list, so one error still names everything); objects that live as long as
//! the isolate (a limiter with its local block cache, a cache with its single-flight table, the demo
//! origin's call counter) are `thread_local`s in `state.rs`, built from the config on first use; its
//! counters reach `GET /api/metrics` through `Registry::add` as things happen, or `Registry::set` in the
//! metrics handler at scrape time.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use worker::{Context, Env, Headers, Response};

use super::config::Config;
use super::problem::Problem;
use super::routes::{Method, Route, query_param};
use super::timing::{Entry, Meter, Metered};
use crate::client::{Batch, Client, FetchTransport};

/// The transport of every request's client: `fetch`, metered.
pub(crate) type Tr = Metered<FetchTransport>;
/// The Redis client of one request.
pub(crate) type Redis = Client<Tr>;

/// Response headers and `Server-Timing` entries added while handling a request; applied to whatever
/// response goes out, problems included.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    pub headers: RefCell<Vec<(String, String)>>,
    pub timings: RefCell<Vec<Entry>>,
}

/// Everything a handler may look at, read once before the route runs.
// Capability handlers use the fields and helpers that the operational routes do not.
#[allow(dead_code)]
pub(crate) struct Cx {
    /// The request method (`HEAD` when the `GET` route answers a `HEAD`).
    pub method: Method,
    /// The matched row of the route table.
    pub route: &'static Route,
    /// The request URL, as received.
    pub url: String,
    /// The request headers.
    pub headers: Headers,
    /// The validated configuration.
    pub config: Rc<Config>,
    /// This request's Redis client (metered: every round trip shows in `Server-Timing`); shared with
    /// background work such as a cache refresh.
    pub redis: Rc<Redis>,
    /// This request's round trips and Redis time.
    pub meter: Rc<Meter>,
    /// The Worker's bindings.
    pub env: Env,
    /// For `wait_until` (background revalidation, for example).
    pub ctx: Rc<Context>,
    pub(crate) params: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) extras: Rc<Extras>,
}

#[allow(dead_code)]
impl Cx {
    /// A path parameter of the route's pattern (`{id}`), percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter with this name, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(&self.url, name)
    }

    /// A request header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// The JSON body.
    ///
    /// # Errors
    /// 400 when the body is empty or is not JSON of the expected shape.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        self.optional_json()?
            .ok_or_else(|| Problem::bad_request("this route needs a JSON body"))
    }

    /// The JSON body, or `None` when the request has none.
    ///
    /// # Errors
    /// 400 when a body is present and is not JSON of the expected shape.
    pub fn optional_json<T: DeserializeOwned>(&self) -> Result<Option<T>, Problem> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body).map(Some).map_err(|e| {
            Problem::bad_request(format!("the body is not valid JSON for this route: {e}"))
        })
    }

    /// Adds a header to the response, whatever it turns out to be (also a problem).
    pub fn add_header(&self, name: &str, value: &str) {
        self.extras
            .headers
            .borrow_mut()
            .push((name.to_owned(), value.to_owned()));
    }

    /// Adds a `Server-Timing` entry (between `redis` and `total`).
    pub fn add_timing(&self, name: &str, dur_ms: Option<u64>, desc: Option<&str>) {
        self.extras.timings.borrow_mut().push(Entry {
            name: name.to_owned(),
            dur_ms,
            desc: desc.map(str::to_owned),
        });
    }
}

/// A route: reads added to the request's shared batch, then a response built from them.
pub(crate) trait Handler {
    /// What `prepare` hands to `respond` (handles, validated input).
    type Pending;

    /// Validates the input and adds the route's Redis reads to `batch`. Sends nothing.
    ///
    /// # Errors
    /// A problem (400 ...) answered after the middleware ran: a bad request is still rate limited.
    fn prepare(cx: &Cx, batch: &Batch<'_, Tr>) -> Result<Self::Pending, Problem>;

    /// Reads the handles (the batch was sent) and builds the response.
    ///
    /// # Errors
    /// A problem for the client.
    #[allow(async_fn_in_trait)]
    async fn respond(cx: &Cx, pending: Self::Pending, shared: Shared) -> Result<Response, Problem>;
}

/// The middleware's prepared reads. Each capability that applies to every API route adds a field with
/// its pending value (see the [module docs](self)); there is none yet.
pub(crate) struct Middleware {}

/// What the middleware learned, handed to the route (the rate-limit decision, the session ...).
pub(crate) struct Shared {}

impl Middleware {
    /// Adds every middleware read to the shared batch.
    pub fn prepare(_cx: &Cx, _batch: &Batch<'_, Tr>) -> Middleware {
        Middleware {}
    }

    /// Reads the middleware's handles after the send; a denial (429, 401 ...) is an `Err`.
    ///
    /// # Errors
    /// The problem that ends the request before the route runs.
    pub fn finish(self, _cx: &Cx) -> Result<Shared, Problem> {
        Ok(Shared {})
    }
}

/// A JSON response with `status` (no body for 204).
///
/// # Errors
/// 500 when the runtime cannot build the response.
pub(crate) fn json_response(status: u16, body: &serde_json::Value) -> Result<Response, Problem> {
    let response = if status == 204 {
        Response::empty()
    } else {
        Response::from_json(body)
    };
    response
        .map(|r| r.with_status(status))
        .map_err(|e| Problem::new(500, format!("could not build the response: {e}")))
}

/// Runs route `H` with the middleware, in one round trip (see the [module docs](self)).
pub(crate) async fn run<H: Handler>(cx: &Cx) -> Result<Response, Problem> {
    let batch = cx.redis.batch();
    let middleware = Middleware::prepare(cx, &batch);
    let pending = H::prepare(cx, &batch);
    // The one round trip. Its failure is in every handle; each reader applies its own policy.
    let _ = batch.send().await;
    let shared = middleware.finish(cx)?;
    H::respond(cx, pending?, shared).await
}

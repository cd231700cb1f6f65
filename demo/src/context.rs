//! The per-request context and the one-round-trip pipeline every API route runs through.
//!
//! # One round trip per request
//!
//! A request that needs Redis costs one HTTP round trip, however many parts of the Worker read from it.
//! [`run`] makes that structural:
//!
//! 1. `plan = Plan::new(&cx.redis)`: the library's request plan ([`redge::Plan`]) for the request;
//! 2. [`Middleware::prepare`] adds what every API route needs (rate limiting, session loading), and the
//!    route's [`Handler::prepare`] adds its own reads, each with its wait; neither sends anything (a
//!    route's `prepare` may first ask the location's cache, which is not Redis: a lookup answered there
//!    adds nothing, and the route limit does not charge a request without Redis work);
//! 3. `plan.send()`: the one round trip (nothing is sent when nobody added anything), cut short at the
//!    shortest deadline of the parts that fail open (the rate-limit check's `RATELIMIT_TIMEOUT_MS`, the
//!    cache's `CACHE_DEADLINE_MS`) unless a part needs the answer (a session: fail closed), see
//!    [`Wait`](redge::plan::Wait);
//! 4. [`Middleware::finish`] reads its handles and applies each capability's failure policy (a denial
//!    answers 429 here, before the route runs, with the `RateLimit` headers that every response of a
//!    limited group carries); then [`Handler::respond`] reads the route's handles and builds the
//!    response. A handler that must write after reading (sign in, update a session, fill the cache on a
//!    miss) uses `cx.redis` again: that is a second, visible round trip, counted like the first. A write
//!    is never sent before the rate-limit decision: a refused request writes nothing.
//!
//! A request-level failure of the send is not returned by `run`: every handle of the batch carries it,
//! so each capability decides for itself (fail open, fail closed, go to origin).
//!
//! # The middleware
//!
//! - Rate limiting: the route group's policy (`RATELIMIT_ROUTES`, see
//!   [`route_limits`](super::route_limits)), spent by the client's key (its IP address, or its IPv6
//!   /64, from the header `TRUSTED_CLIENT_IP_HEADER` names: see [`client_ip`](super::client_ip)), the
//!   route's cost per
//!   request (its Redis work; a route with none is not checked). The decision is in
//!   [`Shared::decision`]; the rate-limit demo routes report their own policy's headers instead.
//! - Session loading, on the groups whose [`Group::loads_session`](super::routes::Group::loads_session)
//!   says so, only when a cookie is sent: the result is in [`Shared::session`] and a refreshed session's
//!   cookie is sent again. A route that needs the session decides what a failure means (the dashboard
//!   fails closed); the others ignore it.
//!
//! # Plugging a capability in
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

use super::client_ip::ClientKey;
use super::config::Config;
use super::handlers::session::Visit;
use super::problem::Problem;
use super::reply::Reply;
use super::routes::{Method, Route, query_param};
use super::runtime::Runtime;
use super::state;
use super::timing::{self, Entry, Meter, Metered};
use redge::client::{Client, FetchTransport};
use redge::clock::SystemClock;
use redge::plan::Plan;
use redge::ratelimit::{self, Decision, headers};
use redge::session::{self, Loaded};

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
    /// The runtime's side of the request: its headers, `wait_until`.
    pub runtime: Rc<dyn Runtime>,
    /// The validated configuration.
    pub config: Rc<Config>,
    /// This request's Redis client (metered: every round trip shows in `Server-Timing`); shared with
    /// background work such as a cache refresh.
    pub redis: Rc<Redis>,
    /// This request's round trips and Redis time.
    pub meter: Rc<Meter>,
    pub(crate) params: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    /// The client's rate-limit key (see [`client_ip`](super::client_ip)).
    pub(crate) client: ClientKey,
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
        self.runtime.header(name)
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

    /// Validates the input and adds the route's Redis reads to `plan`, each with how long it may wait.
    /// Sends nothing to Redis; it may await local work that decides whether a read is needed at all
    /// (the cache's colo tier: a hit there adds nothing).
    ///
    /// # Errors
    /// A problem (400 ...) answered after the middleware ran: a bad request is still rate limited.
    #[allow(async_fn_in_trait)]
    async fn prepare(cx: &Cx, plan: &Plan<'_, Tr>) -> Result<Self::Pending, Problem>;

    /// Whether this request needs Redis at all (the route limit charges only those). The default says
    /// yes; a route whose answer can be known without Redis (a rate-limit check its limiter already
    /// knows is refused) says so.
    fn has_redis_work(_cx: &Cx, _pending: &Self::Pending) -> bool {
        true
    }

    /// Reads the handles (the batch was sent) and builds the response.
    ///
    /// # Errors
    /// A problem for the client.
    #[allow(async_fn_in_trait)]
    async fn respond(cx: &Cx, pending: Self::Pending, shared: Shared) -> Result<Reply, Problem>;
}

/// The middleware's prepared reads: the route group's rate-limit check and, on groups that load it,
/// the visitor's session (only when a cookie is sent: no cookie, no Redis command).
pub(crate) struct Middleware {
    ratelimit: Option<ratelimit::Pending<'static, SystemClock>>,
    session: Option<(Visit, Option<session::Pending<Option<Loaded>>>)>,
}

/// The visitor's session as the middleware loaded it.
pub(crate) struct SessionRead {
    /// The cookie and the store settings.
    pub visit: Visit,
    /// `None` without a cookie; else the load's outcome (`Ok(None)`: the cookie names no live session).
    pub loaded: Option<redge::Result<Option<Loaded>>>,
}

/// What the middleware learned, handed to the route.
pub(crate) struct Shared {
    /// The rate-limit decision, when the route's group is limited (it was allowed, or the route would
    /// not run).
    pub decision: Option<Decision>,
    /// The session, on groups that load it.
    pub session: Option<SessionRead>,
}

/// Counts a rate-limit decision for `GET /api/metrics` (policy names are configured, so bounded).
pub(crate) fn count_decision(decision: &Decision) {
    state::metrics(|m| {
        m.add(
            "redge_ratelimit_decisions_total",
            "Rate-limit decisions, by policy, outcome and reason.",
            &[
                ("policy", decision.policy.as_str()),
                (
                    "outcome",
                    if decision.allowed {
                        "allowed"
                    } else {
                        "refused"
                    },
                ),
                ("reason", decision.reason.name()),
            ],
            1.0,
        );
    });
}

/// Renews the leases of hot keys that are due, after the response (nothing when leasing is off or
/// nothing is due).
pub(crate) fn spawn_lease_renewals(cx: &Cx) {
    if let Ok(limiter) = state::limiter(&cx.config) {
        let (runtime, meter) = (Rc::clone(&cx.runtime), Rc::clone(&cx.meter));
        // One renewal round trip each, off the critical path and announced as `bg`.
        let spawn = move |task| spawn_background(runtime.as_ref(), &meter, 1, task);
        limiter.spawn_lease_renewals(Rc::clone(&cx.redis), &spawn);
    }
}

impl Middleware {
    /// Adds every middleware read to the request's plan (each with its wait). `charge: false` skips the
    /// route limit (the route has no Redis work this time).
    ///
    /// # Errors
    /// 500 when the rate limiter cannot be built from the configuration.
    pub fn prepare(cx: &Cx, plan: &Plan<'_, Tr>, charge: bool) -> Result<Middleware, Problem> {
        let policy = cx.config.ratelimit.routes.policy_for(cx.route.group);
        let ratelimit = match policy.filter(|_| charge && cx.route.cost > 0) {
            None => None,
            Some(policy) => {
                let limiter = state::limiter(&cx.config).map_err(|m| Problem::new(500, m))?;
                let pending = plan
                    .limit(limiter, &[(policy, cx.client.as_str())], cx.route.cost)
                    .map_err(|e| Problem::new(500, format!("the route's rate limit: {e}")))?;
                Some(pending)
            }
        };
        let session = cx.route.group.loads_session().then(|| {
            let visit = Visit::read(cx);
            let pending = visit.prepare_load(cx, plan);
            (visit, pending)
        });
        Ok(Middleware { ratelimit, session })
    }

    /// Reads the middleware's handles after the send: the `RateLimit` headers go on every response; a
    /// refusal is a 429 problem before the route runs.
    ///
    /// # Errors
    /// The problem that ends the request before the route runs.
    pub fn finish(self, cx: &Cx) -> Result<Shared, Problem> {
        let decision = self.ratelimit.map(ratelimit::Pending::finish);
        if let Some(decision) = &decision {
            count_decision(decision);
            spawn_lease_renewals(cx);
            if !cx.route.group.reports_own_limit() || !decision.allowed {
                for (name, value) in headers::headers(decision, cx.config.ratelimit.legacy_headers)
                {
                    cx.add_header(name, &value);
                }
            }
            if !decision.allowed {
                return Err(Problem::new(
                    429,
                    format!(
                        "too many requests to these routes ({:?}: {}); retry in {} ms",
                        decision.policy,
                        decision.reason.name(),
                        decision.retry_after_ms
                    ),
                )
                .with(
                    "decision",
                    serde_json::to_value(decision).unwrap_or(serde_json::Value::Null),
                ));
            }
        }
        let session = self.session.map(|(visit, pending)| {
            let loaded = pending.map(session::Pending::finish);
            if let Some(Ok(Some(loaded))) = &loaded {
                visit.resend_if_refreshed(cx, loaded);
            }
            SessionRead { visit, loaded }
        });
        Ok(Shared { decision, session })
    }
}

/// A JSON response with `status` (no body for 204).
///
/// # Errors
/// 500 when the runtime cannot build the response.
pub(crate) fn json_response(status: u16, body: &serde_json::Value) -> Result<Reply, Problem> {
    if status == 204 {
        return Ok(Reply::empty(204));
    }
    Reply::json(status, body)
        .map_err(|e| Problem::new(500, format!("could not build the response: {e}")))
}

/// Starts `task` after the response (`ctx.waitUntil`) as background work of the request `meter` belongs
/// to: `planned` round trips are announced in the response's `Server-Timing` (`bg`); the round trips it
/// makes are kept off the critical path and added to `redge_redis_background_round_trips_total` when it
/// ends.
pub(crate) fn spawn_background(
    runtime: &dyn Runtime,
    meter: &Rc<Meter>,
    planned: u64,
    task: impl Future<Output = ()> + 'static,
) {
    meter.schedule(planned);
    let meter = Rc::clone(meter);
    runtime.wait_until(Box::pin(async move {
        let before = meter.background_round_trips();
        timing::background(Rc::clone(&meter), task).await;
        let made = meter.background_round_trips().saturating_sub(before);
        state::metrics(|m| {
            m.add(
                "redge_redis_background_round_trips_total",
                "HTTP round trips to the Redis service made after the response (refreshes, metrics flushes).",
                &[],
                made as f64,
            );
        });
    }));
}

/// Runs route `H` with the middleware, in one round trip (see the [module docs](self)).
pub(crate) async fn run<H: Handler>(cx: &Cx) -> Result<Reply, Problem> {
    let plan = Plan::new(&cx.redis);
    // The route first: whether it has Redis work decides whether the route limit charges it. The
    // order inside the batch does not matter (reads only, answered together).
    let pending = H::prepare(cx, &plan).await;
    let charge = match &pending {
        Ok(pending) => H::has_redis_work(cx, pending),
        // A bad request is still rate limited.
        Err(_) => true,
    };
    let middleware = Middleware::prepare(cx, &plan, charge)?;
    // The one round trip. Its failure is in every handle; each reader applies its own policy.
    let _ = plan.send().await;
    let shared = middleware.finish(cx)?;
    H::respond(cx, pending?, shared).await
}

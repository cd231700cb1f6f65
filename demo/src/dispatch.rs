//! From a request to a response: configuration, CORS, routing, the body, the handler, then the headers
//! every response carries (`Server-Timing`, `Vary`, CORS, `Cache-Control`) and the isolate's metrics.
//!
//! Nothing here returns an error to the runtime: every failure becomes a problem response, and a
//! failure to build even that becomes a plain 500.

use std::rc::Rc;

use js_sys::Uint8Array;
use serde_json::json;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{Context, Env, Headers};

use super::runtime::{self, Level, Runtime, Task};

use super::client_ip::{ClientKey, client_key};
use super::config::{Config, ConfigError};
use super::context::{Cx, Extras, spawn_background};
use super::cors::{self, Cors, Preflight};
use super::handlers::{self, metrics};
use super::problem::Problem;
use super::reply::Reply;
use super::routes::{self, Method, Resolution};
use super::timing::{self, Meter, Metered};
use super::{metrics as registry, state};
use redge::client::{Client, FetchTransport, Options};
use redge::clock::{Clock, SystemClock};
use redge::origin::Origin;

/// The largest request body the API reads; every route's body is a small JSON object.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How much of an oversized body is read and dropped before its 413; past it the upload is cancelled.
const MAX_DRAIN_BYTES: usize = 1024 * 1024;

/// The request as the runtime hands it over, read once. The Worker takes the runtime's request object
/// itself rather than `worker::Request`, whose conversion also reads `request.cf` (a large object
/// turned into a Rust value on every request, and no route looks at it).
struct Incoming {
    raw: web_sys::Request,
    url: String,
    headers: Headers,
}

impl Incoming {
    fn new(raw: web_sys::Request) -> Incoming {
        Incoming {
            url: raw.url(),
            headers: Headers(raw.headers()),
            raw,
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }
}

/// The runtime's side of a request, for the handlers (see [`Runtime`]).
struct JsRuntime {
    headers: Headers,
    ctx: Context,
}

impl Runtime for JsRuntime {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    fn wait_until(&self, task: Task) {
        self.ctx.wait_until(task);
    }
}

/// A Worker's var or secret (vars first).
fn env_var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .or_else(|_| env.secret(name).map(|v| v.to_string()))
        .ok()
}

/// What the metrics and headers step needs to know about a request.
struct Facts {
    method: Method,
    route: &'static str,
    origin: Option<String>,
    own_origin: Option<Origin>,
    cors_origins: Vec<Origin>,
    preflight: bool,
}

/// Answers one request.
pub(crate) async fn handle(raw: web_sys::Request, env: Env, ctx: Context) -> web_sys::Response {
    let started = SystemClock.now_ms();
    let meter = Meter::new();
    let extras = Rc::new(Extras::default());
    let req = Incoming::new(raw);
    let mut facts = Facts {
        method: Method::parse(&req.raw.method()),
        route: "unmatched",
        origin: req.header("origin"),
        own_origin: Origin::of_url(&req.url).ok(),
        cors_origins: Vec::new(),
        preflight: false,
    };
    let runtime = Rc::new(JsRuntime {
        headers: Headers(req.raw.headers()),
        ctx,
    });
    let config = state::config(|name| env_var(&env, name));
    let outcome = respond(
        req,
        config.clone(),
        Rc::clone(&runtime) as Rc<dyn Runtime>,
        &meter,
        &extras,
        &mut facts,
    )
    .await;
    let reply = match outcome {
        Ok(reply) => reply,
        Err(problem) => {
            if problem.status >= 500 {
                log_server_error(&facts, &problem);
            }
            problem.into_reply()
        }
    };
    let total_ms = SystemClock.now_ms().saturating_sub(started);
    record(reply.status(), &meter, &facts, total_ms);
    // This isolate's share of the deployment's metrics (this request's included), in the background
    // (see handlers/metrics.rs): one round trip, announced in this response's `Server-Timing`.
    if let Ok(config) = config
        && state::metrics_flush_due(SystemClock.now_ms(), config.metrics.flush_ms)
        && let Some(flush) = metrics::flush(config, Rc::clone(&meter))
    {
        spawn_background(runtime.as_ref(), &meter, 1, flush);
    }
    into_runtime(finish(reply, &meter, &extras, &facts, total_ms))
}

async fn respond(
    req: Incoming,
    config: Result<Rc<Config>, ConfigError>,
    runtime: Rc<dyn Runtime>,
    meter: &Rc<Meter>,
    extras: &Rc<Extras>,
    facts: &mut Facts,
) -> Result<Reply, Problem> {
    let path = routes::path_of(&req.url).to_owned();
    let config = config.map_err(|e| {
        let errors: Vec<_> = e
            .problems
            .iter()
            .map(|(var, message)| json!({ "variable": var, "message": message }))
            .collect();
        Problem::new(500, e.to_string()).with("errors", json!(errors))
    })?;
    facts.cors_origins.clone_from(&config.cors.allowed_origins);

    if facts.method == Method::Options {
        facts.route = "preflight";
        return options(&req, &path, facts);
    }

    let (route, params) = match routes::resolve(facts.method, &path) {
        Resolution::Found { route, params } => (route, params),
        Resolution::MethodNotAllowed { allow } => {
            return Err(Problem::method_not_allowed(
                facts.method.as_str(),
                &path,
                &allow,
            ));
        }
        Resolution::BadPath { detail } => return Err(Problem::bad_request(detail)),
        Resolution::NotFound => return Err(Problem::not_found(&path)),
    };
    facts.route = route.pattern;

    let body = if facts.method.has_body() {
        read_body(&req).await?
    } else {
        Vec::new()
    };
    let client = client_key(
        &config.ratelimit.client_ip,
        |name| req.header(name),
        || from_cloudflare(&req.raw),
    );
    if client == ClientKey::Unknown {
        state::warn_unknown_client_once();
    }
    let transport = Metered::new(FetchTransport, Rc::clone(meter));
    let options = Options {
        timeout_ms: config.redis_timeout_ms,
        ..Options::default()
    };
    let redis = Client::with_transport(&config.redis_url, &config.redis_token, transport)
        .map_err(Problem::from)?
        .options(options);
    redis.set_sync_token(state::sync_token());
    let cx = Cx {
        method: facts.method,
        route,
        url: req.url,
        runtime,
        config,
        redis: Rc::new(redis),
        meter: Rc::clone(meter),
        params,
        body,
        client,
        extras: Rc::clone(extras),
    };
    let result = handlers::run_route(&cx).await;
    state::set_sync_token(cx.redis.sync_token());
    result
}

/// One structured log line per 5xx (`wrangler tail`, Workers Logs): the route pattern, never the path
/// (it may hold identifiers), and the problem's own text, which never holds a token, a cookie value or
/// a URL's credentials.
fn log_server_error(facts: &Facts, problem: &Problem) {
    let line = json!({
        "level": "error",
        "event": "server_error",
        "status": problem.status,
        "method": facts.method.as_str(),
        "route": facts.route,
        "title": problem.title,
        "detail": problem.detail,
    });
    runtime::log(Level::Error, &line.to_string());
}

/// Whether the request came through Cloudflare's edge (or `wrangler dev`, which plays it): it carries a
/// `cf` object with a `colo`. Read with two property lookups, not a conversion of the whole object.
fn from_cloudflare(raw: &web_sys::Request) -> bool {
    js_sys::Reflect::get(raw, &"cf".into())
        .ok()
        .filter(|cf| cf.is_object())
        .and_then(|cf| js_sys::Reflect::get(&cf, &"colo".into()).ok())
        .is_some_and(|colo| colo.as_string().is_some_and(|c| !c.is_empty()))
}

/// `OPTIONS`: a CORS preflight, or a plain request for the methods of a path.
fn options(req: &Incoming, path: &str, facts: &mut Facts) -> Result<Reply, Problem> {
    let header = |name: &str| req.header(name);
    let Some(method) = header("access-control-request-method") else {
        return match routes::resolve(Method::Other, path) {
            Resolution::MethodNotAllowed { allow } => {
                let mut reply = Reply::empty(204);
                reply.set("allow", &allow);
                Ok(reply)
            }
            _ => Err(Problem::not_found(path)),
        };
    };
    facts.preflight = true;
    let cors = Cors::new(&facts.cors_origins, facts.own_origin.as_ref());
    let requested_headers = header("access-control-request-headers");
    match cors.preflight(
        facts.origin.as_deref(),
        &method,
        requested_headers.as_deref(),
    ) {
        Preflight::Allowed(headers) => {
            let mut reply = Reply::empty(204);
            for (name, value) in headers {
                reply.set(name, &value);
            }
            Ok(reply)
        }
        Preflight::Refused(why) => {
            let mut problem = Problem::new(403, why);
            for (name, value) in cors::preflight_vary() {
                problem = problem.header(name, &value);
            }
            Err(problem)
        }
    }
}

/// The body, refused over [`MAX_BODY_BYTES`]: at once when `Content-Length` says so, otherwise while
/// reading. An upload without a length is read chunk by chunk and nothing past the cap is kept: the
/// rest is dropped up to [`MAX_DRAIN_BYTES`], then the upload is cancelled and answered 413 while the
/// client may still be sending.
async fn read_body(req: &Incoming) -> Result<Vec<u8>, Problem> {
    let too_large = || {
        Problem::new(
            413,
            format!("the request body is over {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let unreadable = |e: wasm_bindgen::JsValue| {
        let why = e
            .dyn_ref::<js_sys::Error>()
            .map_or_else(|| format!("{e:?}"), |e| String::from(e.message()));
        Problem::bad_request(format!("the request body could not be read: {why}"))
    };
    let not_bytes = || Problem::bad_request("the request body could not be read: not bytes");
    // `request.body` and its reader through property lookups: no web-sys stream bindings needed.
    let stream = js_sys::Reflect::get(&req.raw, &"body".into()).map_err(unreadable)?;
    if stream.is_null() || stream.is_undefined() {
        return Ok(Vec::new());
    }
    let reader = call_method(&stream, "getReader").map_err(unreadable)?;
    let mut body = Vec::new();
    loop {
        let promise = call_method(&reader, "read").map_err(unreadable)?;
        let chunk = JsFuture::from(js_sys::Promise::from(promise))
            .await
            .map_err(unreadable)?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map_err(unreadable)?;
        if done.is_truthy() {
            return Ok(body);
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(unreadable)?;
        let Some(bytes) = value.dyn_ref::<Uint8Array>() else {
            return Err(not_bytes());
        };
        if body.len() + bytes.length() as usize > MAX_BODY_BYTES {
            // Nothing more is kept. The rest is read and dropped up to a bound, so that a body a little
            // over the cap ends cleanly (`wrangler dev` holds up the next request on a connection whose
            // body was left unread); past the bound the upload is cancelled.
            drain(&reader, MAX_DRAIN_BYTES).await;
            return Err(too_large());
        }
        let start = body.len();
        body.resize(start + bytes.length() as usize, 0);
        bytes.copy_to(&mut body[start..]);
    }
}

/// Reads and drops what is left of a body, at most `limit` bytes; past that, or when a read fails (the
/// client went away), cancels the stream.
async fn drain(reader: &wasm_bindgen::JsValue, limit: usize) {
    let mut dropped = 0usize;
    while dropped <= limit {
        let Ok(promise) = call_method(reader, "read") else {
            break;
        };
        let Ok(chunk) = JsFuture::from(js_sys::Promise::from(promise)).await else {
            break;
        };
        if js_sys::Reflect::get(&chunk, &"done".into()).is_ok_and(|d| d.is_truthy()) {
            return;
        }
        dropped += js_sys::Reflect::get(&chunk, &"value".into())
            .ok()
            .and_then(|v| v.dyn_into::<Uint8Array>().ok())
            .map_or(0, |b| b.length() as usize);
    }
    let _ = call_method(reader, "cancel");
}

/// Calls `target.name()` (a JavaScript method without arguments).
fn call_method(
    target: &wasm_bindgen::JsValue,
    name: &str,
) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    let method = js_sys::Reflect::get(target, &name.into())?;
    let method = method
        .dyn_into::<js_sys::Function>()
        .map_err(|_| wasm_bindgen::JsValue::from_str(&format!("{name} is not a method")))?;
    method.call0(target)
}

/// Headers every response carries.
fn finish(mut reply: Reply, meter: &Meter, extras: &Extras, facts: &Facts, total_ms: u64) -> Reply {
    let timing = timing::server_timing(
        meter.round_trips(),
        meter.redis_ms(),
        meter.scheduled(),
        &extras.timings.borrow(),
        total_ms,
    );
    if reply.header("cache-control").is_none() {
        reply.set("cache-control", "no-store");
    }
    for (name, value) in extras.headers.borrow().iter() {
        reply.set(name, value);
    }
    reply.set("server-timing", &timing);
    if !facts.preflight {
        let cors = Cors::new(&facts.cors_origins, facts.own_origin.as_ref());
        for (name, value) in cors.response_headers(facts.origin.as_deref()) {
            reply.set(name, &value);
        }
    }
    reply
}

fn record(status: u16, meter: &Meter, facts: &Facts, total_ms: u64) {
    let status = status.to_string();
    let round_trips = meter.round_trips();
    state::metrics(|m| {
        m.add(
            "redge_http_requests_total",
            "API requests answered by this isolate, by method, route pattern and status.",
            &[
                ("method", facts.method.as_str()),
                ("route", facts.route),
                ("status", &status),
            ],
            1.0,
        );
        m.observe(
            "redge_http_request_duration_seconds",
            "Time from a request entering the Worker to its response (Workers clock: advances on I/O only).",
            registry::LATENCY_BUCKETS,
            &[("route", facts.route)],
            total_ms as f64 / 1000.0,
        );
        m.observe(
            "redge_redis_round_trips_per_request",
            "Redis HTTP round trips each API request needed (the goal is at most one).",
            &[0.0, 1.0, 2.0, 3.0, 5.0],
            &[("route", facts.route)],
            round_trips as f64,
        );
        m.add(
            "redge_redis_round_trips_total",
            "HTTP round trips to the Redis service on requests' critical path, retries included.",
            &[],
            round_trips as f64,
        );
        m.add(
            "redge_redis_failures_total",
            "Redis round trips that got no HTTP response (unreachable, reset, deadline passed).",
            &[],
            meter.failures() as f64,
        );
        for ms in meter.durations_ms() {
            m.observe(
                "redge_redis_round_trip_duration_seconds",
                "Time until the Redis service's HTTP response arrived, per round trip.",
                registry::LATENCY_BUCKETS,
                &[],
                ms as f64 / 1000.0,
            );
        }
    });
}

/// The runtime's response object, built in one go: the headers cross as one JSON text (one
/// `JSON.parse`), the body as one string. Nothing here panics: should the runtime refuse a header
/// value, the headers are set one by one without it; should it refuse the response, the answer is
/// `Response.error()`.
fn into_runtime(reply: Reply) -> web_sys::Response {
    let init = web_sys::ResponseInit::new();
    init.set_status(reply.status());
    let build = |init: &web_sys::ResponseInit| {
        web_sys::Response::new_with_opt_str_and_init(reply.body(), init)
    };
    if let Ok(headers) = js_sys::JSON::parse(&reply.headers_json()) {
        init.set_headers(&headers);
        if let Ok(response) = build(&init) {
            return response;
        }
    }
    let Ok(headers) = web_sys::Headers::new() else {
        return web_sys::Response::error();
    };
    for (name, value) in reply.headers() {
        let _ = headers.set(name, value);
    }
    init.set_headers(&headers);
    build(&init).unwrap_or_else(|_| web_sys::Response::error())
}

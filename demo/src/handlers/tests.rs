//! The handlers run natively, with the middleware, behind a test [`Runtime`]: routing, input checks and
//! every capability's failure policy. Natively the library's `fetch` transport fails every call, so Redis
//! is unreachable here; the same routes against real Redis run in workerd (`tests/e2e`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pollster::block_on;
use redge::client::{Client, FetchTransport, Options, TOKEN_VAR, URL_VAR};
use redge::session::{Random, Token};
use serde_json::Value;

use super::run_route;
use crate::client_ip::client_key;
use crate::config::Config;
use crate::context::{Cx, Extras};
use crate::reply::Reply;
use crate::routes::{self, Method, Resolution};
use crate::runtime::{Runtime, Task};
use crate::timing::{Meter, Metered};

const BASE: &str = "http://127.0.0.1:8787";

/// Headers from a list, and the tasks handed to `wait_until`.
struct TestRuntime {
    headers: Vec<(String, String)>,
    tasks: RefCell<Vec<Task>>,
}

impl Runtime for TestRuntime {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn wait_until(&self, task: Task) {
        self.tasks.borrow_mut().push(task);
    }
}

/// Answers one request as the Worker would (minus the headers every response gets), with Redis
/// unreachable. `vars` add to a valid configuration.
fn send(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    vars: &[(&str, &str)],
) -> Reply {
    let mut all = vec![
        (URL_VAR, "http://127.0.0.1:9"),
        (TOKEN_VAR, "test-token"),
        ("SESSION_COOKIE_INSECURE", "true"),
        ("DEMO_ORIGIN_LATENCY_MS", "0"),
    ];
    all.extend_from_slice(vars);
    let config = Rc::new(
        Config::from_vars(|name| {
            all.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap_or_else(|e| panic!("test configuration: {e}")),
    );
    let mut sent: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    sent.push(("cf-connecting-ip".into(), "203.0.113.7".into()));
    let runtime = Rc::new(TestRuntime {
        headers: sent,
        tasks: RefCell::default(),
    });
    let url = format!("{BASE}{path}");
    let (route, params) = match routes::resolve(method, routes::path_of(&url)) {
        Resolution::Found { route, params } => (route, params),
        _ => panic!("no route for {path}"),
    };
    let meter = Meter::new();
    let redis = Client::with_transport(
        &config.redis_url,
        &config.redis_token,
        Metered::new(FetchTransport, Rc::clone(&meter)),
    )
    .unwrap()
    .options(Options {
        retries: 0,
        ..Options::default()
    });
    let client = client_key(&config.ratelimit.client_ip, |n| runtime.header(n), || true);
    let cx = Cx {
        method,
        route,
        url,
        runtime: Rc::clone(&runtime) as Rc<dyn Runtime>,
        config,
        redis: Rc::new(redis),
        meter,
        params,
        body: body.as_bytes().to_vec(),
        client,
        extras: Rc::new(Extras::default()),
    };
    let reply = block_on(run_route(&cx)).unwrap_or_else(|problem| problem.into_reply());
    let mut reply = reply;
    for (name, value) in cx.extras.headers.borrow().iter() {
        reply.set(name, value);
    }
    reply
}

fn json(reply: &Reply) -> Value {
    serde_json::from_str(reply.body().unwrap_or("null")).unwrap_or(Value::Null)
}

struct Seq(Cell<u8>);

impl Random for Seq {
    fn fill(&self, buf: &mut [u8]) -> redge::Result<()> {
        for b in buf {
            *b = self.0.get();
            self.0.set(self.0.get().wrapping_add(29));
        }
        Ok(())
    }
}

fn session_cookie() -> String {
    let token = Token::generate(&Seq(Cell::new(5))).unwrap();
    format!("redge_session={}", token.expose())
}

#[test]
fn a_session_redis_cannot_read_is_503_and_the_cookie_is_kept() {
    let cookie = session_cookie();
    let reply = send(Method::Get, "/api/session", &[("cookie", &cookie)], "", &[]);
    assert_eq!(reply.status(), 503, "{:?}", reply.body());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(
        reply.header("set-cookie"),
        None,
        "never signed out because Redis blinked"
    );
}

#[test]
fn a_sign_in_that_cannot_complete_sets_no_cookie() {
    // Natively it stops at the token (Web Crypto exists only in the runtime: 500); in workerd with
    // Redis down it stops at Redis (503, `tests/e2e/faults.test.mjs`). Either way: no cookie.
    let reply = send(
        Method::Post,
        "/api/session",
        &[("origin", BASE)],
        r#"{"user":"ada"}"#,
        &[],
    );
    assert!(reply.status() >= 500, "{:?}", reply.body());
    assert_eq!(reply.header("set-cookie"), None);
}

#[test]
fn a_session_change_from_another_site_is_403_before_redis() {
    let reply = send(
        Method::Post,
        "/api/session",
        &[("origin", "https://evil.example")],
        r#"{"user":"ada"}"#,
        &[],
    );
    assert_eq!(reply.status(), 403);
}

#[test]
fn a_lookup_goes_to_the_origin_when_redis_is_unreachable() {
    let reply = send(Method::Get, "/api/lookup/7", &[], "", &[]);
    assert_eq!(reply.status(), 200, "{:?}", reply.body());
    let body = json(&reply);
    assert_eq!(body["status"], "bypass", "{body}");
    assert_eq!(body["value"]["id"], 7, "{body}");
}

#[test]
fn route_limits_fall_back_to_the_isolate_and_still_refuse() {
    let vars = [
        (
            "RATELIMIT_POLICIES",
            r#"[{"name":"api","algorithm":"fixed_window","limit":2,"period":"1m"}]"#,
        ),
        ("RATELIMIT_FAILURE", "local"),
    ];
    for _ in 0..2 {
        let reply = send(Method::Get, "/api/lookup/1", &[], "", &vars);
        assert_eq!(reply.status(), 200, "{:?}", reply.body());
    }
    let refused = send(Method::Get, "/api/lookup/1", &[], "", &vars);
    assert_eq!(refused.status(), 429, "{:?}", refused.body());
    assert!(refused.header("retry-after").is_some());
    assert_eq!(json(&refused)["decision"]["reason"], "local_fallback");
}

#[test]
fn a_closed_failure_policy_refuses_when_redis_is_unreachable() {
    let vars = [("RATELIMIT_FAILURE", "closed")];
    let reply = send(Method::Get, "/api/lookup/1", &[], "", &vars);
    assert_eq!(reply.status(), 429, "{:?}", reply.body());
    assert_eq!(json(&reply)["decision"]["reason"], "fail_closed");
}

#[test]
fn bad_input_is_a_400_problem() {
    let reply = send(Method::Get, "/api/lookup/not-a-number", &[], "", &[]);
    assert_eq!(reply.status(), 400);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.contains("problem+json")),
        "{:?}",
        reply.headers()
    );
    let reply = send(
        Method::Post,
        "/api/session",
        &[("origin", BASE)],
        "{not json",
        &[],
    );
    assert_eq!(reply.status(), 400);
}

#[test]
fn health_says_redis_is_unavailable() {
    let reply = send(Method::Get, "/api/health", &[], "", &[]);
    assert_eq!(reply.status(), 503);
    assert_eq!(json(&reply)["redis"]["ok"], false);
}

#[test]
fn the_dashboard_fails_closed_for_a_signed_in_visitor_and_open_for_others() {
    let cookie = session_cookie();
    let signed_in = send(
        Method::Get,
        "/api/dashboard",
        &[("cookie", &cookie)],
        "",
        &[],
    );
    assert_eq!(signed_in.status(), 503, "{:?}", signed_in.body());
    let anonymous = send(Method::Get, "/api/dashboard", &[], "", &[]);
    assert_eq!(anonymous.status(), 200, "{:?}", anonymous.body());
    let body = json(&anonymous);
    assert_eq!(body["session"], Value::Null, "{body}");
    assert_eq!(body["item"]["status"], "bypass", "{body}");
}

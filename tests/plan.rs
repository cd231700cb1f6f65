//! The request plan compiled to wasm, against the real gateway and redis-server: a rate-limit check, a
//! session load and a cached read share one round trip, and the round trip waits as long as its parts
//! allow (the shortest fail-open deadline, or the full answer when a session is among them).
#![cfg(target_arch = "wasm32")]

mod support;

use std::rc::Rc;

use redge::cache::{CacheOptions, CacheState, Policy as CachePolicy, Status};
use redge::client::{Json, Options};
use redge::ratelimit::{Algorithm, FailurePolicy, Policy, Quota, Reason};
use redge::session::SessionConfig;
use redge::{Cache, Client, Error, Plan, RateLimiter, SessionStore};
use serde_json::{Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

fn limiter(timeout_ms: u32) -> RateLimiter {
    RateLimiter::new(vec![Policy::new(
        "api",
        Algorithm::Gcra,
        Quota::new(10, 60_000),
    )])
    .unwrap()
    .prefix(support::unique_key("plan-rl"))
    .with_timeout_ms(timeout_ms)
    .failure_policy(FailurePolicy::Open)
}

fn cache(client: &Rc<Client>) -> Cache {
    let options = CacheOptions {
        namespace: support::unique_key("plan-cache"),
        ..CacheOptions::default()
    };
    Cache::new(Rc::clone(client), CacheState::new(options))
}

fn sessions(client: &Client) -> SessionStore<'_> {
    let config = SessionConfig {
        prefix: support::unique_key("plan-sess"),
        ..SessionConfig::default()
    };
    SessionStore::new(client, config)
}

fn slow_client(port: u16) -> Rc<Client> {
    let options = Options {
        timeout_ms: 30_000,
        retries: 0,
        ..Options::default()
    };
    let url = format!("http://127.0.0.1:{port}");
    Rc::new(Client::with_options(&url, support::gateway().1.as_str(), options).unwrap())
}

#[wasm_bindgen_test]
async fn a_limit_a_session_and_a_cached_hit_cost_one_round_trip() {
    let (url, token) = support::gateway();
    let client = Rc::new(Client::new(&url, &token).unwrap());
    let (limiter, cache, store) = (limiter(5_000), cache(&client), sessions(&client));
    // A generous deadline: a debug gateway on a busy machine must not turn the hit into a bypass.
    let policy = CachePolicy::new("items").deadline_ms(5_000);
    let issued = store
        .sign_in("ada", &json!({"plan": "pro"}), None)
        .await
        .unwrap();
    let warm = cache
        .get_or_fetch::<Json<Value>, String, _, _>("item:1", &policy, || async {
            Ok(Some(Json(json!({"id": 1}))))
        })
        .await
        .unwrap();
    assert_eq!(warm.status, Status::Miss);

    let before = client.stats().round_trips;
    let plan = Plan::new(&client);
    let check = plan.limit(&limiter, &[("api", "203.0.113.9")], 1).unwrap();
    let session = plan.load_session(&store, issued.token.expose().as_str());
    let read = plan.lookup::<Json<Value>>(&cache, "item:1", &policy);
    assert_eq!(plan.wait(), Some(redge::plan::Wait::Full));
    assert_eq!(plan.send().await, None);
    assert_eq!(
        client.stats().round_trips - before,
        1,
        "everything in one round trip"
    );

    let decision = check.finish();
    assert_eq!((decision.allowed, decision.remaining), (true, 9));
    assert_eq!(decision.reason, Reason::WithinLimit);
    let loaded = session.finish().unwrap().expect("the session is live");
    assert_eq!(loaded.session.user, "ada");
    let read = read.finish();
    assert_eq!(read.status(), Status::Hit);
    let lookup = cache
        .resolve(read, || async {
            Err::<Option<Json<Value>>, _>("the origin must not be called")
        })
        .await
        .unwrap();
    assert_eq!(lookup.value.map(|v| v.0), Some(json!({"id": 1})));
}

#[wasm_bindgen_test]
async fn fail_open_parts_cut_the_round_trip_at_the_shortest_deadline() {
    // A proxy that forwards to the gateway after 2 s: only a deadline of the plan ends the wait sooner
    // (the client's own is 30 s). The error each part sees names the deadline that applied.
    let (url, _) = support::gateway();
    let port = support::late_server(2_000, &url).await;
    let client = slow_client(port);
    let (limiter, cache) = (limiter(300), cache(&client));
    let plan = Plan::new(&client);
    let check = plan.limit(&limiter, &[("api", "203.0.113.10")], 1).unwrap();
    let read =
        plan.lookup::<Json<Value>>(&cache, "item:2", &CachePolicy::new("g").deadline_ms(120));
    assert_eq!(plan.send().await, Some(Error::Timeout(120)));
    let decision = check.finish_detailed();
    assert_eq!(decision.0.reason, Reason::FailOpen);
    assert_eq!(decision.1, Some(Error::Timeout(120)));
    assert_eq!(read.finish().status(), Status::Bypass);
}

#[wasm_bindgen_test]
async fn a_session_makes_the_round_trip_wait_for_the_answer() {
    let (url, token) = support::gateway();
    let fast = Client::new(&url, &token).unwrap();
    let issued = sessions(&fast);
    let prefix = issued.config().prefix.clone();
    let issued = issued.sign_in("grace", &json!({}), None).await.unwrap();

    // The same store, through the late proxy: the limiter alone would give up after 300 ms.
    let port = support::late_server(1_000, &url).await;
    let client = slow_client(port);
    let store = SessionStore::new(
        &client,
        SessionConfig {
            prefix,
            ..SessionConfig::default()
        },
    );
    let limiter = limiter(300);
    let plan = Plan::new(&client);
    let check = plan.limit(&limiter, &[("api", "203.0.113.11")], 1).unwrap();
    let session = plan.load_session(&store, issued.token.expose().as_str());
    assert_eq!(plan.send().await, None);
    assert_eq!(
        check.finish().reason,
        Reason::WithinLimit,
        "the check got Redis's answer too"
    );
    let loaded = session.finish().unwrap().expect("the session is live");
    assert_eq!(loaded.session.user, "grace");
}

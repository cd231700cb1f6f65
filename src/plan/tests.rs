//! The plan's own logic: which wait a set of parts gets, that parts which add nothing do not hold the
//! round trip, and that everything goes out in one request whose failure reaches every part. Against a
//! fake service that refuses every command; the capabilities' scripts are tested against real Redis in
//! `tests/plan.rs`.

use std::rc::Rc;

use pollster::block_on;

use super::*;
use crate::Error;
use crate::cache::{CacheOptions, CacheState, Policy as CachePolicy};
use crate::client::{FakeTransport, Json, fake_server};
use crate::clock::FakeClock;
use crate::ratelimit::{Algorithm, FailurePolicy, Policy, Quota, Reason};
use crate::session::{SessionConfig, Token};

const NOW: u64 = 1_700_000_000_000;

/// A service that refuses every command (a Redis error per entry, the request itself answered).
fn refusing() -> Rc<Client<FakeTransport>> {
    let transport = fake_server(|_| Err("ERR refused by the test".to_owned()));
    Rc::new(Client::with_transport("http://redis.test", "t", transport).unwrap())
}

fn limiter(timeout_ms: u32) -> RateLimiter<FakeClock> {
    RateLimiter::with_clock(
        vec![Policy::new("api", Algorithm::Gcra, Quota::new(5, 10_000))],
        FakeClock::new(NOW),
    )
    .unwrap()
    .with_timeout_ms(timeout_ms)
    .failure_policy(FailurePolicy::Open)
}

fn cache(client: &Rc<Client<FakeTransport>>) -> Cache<FakeTransport> {
    let state = CacheState::with_clock(CacheOptions::default(), FakeClock::new(NOW));
    Cache::new(Rc::clone(client), state)
}

fn valid_token() -> String {
    Token::generate(&crate::session::Counter::new(3))
        .unwrap()
        .expose()
}

#[test]
fn waits_combine_to_the_shortest_deadline_unless_a_part_needs_the_answer() {
    let cases = [
        (Wait::Within(50), Wait::Within(150), Wait::Within(50)),
        (Wait::Within(150), Wait::Within(50), Wait::Within(50)),
        (Wait::Within(50), Wait::Full, Wait::Full),
        (Wait::Full, Wait::Within(50), Wait::Full),
        (Wait::Full, Wait::Full, Wait::Full),
    ];
    for (a, b, both) in cases {
        assert_eq!(a.and(b), both, "{a:?} and {b:?}");
    }
    assert_eq!(Wait::combine(None, Wait::Within(9)), Wait::Within(9));
    assert_eq!(
        Wait::combine(Some(Wait::Within(9)), Wait::Within(3)),
        Wait::Within(3)
    );
}

#[test]
fn fail_open_parts_wait_the_shortest_of_their_deadlines() {
    let client = refusing();
    let (limiter, cache) = (limiter(80), cache(&client));
    let plan = Plan::new(&client);
    assert_eq!(plan.wait(), None);
    let check = plan.limit(&limiter, &[("api", "1.2.3.4")], 1).unwrap();
    assert_eq!(plan.wait(), Some(Wait::Within(80)));
    let policy = CachePolicy::new("items").deadline_ms(40);
    let _read = plan.lookup::<Json<serde_json::Value>>(&cache, "item:1", &policy);
    assert_eq!(plan.wait(), Some(Wait::Within(40)));
    assert_eq!(plan.batch().len(), 2);

    let failure = block_on(plan.send());
    // The request was answered (per-entry errors are not request-level).
    assert_eq!(failure, None);
    assert_eq!(
        client.stats().round_trips,
        1,
        "one round trip for both parts"
    );
    let decision = check.finish();
    assert!(decision.allowed, "the limiter fails open on a Redis error");
    assert_eq!(decision.reason, Reason::FailOpen);
}

#[test]
fn a_session_makes_the_plan_wait_for_the_full_answer() {
    let client = refusing();
    let (limiter, store) = (
        limiter(80),
        SessionStore::new(&client, SessionConfig::default()),
    );
    let plan = Plan::new(&client);
    let _check = plan.limit(&limiter, &[("api", "1.2.3.4")], 1).unwrap();
    let session = plan.load_session(&store, &valid_token());
    assert_eq!(plan.wait(), Some(Wait::Full));
    block_on(plan.send());
    assert_eq!(client.stats().round_trips, 1);
    // The session's own reply was a Redis error: the part reports it, it never reads as "no session".
    assert!(matches!(session.finish(), Err(Error::Redis(_))));
}

#[test]
fn parts_that_add_nothing_do_not_change_the_wait() {
    let client = refusing();
    let (limiter, store) = (
        limiter(80),
        SessionStore::new(&client, SessionConfig::default()),
    );
    let plan = Plan::new(&client);
    // A junk cookie is refused before any command: it must not make the plan wait for the full answer.
    let session = plan.load_session(&store, "not-a-token");
    assert_eq!(plan.wait(), None);
    assert!(plan.is_empty());
    let _check = plan.limit(&limiter, &[("api", "1.2.3.4")], 1).unwrap();
    assert_eq!(plan.wait(), Some(Wait::Within(80)));
    block_on(plan.send());
    assert_eq!(session.finish(), Ok(None));
}

#[test]
fn an_empty_plan_sends_nothing() {
    let client = refusing();
    let plan = Plan::new(&client);
    assert_eq!(block_on(plan.send()), None);
    assert_eq!(client.stats().round_trips, 0);
}

#[test]
fn a_request_level_failure_reaches_every_part_and_is_returned() {
    let transport = FakeTransport::new(|_, _| Err(Error::Transport("connection reset".into())));
    let client = Rc::new(Client::with_transport("http://redis.test", "t", transport).unwrap());
    let (limiter, cache) = (limiter(80), cache(&client));
    let plan = Plan::new(&client);
    let check = plan.limit(&limiter, &[("api", "1.2.3.4")], 1).unwrap();
    let own = plan.read::<Option<String>>(crate::client::cmd("GET").arg("k"), Wait::Within(500));
    let read = plan.lookup::<Json<serde_json::Value>>(&cache, "item:2", &CachePolicy::new("g"));
    assert_eq!(plan.wait(), Some(Wait::Within(80)));
    let failure = block_on(plan.send());
    assert!(matches!(failure, Some(Error::Transport(_))), "{failure:?}");
    assert_eq!(check.finish().reason, Reason::FailOpen);
    assert!(matches!(own.take(), Err(Error::Transport(_))));
    // The cache read becomes a bypass to the origin, never an error.
    assert_eq!(read.finish().status(), crate::cache::Status::Bypass);
}

#[test]
fn a_bad_check_adds_nothing() {
    let client = refusing();
    let limiter = limiter(80);
    let plan = Plan::new(&client);
    assert!(plan.limit(&limiter, &[("nope", "x")], 1).is_err());
    assert!(plan.limit(&limiter, &[("api", "x")], 1_000).is_err());
    assert_eq!(plan.wait(), None);
    assert!(plan.is_empty());
}

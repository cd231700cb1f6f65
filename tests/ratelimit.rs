//! Rate limiting compiled to wasm, against the real gateway and redis-server (see `tests/support/mod.rs`):
//! the Lua script is checked against the Rust reference models, at the boundaries, under concurrency,
//! with a clock going backwards, and with Redis unreachable or slow under each failure policy.
#![cfg(target_arch = "wasm32")]

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use redge::client::commands as c;
use redge::client::{Client, FetchTransport};
use redge::clock::FakeClock;
use redge::ratelimit::model::{State, Write, decide};
use redge::ratelimit::{Algorithm, FailurePolicy, Policy, Quota, RateLimiter, Reason};
use wasm_bindgen_test::wasm_bindgen_test;

const T0: u64 = 1_800_000_000_000;

fn client() -> Client<FetchTransport> {
    let (url, token) = support::gateway();
    Client::new(&url, &token).unwrap()
}

/// A limiter with one policy per algorithm (named after it), a fresh prefix, and the given cache size.
fn limiter(quota: Quota, clock: &FakeClock, cache_entries: usize) -> RateLimiter<FakeClock> {
    let policies = Algorithm::ALL
        .into_iter()
        .map(|a| Policy::new(a.name().replace('_', "-"), a, quota))
        .collect();
    RateLimiter::with_clock(policies, clock.clone())
        .unwrap()
        .prefix(support::unique_key("rl"))
        .memory(cache_entries, 1 << 20)
}

fn name(a: Algorithm) -> String {
    a.name().replace('_', "-")
}

/// Runs every future to completion, concurrently, keeping their order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none()
                && let Poll::Ready(value) = future.as_mut().poll(cx)
            {
                *output = Some(value);
            }
        }
        if outputs.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

#[wasm_bindgen_test]
async fn the_limit_th_request_passes_the_next_waits_exactly_retry_after() {
    let client = client();
    let clock = FakeClock::new(T0);
    // Without the block cache, so that Redis answers every request, one millisecond early included.
    let limiter = limiter(Quota::new(5, 10_000), &clock, 0);
    for a in Algorithm::ALL {
        clock.set(T0 + 3_000);
        let policy = name(a);
        for i in 1..=5u64 {
            let d = limiter.limit(&client, &policy, "ip").await.unwrap();
            assert!(
                d.allowed && d.remaining == 5 - i,
                "{a:?} request {i}: {d:?}"
            );
        }
        let d = limiter.limit(&client, &policy, "ip").await.unwrap();
        assert!(!d.allowed, "{a:?}: the 6th");
        assert_eq!(
            (d.reason, d.policy.as_str()),
            (Reason::LimitExceeded, policy.as_str())
        );
        let wait = d.retry_after_ms;
        clock.advance(wait - 1);
        assert!(
            !limiter.limit(&client, &policy, "ip").await.unwrap().allowed,
            "{a:?}: 1 ms early"
        );
        clock.advance(1);
        assert!(
            limiter.limit(&client, &policy, "ip").await.unwrap().allowed,
            "{a:?}: on time"
        );
    }
}

#[wasm_bindgen_test]
async fn two_hundred_concurrent_requests_against_a_limit_of_fifty_allow_exactly_fifty() {
    let clock = FakeClock::new(T0);
    // Generous deadlines: this test is about atomicity in Redis, not about the failure policy.
    let limiter = limiter(Quota::new(50, 3_600_000), &clock, 10_000).with_timeout_ms(30_000);
    for a in Algorithm::ALL {
        let client = client().timeout_ms(30_000);
        let policy = name(a);
        let checks = (0..200)
            .map(|_| limiter.limit(&client, &policy, "crowd"))
            .collect();
        let decisions = join_all(checks).await;
        let decisions: Vec<_> = decisions.into_iter().map(Result::unwrap).collect();
        assert!(
            decisions.iter().all(|d| !d.reason.is_degraded()),
            "{a:?}: Redis decided"
        );
        let allowed = decisions.iter().filter(|d| d.allowed).count();
        assert_eq!(allowed, 50, "{a:?}");
        let peek = limiter.peek(&client, &[(&policy, "crowd")]).await.unwrap();
        assert_eq!(peek.remaining, 0, "{a:?}");
    }
}

#[wasm_bindgen_test]
async fn a_request_refused_by_one_policy_is_charged_by_none() {
    let client = client();
    let clock = FakeClock::new(T0);
    let policies = vec![
        Policy::new("wide", Algorithm::Gcra, Quota::new(10, 60_000)),
        Policy::new("narrow", Algorithm::FixedWindow, Quota::new(1, 60_000)),
        Policy::new("slide", Algorithm::SlidingWindow, Quota::new(10, 60_000)),
    ];
    let limiter = RateLimiter::with_clock(policies, clock.clone())
        .unwrap()
        .prefix(support::unique_key("rl"));
    let subjects = [("wide", "u"), ("narrow", "u"), ("slide", "u")];
    assert!(limiter.check(&client, &subjects, 1).await.unwrap().allowed);
    let before: Vec<Option<String>> = client
        .query(&c::mget(subjects.iter().map(|(p, id)| limiter.key(p, id))))
        .await
        .unwrap();
    let trips = client.stats().round_trips;
    let d = limiter.check(&client, &subjects, 1).await.unwrap();
    assert_eq!(
        client.stats().round_trips,
        trips + 1,
        "three policies, one round trip"
    );
    assert!(!d.allowed);
    assert_eq!(d.policy, "narrow");
    assert_eq!(
        d.policies[0].remaining, 9,
        "wide reports its uncharged budget"
    );
    let after: Vec<Option<String>> = client
        .query(&c::mget(subjects.iter().map(|(p, id)| limiter.key(p, id))))
        .await
        .unwrap();
    assert_eq!(before, after, "no key was written");
}

#[wasm_bindgen_test]
async fn a_cost_above_the_burst_is_an_error_without_a_round_trip() {
    let client = client();
    let clock = FakeClock::new(T0);
    let limiter = limiter(Quota::new(5, 1_000).burst(2), &clock, 100);
    let e = limiter
        .check(&client, &[("gcra", "x")], 3)
        .await
        .unwrap_err();
    assert!(e.is_insufficient_capacity(), "{e}");
    assert!(
        limiter
            .check(&client, &[("gcra", "x")], 2)
            .await
            .unwrap()
            .allowed
    );
    let e = limiter
        .check(&client, &[("fixed-window", "x")], 6)
        .await
        .unwrap_err();
    assert!(e.is_insufficient_capacity());
    assert_eq!(client.stats().round_trips, 1);
}

#[wasm_bindgen_test]
async fn a_clock_going_backwards_recovers_nothing() {
    let client = client();
    let clock = FakeClock::new(T0 + 30_000);
    let limiter = limiter(Quota::new(3, 10_000), &clock, 0);
    for a in Algorithm::ALL {
        clock.set(T0 + 30_000);
        let policy = name(a);
        for _ in 0..3 {
            assert!(
                limiter
                    .limit(&client, &policy, "skew")
                    .await
                    .unwrap()
                    .allowed
            );
        }
        let at_now = limiter.peek(&client, &[(&policy, "skew")]).await.unwrap();
        // Another isolate, a minute behind.
        clock.set(T0 - 30_000);
        let d = limiter.limit(&client, &policy, "skew").await.unwrap();
        assert!(!d.allowed, "{a:?}");
        assert_eq!(
            d.retry_after_ms, at_now.retry_after_ms,
            "{a:?}: measured from the key's time"
        );
    }
}

#[wasm_bindgen_test]
async fn the_block_cache_answers_without_a_round_trip_until_the_exact_time() {
    let client = client();
    let clock = FakeClock::new(T0);
    let limiter = limiter(Quota::new(2, 1_000), &clock, 100);
    for _ in 0..2 {
        assert!(limiter.limit(&client, "gcra", "b").await.unwrap().allowed);
    }
    let d = limiter.limit(&client, "gcra", "b").await.unwrap();
    assert_eq!((d.allowed, d.retry_after_ms), (false, 500));
    let trips = client.stats().round_trips;
    for step in [0, 200, 299] {
        clock.advance(step);
        let d = limiter.limit(&client, "gcra", "b").await.unwrap();
        assert_eq!(d.reason, Reason::BlockedLocally);
    }
    assert_eq!(
        client.stats().round_trips,
        trips,
        "0 round trips while blocked locally"
    );
    clock.advance(1);
    assert!(limiter.limit(&client, "gcra", "b").await.unwrap().allowed);
    assert_eq!(client.stats().round_trips, trips + 1);
}

#[wasm_bindgen_test]
async fn redis_unreachable_under_each_failure_policy() {
    // Port 1 refuses connections; the slow server answers after 2 s, past the 200 ms limit.
    let refused = Client::new("http://127.0.0.1:1", "t").unwrap();
    let slow_port = support::slow_server(2_000).await;
    let slow = Client::new(&format!("http://127.0.0.1:{slow_port}"), "t").unwrap();
    let clock = FakeClock::new(T0);
    for client in [&refused, &slow] {
        let open = limiter(Quota::new(2, 1_000), &clock, 100).failure_policy(FailurePolicy::Open);
        let d = open.limit(client, "gcra", "x").await.unwrap();
        assert_eq!((d.allowed, d.reason), (true, Reason::FailOpen));

        let closed =
            limiter(Quota::new(2, 1_000), &clock, 100).failure_policy(FailurePolicy::Closed {
                retry_after_ms: 5_000,
            });
        let d = closed.limit(client, "gcra", "x").await.unwrap();
        assert_eq!(
            (d.allowed, d.reason, d.retry_after_ms),
            (false, Reason::FailClosed, 5_000)
        );

        let local = limiter(Quota::new(2, 1_000), &clock, 100).failure_policy(FailurePolicy::Local);
        let mut allowed = Vec::new();
        for _ in 0..3 {
            let d = local.limit(client, "gcra", "x").await.unwrap();
            assert_eq!(d.reason, Reason::LocalFallback);
            allowed.push(d.allowed);
        }
        assert_eq!(
            allowed,
            [true, true, false],
            "the isolate's own limiter counts"
        );
    }
    assert!(support::request_count(slow_port) >= 5);
}

#[wasm_bindgen_test]
async fn identifiers_in_two_slots_are_checked_in_one_round_trip_and_a_refusal_is_refunded() {
    let client = std::rc::Rc::new(client());
    let clock = FakeClock::new(T0);
    let policies = vec![
        Policy::new("per-ip", Algorithm::FixedWindow, Quota::new(1, 60_000)),
        Policy::new("per-user", Algorithm::Gcra, Quota::new(10, 60_000)),
        Policy::new(
            "per-user-day",
            Algorithm::SlidingWindow,
            Quota::new(100, 86_400_000),
        ),
    ];
    let limiter = RateLimiter::with_clock(policies, clock.clone())
        .unwrap()
        .prefix(support::unique_key("rl"));
    let subjects = [
        ("per-ip", "10.0.0.1"),
        ("per-user", "alice"),
        ("per-user-day", "alice"),
    ];
    let user_keys = [
        limiter.key("per-user", "alice"),
        limiter.key("per-user-day", "alice"),
    ];
    assert_ne!(
        redge::slot::slot(limiter.key("per-ip", "10.0.0.1").as_bytes()),
        redge::slot::slot(user_keys[0].as_bytes())
    );
    assert!(redge::slot::same_slot(&user_keys));
    assert!(limiter.check(&client, &subjects, 1).await.unwrap().allowed);
    let admitted: Vec<Option<String>> = client.query(&c::mget(&user_keys)).await.unwrap();
    let trips = client.stats().round_trips;
    let d = limiter.check(&client, &subjects, 1).await.unwrap();
    assert_eq!(
        client.stats().round_trips,
        trips + 1,
        "two slots, one round trip"
    );
    assert_eq!((d.allowed, d.policy.as_str()), (false, "per-ip"));
    let charged: Vec<Option<String>> = client.query(&c::mget(&user_keys)).await.unwrap();
    assert_ne!(charged, admitted, "alice's slot admitted and charged");
    assert_eq!(limiter.refunds_owed(), (1, 0));
    limiter
        .refund_task(std::rc::Rc::clone(&client))
        .expect("a refund is owed")
        .await;
    let refunded: Vec<Option<String>> = client.query(&c::mget(&user_keys)).await.unwrap();
    assert_eq!(
        refunded, admitted,
        "the refund gave back exactly the charge"
    );
    assert_eq!(limiter.refunds_owed(), (0, 0));
}

#[wasm_bindgen_test]
async fn keys_escape_identifiers_and_carry_exact_ttls() {
    let client = client();
    let clock = FakeClock::new(T0);
    let limiter = limiter(Quota::new(4, 10_000), &clock, 0);
    let id = "user:42*[x]";
    assert!(limiter.limit(&client, "gcra", id).await.unwrap().allowed);
    let key = limiter.key("gcra", id);
    assert!(key.ends_with(":gcra:{user%3A42%2A%5Bx%5D}"), "{key}");
    let ttl: i64 = client.query(&c::pttl(&key)).await.unwrap();
    assert!(
        ttl > 0 && ttl <= 2_500,
        "one request on 4 per 10 s drains in 2.5 s: {ttl}"
    );
    limiter.reset(&client, "gcra", id).await.unwrap();
    let exists: i64 = client.query(&c::exists([&key])).await.unwrap();
    assert_eq!(exists, 0);
}

#[wasm_bindgen_test]
async fn the_script_and_the_rust_reference_take_the_same_decisions() {
    let client = client();
    let clock = FakeClock::new(T0);
    let quota = Quota::new(7, 2_000).burst(4);
    let limiter = limiter(quota, &clock, 0);
    for a in Algorithm::ALL {
        let policy = name(a);
        let mut state: Option<State> = None;
        let mut now = T0 + 777;
        let mut seed = 12_345u64;
        for i in 0..120 {
            // A fixed pseudo-random schedule: gaps of 0..700 ms, costs 0..=3, a refund now and then.
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            now += (seed >> 33) % 700;
            let cost = i64::try_from((seed >> 20) % 5).unwrap() - 1;
            clock.set(now);
            let expected = decide(a, state.as_ref(), now, &quota, cost);
            let got = if cost < 0 {
                limiter.refund(&client, &policy, "ref", 1).await.unwrap()
            } else {
                let cost = u32::try_from(cost).unwrap();
                limiter
                    .check(&client, &[(&policy, "ref")], cost)
                    .await
                    .unwrap()
            };
            let status = &got.policies[0];
            let v = expected.verdict;
            assert_eq!(
                (
                    status.allowed,
                    status.remaining,
                    status.reset_ms,
                    status.retry_after_ms
                ),
                (v.allowed, v.remaining, v.reset_ms, v.retry_after_ms),
                "{a:?} request {i} at +{} cost {cost}",
                now - T0
            );
            match expected.write {
                Write::Keep => {}
                Write::Delete => state = None,
                Write::Set(s, _) => state = Some(s),
            }
            let stored: Option<String> = client
                .query(&c::get(limiter.key(&policy, "ref")))
                .await
                .unwrap();
            // Redis may already have expired a key whose state no longer matters (real time passes too).
            if let Some(stored) = stored {
                assert_eq!(
                    Some(stored),
                    state.as_ref().map(State::encode),
                    "{a:?} request {i}: same state"
                );
            }
        }
    }
}

#[wasm_bindgen_test]
async fn a_check_shares_the_request_batch_with_other_components() {
    let client = client();
    let clock = FakeClock::new(T0);
    let limiter = limiter(Quota::new(2, 1_000), &clock, 100);
    let other = support::unique_key("other");
    let batch = client.batch();
    let set = batch.add::<()>(c::set(&other, "v"));
    let subjects = [("gcra", "shared"), ("fixed-window", "shared")];
    let pending = limiter.prepare(&batch, &subjects, 1).unwrap();
    assert!(pending.needs_round_trip());
    batch.send().await.unwrap();
    assert_eq!(set.take(), Ok(()));
    let d = pending.finish();
    assert!(d.allowed && d.policies.len() == 2 && d.reason == Reason::WithinLimit);
    assert_eq!(
        client.stats().round_trips,
        1,
        "the other command and two policies: one round trip"
    );

    // In a shared batch the deadline is the client's; a timeout reaches the failure policy.
    let slow_port = support::slow_server(2_000).await;
    let slow = Client::new(&format!("http://127.0.0.1:{slow_port}"), "t")
        .unwrap()
        .timeout_ms(100);
    let batch = slow.batch();
    let pending = limiter.prepare(&batch, &subjects, 1).unwrap();
    assert!(batch.send().await.unwrap_err().is_timeout());
    let (d, error) = pending.finish_detailed();
    assert_eq!(d.reason, Reason::LocalFallback);
    assert!(error.is_some_and(|e| e.is_timeout()));
}

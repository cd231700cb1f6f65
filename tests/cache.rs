//! Cached lookups compiled to wasm, against the real gateway and redis-server: every branch of a
//! lookup, and the direct get, set, delete and update, counted in round trips.
#![cfg(target_arch = "wasm32")]

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::future::join_all;
use redge::cache::{
    BreakerConfig, BreakerState, Cache, CacheApi, CacheOptions, CacheState, Cached, Key,
    LookupError, Policy, Status, Task, Updated,
};
use redge::client::{Client, FetchTransport, Json, Options, cmd};
use redge::clock::{Clock, FakeClock};
use wasm_bindgen_test::wasm_bindgen_test;

fn client() -> Client<FetchTransport> {
    let (url, token) = support::gateway();
    Client::new(&url, &token).unwrap()
}

/// A cache in its own namespace, with a fake clock and a spawner whose tasks the test runs itself.
struct Setup {
    cache: Cache<FetchTransport>,
    clock: FakeClock,
    tasks: Rc<RefCell<Vec<Task>>>,
    namespace: String,
}

fn setup_with(client: Client<FetchTransport>, spawner: bool) -> Setup {
    let namespace = support::unique_key("cache");
    let clock = FakeClock::new(js_sys::Date::now() as u64);
    let options = CacheOptions {
        namespace: namespace.clone(),
        ..CacheOptions::default()
    };
    let state = CacheState::with_clock(options, clock.clone());
    let tasks: Rc<RefCell<Vec<Task>>> = Rc::default();
    let mut cache = Cache::new(Rc::new(client), state);
    if spawner {
        let queue = Rc::clone(&tasks);
        cache = cache.spawner(move |task| queue.borrow_mut().push(task));
    }
    Setup {
        cache,
        clock,
        tasks,
        namespace,
    }
}

fn setup() -> Setup {
    setup_with(client(), true)
}

/// The tests' policy. Its deadline is generous: a debug gateway on a busy machine can take longer than
/// the default 150 ms, which would turn these tests' hits and writes into bypasses. The tests about
/// deadlines set their own.
fn policy() -> Policy {
    Policy::new("test")
        .ttl_ms(10_000)
        .grace_ms(60_000)
        .negative_ttl_ms(5_000)
        .deadline_ms(5_000)
}

impl Setup {
    fn trips(&self) -> (u64, u64) {
        let s = self.cache.client().stats();
        (s.round_trips, s.commands)
    }

    async fn get(
        &self,
        key: impl Into<Key>,
        policy: &Policy,
        answer: Result<Option<&str>, &str>,
        calls: &Rc<Cell<u32>>,
    ) -> Result<redge::cache::Lookup<String>, LookupError<String>> {
        let calls = Rc::clone(calls);
        let answer = answer.map(|v| v.map(str::to_owned)).map_err(str::to_owned);
        self.cache
            .get_or_fetch(key, policy, move || async move {
                calls.set(calls.get() + 1);
                answer
            })
            .await
    }

    async fn status(
        &self,
        key: impl Into<Key>,
        answer: Result<Option<&str>, &str>,
        calls: &Rc<Cell<u32>>,
    ) -> Status {
        self.get(key, &policy(), answer, calls)
            .await
            .unwrap()
            .status
    }

    async fn raw<R: redge::client::FromReply>(&self, command: redge::client::Cmd) -> R {
        client().query(&command).await.unwrap()
    }

    fn entry(&self, key: &str) -> String {
        redge::cache::keys::entry(&self.namespace, key)
    }
}

#[wasm_bindgen_test]
async fn miss_then_hit_one_round_trip_and_no_write() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    let miss = s.get("k", &policy(), Ok(Some("v1")), &calls).await.unwrap();
    assert_eq!(
        (miss.status, miss.value.as_deref()),
        (Status::Miss, Some("v1"))
    );
    assert_eq!(s.trips(), (2, 2), "MGET, then SET");
    let pttl: i64 = s.raw(cmd("PTTL").arg(s.entry("k"))).await;
    assert!(
        pttl > 60_000 && pttl <= 70_000,
        "physical TTL = ttl + grace, got {pttl}"
    );

    let hit = s.get("k", &policy(), Ok(Some("v2")), &calls).await.unwrap();
    assert_eq!(
        (hit.status, hit.value.as_deref()),
        (Status::Hit, Some("v1"))
    );
    assert_eq!(
        s.trips(),
        (3, 3),
        "one round trip, one command (the read), no write"
    );
    assert_eq!(calls.get(), 1);
}

#[wasm_bindgen_test]
async fn stale_is_served_at_once_and_refreshed_once_in_the_background() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    s.get("k", &policy(), Ok(Some("old")), &calls)
        .await
        .unwrap();
    s.clock.advance(10_000);
    for _ in 0..3 {
        let stale = s
            .get("k", &policy(), Ok(Some("new")), &calls)
            .await
            .unwrap();
        assert_eq!(
            (stale.status, stale.value.as_deref()),
            (Status::Stale, Some("old"))
        );
        assert!(!stale.origin_called);
    }
    let tasks: Vec<Task> = s.tasks.borrow_mut().drain(..).collect();
    assert_eq!(tasks.len(), 1, "one refresh for three stale hits");
    for task in tasks {
        task.await;
    }
    assert_eq!(calls.get(), 2);
    let hit = s
        .get("k", &policy(), Ok(Some("newer")), &calls)
        .await
        .unwrap();
    assert_eq!(
        (hit.status, hit.value.as_deref()),
        (Status::Hit, Some("new"))
    );
    let m = &s.cache.state().metrics()["test"];
    assert_eq!((m.stale, m.refreshes, m.origin_calls), (3, 1, 2));
}

#[wasm_bindgen_test]
async fn not_found_is_cached_for_the_negative_ttl() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    let miss = s.get("nope", &policy(), Ok(None), &calls).await.unwrap();
    assert_eq!((miss.status, miss.value), (Status::Miss, None));
    let pttl: i64 = s.raw(cmd("PTTL").arg(s.entry("nope"))).await;
    assert!(pttl > 0 && pttl <= 5_000, "negative TTL, got {pttl}");
    let negative = s
        .get("nope", &policy(), Ok(Some("x")), &calls)
        .await
        .unwrap();
    assert_eq!((negative.status, negative.value), (Status::Negative, None));
    assert_eq!(calls.get(), 1);
    s.clock.advance(5_000);
    let again = s
        .get("nope", &policy(), Ok(Some("x")), &calls)
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.value.as_deref()),
        (Status::Miss, Some("x"))
    );
}

#[wasm_bindgen_test]
async fn a_hundred_concurrent_misses_make_one_origin_call() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    // An even more generous deadline: 100 simultaneous reads against a debug gateway queue up, and this
    // test is about single flight, not deadlines.
    let p = policy().deadline_ms(10_000);
    let lookups = (0..100).map(|_| {
        let calls = Rc::clone(&calls);
        s.cache.get_or_fetch("hot", &p, move || async move {
            calls.set(calls.get() + 1);
            support::sleep_ms(200).await;
            Ok::<_, String>(Some(Json(vec![1, 2, 3])))
        })
    });
    let results = join_all(lookups).await;
    assert_eq!(calls.get(), 1);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().value.as_ref().map(|j| j.0.clone()) == Some(vec![1, 2, 3]))
    );
    let m = &s.cache.state().metrics()["test"];
    assert_eq!((m.origin_calls, m.coalesced, m.misses), (1, 99, 100));
}

#[wasm_bindgen_test]
async fn an_origin_failing_during_grace_serves_stale_and_errors_are_never_cached() {
    // No spawner: the refresh runs inline, so its failure is visible in this lookup.
    let s = setup_with(client(), false);
    let calls = Rc::new(Cell::new(0));
    s.get("k", &policy(), Ok(Some("old")), &calls)
        .await
        .unwrap();
    s.clock.advance(15_000);
    let stale = s
        .get("k", &policy(), Err("origin down"), &calls)
        .await
        .unwrap();
    assert_eq!(
        (stale.status, stale.value.as_deref()),
        (Status::Stale, Some("old"))
    );
    assert!(stale.origin_failed);

    let err = s
        .get("other", &policy(), Err("boom"), &calls)
        .await
        .unwrap_err();
    assert_eq!(err, LookupError::Origin("boom".to_owned()));
    let exists: i64 = s.raw(cmd("EXISTS").arg(s.entry("other"))).await;
    assert_eq!(exists, 0, "an error is never written");
    let retry = s
        .get("other", &policy(), Ok(Some("ok")), &calls)
        .await
        .unwrap();
    assert_eq!(retry.status, Status::Miss);
    let m = &s.cache.state().metrics()["test"];
    assert_eq!((m.origin_errors, m.stale), (2, 1));
}

#[wasm_bindgen_test]
async fn an_oversized_value_is_returned_but_not_written() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    let big = "x".repeat(2 << 20);
    let lookup = s
        .get("big", &policy(), Ok(Some(&big)), &calls)
        .await
        .unwrap();
    assert!(lookup.oversize);
    assert_eq!(lookup.value.map(|v| v.len()), Some(2 << 20));
    let exists: i64 = s.raw(cmd("EXISTS").arg(s.entry("big"))).await;
    assert_eq!(exists, 0);
    assert_eq!(s.trips().0, 1, "no write attempted");
    assert_eq!(s.cache.state().metrics()["test"].oversize, 1);
}

#[wasm_bindgen_test]
async fn tags_keys_and_prefixes_invalidate() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    let item = |id: u32| {
        Key::new(format!("item:{id}")).tags(["demo".to_owned(), format!("group-{}", id % 10)])
    };
    for id in [1, 2, 11] {
        s.get(item(id), &policy(), Ok(Some("v")), &calls)
            .await
            .unwrap();
    }
    let before = s.trips();
    assert_eq!(s.status(item(1), Ok(None), &calls).await, Status::Hit);
    assert_eq!(
        s.trips().0 - before.0,
        1,
        "tags read in the same round trip"
    );

    // A counter that does not exist starts at the clock's time, past any value it held before.
    assert_eq!(
        s.cache.invalidate_tag("group-1").await,
        Ok(s.clock.now_ms())
    );
    let ttl: i64 = s
        .raw(cmd("PTTL").arg(redge::cache::keys::tag(&s.namespace, "group-1")))
        .await;
    assert!(ttl > 0, "tag counters expire");
    for (id, status) in [(1, Status::Miss), (11, Status::Miss), (2, Status::Hit)] {
        let lookup = s
            .get(item(id), &policy(), Ok(Some("v2")), &calls)
            .await
            .unwrap();
        assert_eq!(lookup.status, status, "item {id}");
    }
    assert_eq!(s.status(item(1), Ok(None), &calls).await, Status::Hit);

    assert_eq!(s.cache.invalidate("item:2").await, Ok(true));
    assert_eq!(
        s.status(item(2), Ok(Some("v3")), &calls).await,
        Status::Miss
    );
    assert_eq!(
        s.cache.purge_prefix("item:1").await,
        Ok(2),
        "item:1 and item:11"
    );
    assert_eq!(
        s.status(item(1), Ok(Some("v4")), &calls).await,
        Status::Miss
    );
    assert_eq!(
        s.cache.purge_prefix("").await,
        Ok(2),
        "item:1 (fetched again) and item:2"
    );
}

#[wasm_bindgen_test]
async fn corrupt_entries_are_misses_and_repaired() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    for junk in [
        "not an envelope",
        "rc9 1 2 t -\nfuture schema",
        "rc1 1 99999999999999 j -\n{broken",
    ] {
        let _: () = s.raw(cmd("SET").arg(s.entry("k")).arg(junk)).await;
        let lookup = s
            .get("k", &policy(), Ok(Some("fresh")), &calls)
            .await
            .unwrap();
        assert_eq!(lookup.status, Status::Miss, "{junk}");
        let stored: String = s.raw(cmd("GET").arg(s.entry("k"))).await;
        assert!(
            stored.starts_with("rc1 ") && stored.ends_with("\nfresh"),
            "{stored}"
        );
    }
    // A hash where a string should be: WRONGTYPE is a miss too, and the SET repairs it.
    let _: () = s.raw(cmd("DEL").arg(s.entry("k"))).await;
    let _: i64 = s.raw(cmd("HSET").arg(s.entry("k")).arg("f").arg("v")).await;
    let lookup = s
        .get("k", &policy(), Ok(Some("again")), &calls)
        .await
        .unwrap();
    assert_eq!(lookup.status, Status::Miss);
    assert_eq!(s.status("k", Ok(None), &calls).await, Status::Hit);
    assert_eq!(s.cache.state().metrics()["test"].corrupt, 3);
}

#[wasm_bindgen_test]
async fn the_read_shares_a_batch_with_other_components() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    s.get("k", &policy(), Ok(Some("v")), &calls).await.unwrap();
    let before = s.trips().0;
    let counter = support::unique_key("counter");
    let client = s.cache.client();
    let batch = client.batch();
    let other = batch.add::<i64>(cmd("INCR").arg(&counter));
    let pending = s.cache.prepare::<String>(&batch, "k", &policy());
    batch.send().await.unwrap();
    assert_eq!(other.take(), Ok(1));
    let read = pending.finish();
    assert_eq!(read.status(), Status::Hit);
    let lookup = s
        .cache
        .resolve(read, || async { Ok::<Option<String>, String>(None) })
        .await
        .unwrap();
    assert_eq!(lookup.value.as_deref(), Some("v"));
    assert_eq!(s.trips().0 - before, 1);
}

#[wasm_bindgen_test]
async fn redis_unreachable_the_origin_still_answers() {
    // Port 9 is closed: every read fails at once.
    let down = Client::new("http://127.0.0.1:9", "token").unwrap();
    let s = setup_with(down, true);
    let calls = Rc::new(Cell::new(0));
    let lookup = s.get("k", &policy(), Ok(Some("v")), &calls).await.unwrap();
    assert_eq!(
        (lookup.status, lookup.value.as_deref()),
        (Status::Bypass, Some("v"))
    );
    assert_eq!(s.cache.state().metrics()["test"].cache_errors, 1);
}

#[wasm_bindgen_test]
async fn a_slow_redis_is_cut_at_the_policy_deadline() {
    // The slow server would answer `OK` after 3 s (a type mismatch: a miss, not a bypass). The client's
    // own deadline is 30 s, so only the cache's deadline (150 ms, the default) can turn this into a bypass.
    let port = support::slow_server(3_000).await;
    let options = Options {
        timeout_ms: 30_000,
        ..Options::default()
    };
    let slow = Client::with_options(&format!("http://127.0.0.1:{port}"), "t", options).unwrap();
    let s = setup_with(slow, true);
    let calls = Rc::new(Cell::new(0));
    let policy = policy().deadline_ms(default_deadline());
    let lookup = s.get("k", &policy, Ok(Some("v")), &calls).await.unwrap();
    assert_eq!(
        (lookup.status, lookup.value.as_deref()),
        (Status::Bypass, Some("v"))
    );
    assert_eq!(calls.get(), 1);
}

/// The library's default lookup deadline.
fn default_deadline() -> u32 {
    Policy::new("default").deadline_ms
}

#[wasm_bindgen_test]
async fn the_breaker_opens_then_half_opens_and_closes() {
    let (url, token) = support::gateway();
    // The proxy resets its first 3 connections, then forwards to the gateway.
    let port = support::flaky_server(3, &url).await;
    let options = Options {
        retries: 0,
        ..Options::default()
    };
    let flaky = Client::with_options(&format!("http://127.0.0.1:{port}"), &token, options).unwrap();
    // The default breaker: 3 failures open it for 5 s.
    assert_eq!(
        BreakerConfig::default(),
        BreakerConfig {
            failures: 3,
            open_ms: 5_000
        }
    );
    let s = setup_with(flaky, true);
    let calls = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let lookup = s.get("k", &policy(), Ok(Some("v")), &calls).await.unwrap();
        assert_eq!(lookup.status, Status::Bypass);
    }
    assert_eq!(s.cache.state().breaker_state(), BreakerState::Open);
    let seen = support::request_count(port);
    let skipped = s.get("k", &policy(), Ok(Some("v")), &calls).await.unwrap();
    assert_eq!(skipped.status, Status::Bypass);
    assert_eq!(support::request_count(port), seen, "open: Redis not tried");

    s.clock.advance(5_000);
    assert_eq!(s.cache.state().breaker_state(), BreakerState::HalfOpen);
    let probe = s.get("k", &policy(), Ok(Some("v")), &calls).await.unwrap();
    assert_eq!(
        probe.status,
        Status::Miss,
        "the probe reached Redis and wrote"
    );
    assert_eq!(s.cache.state().breaker_state(), BreakerState::Closed);
    let hit = s.get("k", &policy(), Ok(None), &calls).await.unwrap();
    assert_eq!(hit.status, Status::Hit);
    assert_eq!(calls.get(), 5);
    assert_eq!(s.cache.state().metrics_json()["breaker_opened"], 1);
}

#[wasm_bindgen_test]
async fn a_lease_held_elsewhere_serves_stale_or_waits_then_fetches() {
    let s = setup_with(client(), false);
    let calls = Rc::new(Cell::new(0));
    let leased = policy().lease_ms(5_000).lease_wait_ms(100);
    // Our own lease is taken and released around a miss (the release rides with the write).
    let miss = s.get("k", &leased, Ok(Some("v1")), &calls).await.unwrap();
    assert_eq!(miss.status, Status::Miss);
    assert_eq!(s.trips().0, 3, "read, lease, write + release");
    let lock = redge::cache::keys::lease(&s.namespace, "k");
    let held: i64 = s.raw(cmd("EXISTS").arg(&lock)).await;
    assert_eq!(held, 0, "released");

    // Another isolate holds the lease: a stale value is served without calling the origin.
    let _: () = s
        .raw(
            cmd("SET")
                .arg(&lock)
                .arg("someone-else")
                .arg("PX")
                .arg(5_000),
        )
        .await;
    s.clock.advance(10_000);
    let stale = s.get("k", &leased, Ok(Some("v2")), &calls).await.unwrap();
    assert_eq!(
        (stale.status, stale.value.as_deref()),
        (Status::Stale, Some("v1"))
    );
    assert_eq!(calls.get(), 1);

    // Nothing cached and the holder never writes: after the wait, the origin is called anyway.
    let lock2 = redge::cache::keys::lease(&s.namespace, "k2");
    let _: () = s
        .raw(
            cmd("SET")
                .arg(&lock2)
                .arg("someone-else")
                .arg("PX")
                .arg(5_000),
        )
        .await;
    let waited = s.get("k2", &leased, Ok(Some("w")), &calls).await.unwrap();
    assert_eq!(
        (waited.status, waited.value.as_deref()),
        (Status::Miss, Some("w"))
    );
    let other: String = s.raw(cmd("GET").arg(&lock2)).await;
    assert_eq!(
        other, "someone-else",
        "never deletes another holder's lease"
    );
}

/// A cache of its own (another isolate's state, over `client`) in `s`'s namespace, on its clock.
fn other_isolate(s: &Setup, client: Client<FetchTransport>) -> Cache<FetchTransport> {
    let options = CacheOptions {
        namespace: s.namespace.clone(),
        ..CacheOptions::default()
    };
    Cache::new(
        Rc::new(client),
        CacheState::with_clock(options, s.clock.clone()),
    )
}

fn add(by: i64) -> impl FnMut(&Json<i64>) -> Option<Json<i64>> {
    move |Json(n): &Json<i64>| Some(Json(n + by))
}

#[wasm_bindgen_test]
async fn set_then_get_or_fetch_hits_without_calling_the_origin() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    let key = Key::new("k").tag("t");
    s.cache
        .set(key.clone(), &"set".to_owned(), &policy())
        .await
        .unwrap();
    assert_eq!(
        s.trips(),
        (1, 2),
        "one round trip: the entry's SET and its tag's counter read"
    );
    let pttl: i64 = s.raw(cmd("PTTL").arg(s.entry("k"))).await;
    assert!(pttl > 60_000 && pttl <= 70_000, "ttl + grace, got {pttl}");
    let hit = s
        .get(key.clone(), &policy(), Ok(Some("origin")), &calls)
        .await
        .unwrap();
    assert_eq!(
        (hit.status, hit.value.as_deref()),
        (Status::Hit, Some("set"))
    );
    assert_eq!((calls.get(), s.trips().0), (0, 2));
    let got = s.cache.get::<String>(key, &policy()).await.unwrap();
    assert_eq!(got, Cached::Fresh("set".to_owned()));
    assert_eq!(s.trips().0, 3, "get: one round trip");
    // And the other way: what a lookup cached, get returns.
    s.get("looked-up", &policy(), Ok(Some("o")), &calls)
        .await
        .unwrap();
    let got = s.cache.get::<String>("looked-up", &policy()).await.unwrap();
    assert_eq!(got, Cached::Fresh("o".to_owned()));
}

#[wasm_bindgen_test]
async fn a_set_value_goes_stale_then_expires_in_redis() {
    let s = setup();
    let short = Policy::new("test")
        .ttl_ms(300)
        .grace_ms(0)
        .deadline_ms(5_000);
    s.cache
        .set("k", &Json(1), &short.clone().grace_ms(60_000))
        .await
        .unwrap();
    s.clock.advance(300);
    assert_eq!(
        s.cache.get("k", &policy()).await,
        Ok(Cached::Stale(Json(1)))
    );
    s.cache.set("gone", &Json(2), &short).await.unwrap();
    support::sleep_ms(400).await;
    let exists: i64 = s.raw(cmd("EXISTS").arg(s.entry("gone"))).await;
    assert_eq!(exists, 0, "Redis dropped it at ttl + grace");
    assert_eq!(
        s.cache.get::<Json<i64>>("gone", &short).await,
        Ok(Cached::NotCached)
    );
}

#[wasm_bindgen_test]
async fn invalidating_a_tag_invalidates_set_values() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    let key = || Key::new("item").tags(["all", "group-1"]);
    s.cache
        .set(key(), &"v1".to_owned(), &policy())
        .await
        .unwrap();
    // A counter that does not exist starts at the clock's time, past any value it held before.
    assert_eq!(
        s.cache.invalidate_tag("group-1").await,
        Ok(s.clock.now_ms())
    );
    assert_eq!(
        s.cache.get::<String>(key(), &policy()).await,
        Ok(Cached::NotCached)
    );
    let miss = s
        .get(key(), &policy(), Ok(Some("v2")), &calls)
        .await
        .unwrap();
    assert_eq!((miss.status, calls.get()), (Status::Miss, 1));
    // A set after the invalidation is written at the new generation: valid again.
    s.cache
        .set(key(), &"v3".to_owned(), &policy())
        .await
        .unwrap();
    let stored: String = s.raw(cmd("GET").arg(s.entry("item"))).await;
    let generation = s.clock.now_ms();
    assert!(stored.contains(&format!(" t 0,{generation}\n")), "{stored}");
    assert_eq!(s.status(key(), Ok(None), &calls).await, Status::Hit);
}

#[wasm_bindgen_test]
async fn delete_then_get_misses() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    s.cache.set("k", &"v".to_owned(), &policy()).await.unwrap();
    assert_eq!(s.cache.delete("k").await, Ok(true));
    assert_eq!(s.cache.delete("k").await, Ok(false));
    assert_eq!(
        s.cache.get::<String>("k", &policy()).await,
        Ok(Cached::NotCached)
    );
    assert_eq!(
        s.status("k", Ok(Some("origin")), &calls).await,
        Status::Miss
    );
    assert_eq!(calls.get(), 1);
}

#[wasm_bindgen_test]
async fn negative_entries_are_known_absent_to_every_operation() {
    let s = setup();
    let calls = Rc::new(Cell::new(0));
    // Written by a lookup whose origin said "not found", or by set_not_found: the same entry.
    s.get("a", &policy(), Ok(None), &calls).await.unwrap();
    s.cache.set_not_found("b", &policy()).await.unwrap();
    let pttl: i64 = s.raw(cmd("PTTL").arg(s.entry("b"))).await;
    assert!(pttl > 0 && pttl <= 5_000, "negative TTL, got {pttl}");
    for key in ["a", "b"] {
        assert_eq!(
            s.cache.get::<String>(key, &policy()).await,
            Ok(Cached::Absent)
        );
        assert_eq!(s.status(key, Ok(Some("x")), &calls).await, Status::Negative);
        let update = s
            .cache
            .update(key, &policy(), |v: &String| Some(v.clone()))
            .await;
        assert_eq!(update, Ok(Updated::NotCached), "nothing to change");
    }
    assert_eq!(calls.get(), 1);
    s.clock.advance(5_000);
    assert_eq!(
        s.cache.get::<String>("b", &policy()).await,
        Ok(Cached::NotCached)
    );
    // A set replaces "not found".
    s.cache
        .set("a", &"found".to_owned(), &policy())
        .await
        .unwrap();
    assert_eq!(
        s.cache.get("a", &policy()).await,
        Ok(Cached::Fresh("found".to_owned()))
    );
}

#[wasm_bindgen_test]
async fn update_changes_in_place_and_keeps_the_ttl() {
    let s = setup();
    s.cache.set("n", &Json(10), &policy()).await.unwrap();
    s.clock.advance(1_000);
    let before = s.trips().0;
    assert_eq!(
        s.cache.update("n", &policy(), add(5)).await,
        Ok(Updated::Written(Json(15)))
    );
    assert_eq!(s.trips().0 - before, 2, "read, compare-and-set");
    let stored: String = s.raw(cmd("GET").arg(s.entry("n"))).await;
    let fresh_until = s.cache.state().now_ms() - 1_000 + 10_000;
    assert!(
        stored.contains(&format!(" {fresh_until} j -\n15")),
        "{stored}"
    );
    let pttl: i64 = s.raw(cmd("PTTL").arg(s.entry("n"))).await;
    assert!(pttl > 0 && pttl <= 70_000, "the TTL is kept, got {pttl}");
    let kept = s.cache.update("n", &policy(), |_: &Json<i64>| None).await;
    assert_eq!(kept, Ok(Updated::Kept(Json(15))));
    let absent = s.cache.update("none", &policy(), add(1)).await;
    assert_eq!(absent, Ok(Updated::NotCached));
    let exists: i64 = s.raw(cmd("EXISTS").arg(s.entry("none"))).await;
    assert_eq!(exists, 0, "an update never invents a value");
}

#[wasm_bindgen_test]
async fn twenty_concurrent_increments_lose_nothing() {
    let s = setup();
    let key = || Key::new("counter").tag("t");
    s.cache.set(key(), &Json(0), &policy()).await.unwrap();
    let before = s.trips().0;
    let p = policy();
    let updates = (0..20).map(|_| s.cache.update(key(), &p, add(1)));
    let results = join_all(updates).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(Updated::Written(_)))),
        "{results:?}"
    );
    assert_eq!(s.cache.get(key(), &p).await, Ok(Cached::Fresh(Json(20))));
    assert_eq!(
        s.trips().0 - before,
        21 + 1,
        "one read, one compare-and-set per update (the queue hands on each write), the get"
    );
}

#[wasm_bindgen_test]
async fn concurrent_increments_from_several_isolates_lose_nothing() {
    let s = setup();
    s.cache.set("counter", &Json(0), &policy()).await.unwrap();
    let isolates: Vec<Cache<FetchTransport>> =
        (0..4).map(|_| other_isolate(&s, client())).collect();
    let calls = Rc::new(Cell::new(0));
    let p = policy();
    let updates = isolates.iter().flat_map(|cache| {
        (0..10).map(|_| {
            let calls = Rc::clone(&calls);
            cache.update("counter", &p, move |Json(n): &Json<i64>| {
                calls.set(calls.get() + 1);
                Some(Json(n + 1))
            })
        })
    });
    let results = join_all(updates.collect::<Vec<_>>()).await;
    // An update that loses every race (rare, by design: see MAX_UPDATE_ATTEMPTS) fails with Conflict
    // and writes nothing; every other one is applied exactly once.
    let written = results
        .iter()
        .filter(|r| matches!(r, Ok(Updated::Written(_))))
        .count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_conflict()))
        .count();
    assert_eq!(written + conflicts, 40, "{results:?}");
    assert!(written >= 36, "{results:?}");
    let total = Json(i64::try_from(written).unwrap());
    assert_eq!(s.cache.get("counter", &p).await, Ok(Cached::Fresh(total)));
    // Each lost race ran the closure once more, on the newer value.
    assert!(calls.get() >= 40, "{}", calls.get());
}

#[wasm_bindgen_test]
async fn a_race_lost_to_another_isolate_retries_on_its_value_without_another_read() {
    let s = setup();
    s.cache.set("n", &Json(0), &policy()).await.unwrap();
    // This isolate's requests reach Redis 300 ms late: its read runs at about 300 ms and its
    // compare-and-set at about 600 ms. The other isolate's update runs at about 450 ms, in between.
    let (url, token) = support::gateway();
    let port = support::late_server(300, &url).await;
    let late = other_isolate(
        &s,
        Client::new(&format!("http://127.0.0.1:{port}"), &token).unwrap(),
    );
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let p = policy();
    let slow = late.update("n", &p, move |Json(n): &Json<i64>| {
        log.borrow_mut().push(*n);
        Some(Json(n + 1))
    });
    let fast = async {
        support::sleep_ms(450).await;
        s.cache.update("n", &p, add(10)).await
    };
    let (slow, fast) = futures_util::future::join(slow, fast).await;
    assert_eq!(fast, Ok(Updated::Written(Json(10))));
    assert_eq!(slow, Ok(Updated::Written(Json(11))));
    assert_eq!(
        *seen.borrow(),
        [0, 10],
        "ran again on the other isolate's value"
    );
    assert_eq!(
        late.client().stats().round_trips,
        3,
        "read, lost compare-and-set (which answered the newer entry), won compare-and-set"
    );
    assert_eq!(s.cache.get("n", &p).await, Ok(Cached::Fresh(Json(11))));
}

#[wasm_bindgen_test]
async fn without_a_cache_api_the_colo_tier_is_a_miss_never_a_panic() {
    // Node has no `caches.default`: every colo read misses and every put fails quietly.
    let s = setup();
    let cache = Cache::new(
        Rc::new(client()),
        CacheState::new(CacheOptions {
            namespace: s.namespace.clone(),
            ..CacheOptions::default()
        }),
    )
    .colo(CacheApi::new("https://api.example.com"));
    let colo = policy().colo_ttl_ms(2_000);
    let fetch = || async { Ok::<_, String>(Some("v".to_owned())) };
    let miss = cache.get_or_fetch("k", &colo, fetch).await.unwrap();
    assert_eq!((miss.status, miss.from_colo), (Status::Miss, false));
    let hit = cache.get_or_fetch("k", &colo, fetch).await.unwrap();
    assert_eq!((hit.status, hit.from_colo), (Status::Hit, false));
    assert_eq!(cache.client().stats().round_trips, 3, "read, write, read");
    assert!(cache.invalidate("k").await.unwrap());
}

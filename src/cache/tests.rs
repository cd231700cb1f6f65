//! The lookup's branches against a scripted in-memory Redis (the real one is in `tests/cache.rs`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pollster::block_on;

use super::*;
use crate::client::{FakeTransport, fake_server};
use crate::client::{Json, Reply};
use crate::clock::FakeClock;

pub(super) type Data = Rc<RefCell<HashMap<String, String>>>;

/// Runs before each compare-and-set of `Cache::update`: another isolate's write, for the race tests.
pub(super) type Hook = Rc<RefCell<Option<Box<dyn FnMut(&mut HashMap<String, String>)>>>>;

/// A tiny Redis: strings, MGET, INCR, UNLINK; the cache's update and invalidation scripts as Rust (the real
/// scripts run against redis-server in `tests/cache.rs`); other scripts answer 1.
pub(super) fn store(data: Data) -> FakeTransport {
    store_with_hook(data, Hook::default())
}

pub(super) fn store_with_hook(data: Data, hook: Hook) -> FakeTransport {
    fake_server(redis(data, hook))
}

/// The commands of [`store`], to put behind other rules (a cluster's).
pub(super) fn redis(
    data: Data,
    hook: Hook,
) -> impl Fn(&[String]) -> std::result::Result<Reply, String> + 'static {
    move |args: &[String]| {
        let name = args
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        let mut data = data.borrow_mut();
        match (name.as_str(), &args[1..]) {
            ("SET", [k, v, rest @ ..]) => {
                if rest.iter().any(|a| a == "NX") && data.contains_key(k) {
                    return Ok(Reply::Nil);
                }
                data.insert(k.clone(), v.clone());
                Ok(Reply::Status("OK".into()))
            }
            ("MGET", keys) => Ok(Reply::Array(
                keys.iter()
                    .map(|k| {
                        data.get(k)
                            .map_or(Reply::Nil, |v| Reply::Data(v.clone().into_bytes()))
                    })
                    .collect(),
            )),
            ("INCR", [k]) => {
                let n = data.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) + 1;
                data.insert(k.clone(), n.to_string());
                Ok(Reply::Int(n))
            }
            ("PEXPIRE", _) => Ok(Reply::Int(1)),
            ("UNLINK", keys) => Ok(Reply::Int(
                keys.iter().filter(|k| data.remove(*k).is_some()).count() as i64,
            )),
            ("EVAL" | "EVALSHA", [script, numkeys, rest @ ..]) => {
                let n: usize = numkeys.parse().unwrap_or(0);
                let (keys, argv) = rest.split_at(n.min(rest.len()));
                let is = |s: &crate::client::Script| script == s.source() || script == s.sha1();
                if is(super::generations::bump_script()) {
                    Ok(fake_bump(&mut data, keys, argv))
                } else if is(super::update::update_script()) {
                    if let Some(hook) = hook.borrow_mut().as_mut() {
                        hook(&mut data);
                    }
                    Ok(fake_update(&mut data, keys, argv))
                } else {
                    Ok(Reply::Int(1))
                }
            }
            _ => Err(format!("ERR unknown command '{name}'")),
        }
    }
}

/// `scripts/update.lua`.
fn fake_update(data: &mut HashMap<String, String>, keys: &[String], argv: &[String]) -> Reply {
    let sha = |v: &String| sha1_smol::Sha1::from(v.as_bytes()).digest().to_string();
    if data.get(&keys[0]).map(sha).as_ref() == Some(&argv[0]) {
        data.insert(keys[0].clone(), argv[1].clone());
        return Reply::Int(1);
    }
    let current = data
        .get(&keys[0])
        .map_or(Reply::Nil, |v| Reply::Data(v.clone().into_bytes()));
    Reply::Array(vec![current])
}

/// `scripts/bump.lua`.
fn fake_bump(data: &mut HashMap<String, String>, keys: &[String], argv: &[String]) -> Reply {
    let now: i64 = argv[0].parse().unwrap_or(1);
    let g = match data.get(&keys[0]).and_then(|v| v.parse::<i64>().ok()) {
        Some(g) => g + 1,
        None => now.max(1),
    };
    data.insert(keys[0].clone(), g.to_string());
    Reply::Int(g)
}

/// The Redis key of the entry `key` in the namespace `cache`.
pub(super) fn ek(key: &str) -> String {
    super::keys::entry("cache", key)
}

pub(super) struct Fixture {
    pub(super) data: Data,
    pub(super) clock: FakeClock,
    pub(super) cache: Cache<FakeTransport>,
    tasks: Rc<RefCell<Vec<Task>>>,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let data: Data = Rc::default();
        let client = Client::with_transport("http://redis.test", "t", store(Rc::clone(&data)))
            .unwrap_or_else(|e| panic!("{e}"));
        Self::with_client(data, client)
    }

    pub(super) fn with_client(data: Data, client: Client<FakeTransport>) -> Self {
        let clock = FakeClock::new(1_000_000);
        let state = CacheState::with_clock(CacheOptions::default(), clock.clone());
        let tasks: Rc<RefCell<Vec<Task>>> = Rc::default();
        let queue = Rc::clone(&tasks);
        let cache = Cache::new(Rc::new(client), state).spawner(move |t| queue.borrow_mut().push(t));
        Fixture {
            data,
            clock,
            cache,
            tasks,
        }
    }

    pub(super) fn round_trips(&self) -> u64 {
        self.cache.client().stats().round_trips
    }

    fn run_tasks(&self) -> usize {
        let tasks: Vec<Task> = self.tasks.borrow_mut().drain(..).collect();
        let n = tasks.len();
        for t in tasks {
            block_on(t);
        }
        n
    }

    pub(super) fn get(
        &self,
        key: impl Into<Key>,
        policy: &Policy,
        answer: Result<Option<&str>, &str>,
        calls: &Rc<Cell<u32>>,
    ) -> Result<Lookup<String>, LookupError<String>> {
        let calls = Rc::clone(calls);
        let answer = answer.map(|v| v.map(str::to_owned)).map_err(str::to_owned);
        block_on(self.cache.get_or_fetch(key, policy, move || async move {
            calls.set(calls.get() + 1);
            answer
        }))
    }
}

/// Stays pending once, so that every other lookup joins before the origin answers.
pub(super) async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

pub(super) fn policy() -> Policy {
    Policy::new("test")
        .ttl_ms(1_000)
        .grace_ms(10_000)
        .negative_ttl_ms(500)
}

#[test]
fn miss_writes_then_hit_costs_one_round_trip_and_no_write() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    let miss = f.get("k", &policy(), Ok(Some("v1")), &calls).unwrap();
    assert_eq!(
        (miss.status, miss.value.as_deref()),
        (Status::Miss, Some("v1"))
    );
    assert!(miss.origin_called);
    assert_eq!(f.round_trips(), 2, "read + write");
    let stored = f.data.borrow()[&ek("k")].clone();
    assert!(stored.starts_with("rc1 1000000 1001000 t -\n"), "{stored}");

    let hit = f.get("k", &policy(), Ok(Some("other")), &calls).unwrap();
    assert_eq!(
        (hit.status, hit.value.as_deref()),
        (Status::Hit, Some("v1"))
    );
    assert_eq!((f.round_trips(), calls.get()), (3, 1));
    let m = &f.cache.state().metrics()["test"];
    assert_eq!((m.hits, m.misses, m.origin_calls), (1, 1, 1));
}

#[test]
fn stale_is_served_at_once_and_refreshed_once() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    f.get("k", &policy(), Ok(Some("old")), &calls).unwrap();
    f.clock.advance(1_500);
    for _ in 0..3 {
        let stale = f.get("k", &policy(), Ok(Some("new")), &calls).unwrap();
        assert_eq!(
            (stale.status, stale.value.as_deref()),
            (Status::Stale, Some("old"))
        );
    }
    assert_eq!(calls.get(), 1, "no refresh ran yet");
    assert_eq!(f.run_tasks(), 1, "one refresh for three stale hits");
    assert_eq!(calls.get(), 2);
    let hit = f.get("k", &policy(), Ok(Some("newer")), &calls).unwrap();
    assert_eq!(
        (hit.status, hit.value.as_deref()),
        (Status::Hit, Some("new"))
    );
    assert_eq!(f.cache.state().metrics()["test"].refreshes, 1);
}

#[test]
fn origin_error_during_grace_serves_stale_and_is_never_cached() {
    let data: Data = Rc::default();
    let client = Client::with_transport("http://redis.test", "t", store(Rc::clone(&data))).unwrap();
    // No spawner: the refresh is inline and its failure falls back to the stale value.
    let clock = FakeClock::new(0);
    let state = CacheState::with_clock(CacheOptions::default(), clock.clone());
    let cache = Cache::new(Rc::new(client), state);
    let calls = Rc::new(Cell::new(0));
    let get = |answer: Result<Option<&'static str>, &'static str>| {
        let calls = Rc::clone(&calls);
        block_on(cache.get_or_fetch("k", &policy(), move || async move {
            calls.set(calls.get() + 1);
            answer.map(|v| v.map(str::to_owned)).map_err(str::to_owned)
        }))
    };
    get(Ok(Some("old"))).unwrap();
    clock.advance(2_000);
    let stale = get(Err("origin down")).unwrap();
    assert_eq!(stale.status, Status::Stale);
    assert!(stale.origin_failed && stale.origin_called);
    assert_eq!(stale.value.as_deref(), Some("old"));
    clock.advance(20_000);
    assert_eq!(
        get(Err("origin down")),
        Err(LookupError::Origin("origin down".to_owned()))
    );
    assert!(data.borrow()[&ek("k")].contains("old"), "no error written");
    let m = &cache.state().metrics()["test"];
    assert_eq!((m.origin_errors, m.stale), (2, 1));
}

#[test]
fn not_found_is_remembered_for_the_negative_ttl() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    let miss = f.get("gone", &policy(), Ok(None), &calls).unwrap();
    assert_eq!((miss.status, miss.value), (Status::Miss, None));
    let negative = f.get("gone", &policy(), Ok(Some("x")), &calls).unwrap();
    assert_eq!((negative.status, negative.value), (Status::Negative, None));
    f.clock.advance(500);
    let again = f.get("gone", &policy(), Ok(Some("x")), &calls).unwrap();
    assert_eq!(again.status, Status::Miss, "no grace for not found");
    assert_eq!(calls.get(), 2);
}

#[test]
fn corrupt_and_foreign_entries_are_misses_and_repaired() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    for junk in [
        "garbage",
        "rc0 1 2 t -\nold schema",
        "rc1 1 99999999999 j -\n{bad",
    ] {
        f.data.borrow_mut().insert(ek("k"), junk.to_owned());
        let lookup = f.get("k", &policy(), Ok(Some("fixed")), &calls).unwrap();
        assert_eq!(lookup.status, Status::Miss, "{junk}");
        assert!(f.data.borrow()[&ek("k")].ends_with("\nfixed"));
    }
    // A JSON entry read as text is a kind mismatch: corrupt as well.
    assert_eq!(f.cache.state().metrics()["test"].corrupt, 3);
}

#[test]
fn tags_invalidate_without_scanning() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    let key = || Key::new("item:1").tags(["demo", "group-1"]);
    f.get(key(), &policy(), Ok(Some("v1")), &calls).unwrap();
    assert_eq!(
        f.get(key(), &policy(), Ok(None), &calls).unwrap().status,
        Status::Hit
    );
    assert_eq!(block_on(f.cache.invalidate_tag("group-1")), Ok(1_000_000));
    let after = f.get(key(), &policy(), Ok(Some("v2")), &calls).unwrap();
    assert_eq!(
        (after.status, after.value.as_deref()),
        (Status::Miss, Some("v2"))
    );
    assert!(f.data.borrow()[&ek("item:1")].starts_with("rc1 1000000 1001000 t 0,1000000\n"));
    assert_eq!(
        f.get(key(), &policy(), Ok(None), &calls).unwrap().status,
        Status::Hit
    );
    assert_eq!(block_on(f.cache.invalidate("item:1")), Ok(true));
    assert_eq!(block_on(f.cache.invalidate("item:1")), Ok(false));
}

#[test]
fn oversized_values_are_returned_not_written() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    let small = policy().max_value_bytes(10);
    let big = "x".repeat(11);
    let lookup = f.get("big", &small, Ok(Some(&big)), &calls).unwrap();
    assert!(lookup.oversize);
    assert_eq!(lookup.value.as_deref(), Some(big.as_str()));
    assert!(!f.data.borrow().contains_key(&ek("big")));
    assert_eq!(f.round_trips(), 1, "no write attempted");
    assert_eq!(f.cache.state().metrics()["test"].oversize, 1);
}

#[test]
fn bad_keys_are_typed_errors_without_a_round_trip() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    assert!(matches!(
        f.get("", &policy(), Ok(Some("v")), &calls),
        Err(LookupError::InvalidKey(_))
    ));
    let long = "k".repeat(2_000);
    assert!(matches!(
        f.get(long.as_str(), &policy(), Ok(Some("v")), &calls),
        Err(LookupError::InvalidKey(_))
    ));
    assert!(matches!(
        f.get(Key::new("k").tag(""), &policy(), Ok(Some("v")), &calls),
        Err(LookupError::InvalidKey(_))
    ));
    assert!(block_on(f.cache.invalidate_tag("")).is_err());
    assert_eq!((f.round_trips(), calls.get()), (0, 0));
}

#[test]
fn json_values_and_the_memory_tier() {
    let f = Fixture::new();
    let memory = policy().memory_ttl_ms(200);
    let get = || {
        block_on(f.cache.get_or_fetch("j", &memory, || async {
            Ok::<_, String>(Some(Json(serde_json::json!({"a": [1, 2]}))))
        }))
        .unwrap()
    };
    assert_eq!(get().status, Status::Miss);
    let hit = get();
    assert!(hit.from_memory && hit.status == Status::Hit);
    assert_eq!(
        hit.value.map(|j| j.0["a"][1].clone()),
        Some(serde_json::json!(2))
    );
    assert_eq!(f.round_trips(), 2, "the memory hit sent nothing");
    f.clock.advance(200);
    assert!(!get().from_memory);
    assert_eq!(f.round_trips(), 3);
}

#[test]
fn the_read_joins_a_shared_batch() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    f.get("k", &policy(), Ok(Some("v")), &calls).unwrap();
    let before = f.round_trips();
    let client = f.cache.client();
    let batch = client.batch();
    let other = batch.add::<i64>(crate::client::commands::incr("counter"));
    let pending = f.cache.prepare::<String>(&batch, "k", &policy());
    block_on(batch.send()).unwrap();
    assert_eq!(other.take(), Ok(1));
    let read = pending.finish();
    assert_eq!(read.status(), Status::Hit);
    let lookup = block_on(f.cache.resolve(read, || async { Ok::<_, String>(None) })).unwrap();
    assert_eq!(lookup.value.as_deref(), Some("v"));
    assert_eq!(f.round_trips() - before, 1);
}

#[test]
fn redis_down_goes_to_the_origin_and_the_breaker_opens_then_closes() {
    let up = Rc::new(Cell::new(false));
    let data: Data = Rc::default();
    let inner = RefCell::new(store(Rc::clone(&data)));
    let flag = Rc::clone(&up);
    let transport = FakeTransport::new(move |request, _| {
        if flag.get() {
            let store = inner.borrow_mut();
            block_on(store.send(request.clone()))
        } else {
            Err(Error::Transport("connection refused".into()))
        }
    });
    let client = Client::with_transport("http://redis.test", "t", transport).unwrap();
    let f = Fixture::with_client(data, client);
    let calls = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let lookup = f.get("k", &policy(), Ok(Some("v")), &calls).unwrap();
        assert_eq!(lookup.status, Status::Bypass);
    }
    assert_eq!(f.cache.state().breaker_state(), BreakerState::Open);
    let trips = f.round_trips();
    let skipped = f.get("k", &policy(), Ok(Some("v")), &calls).unwrap();
    assert_eq!(skipped.status, Status::Bypass);
    assert_eq!(f.round_trips(), trips, "open: Redis not even tried");
    up.set(true);
    f.clock.advance(5_000);
    assert_eq!(f.cache.state().breaker_state(), BreakerState::HalfOpen);
    let probe = f.get("k", &policy(), Ok(Some("v")), &calls).unwrap();
    assert_eq!(probe.status, Status::Miss);
    assert_eq!(f.cache.state().breaker_state(), BreakerState::Closed);
    assert_eq!(calls.get(), 5);
    let json = f.cache.state().metrics_json();
    assert_eq!(json["breaker"], "closed");
    assert_eq!(json["breaker_opened"], 1);
}

#[test]
fn concurrent_misses_share_one_origin_call() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    let policy = policy();
    let lookups = (0..10).map(|_| {
        let calls = Rc::clone(&calls);
        f.cache.get_or_fetch("k", &policy, move || async move {
            calls.set(calls.get() + 1);
            yield_once().await;
            Ok::<_, String>(Some("v".to_owned()))
        })
    });
    let results = block_on(futures_util::future::join_all(lookups));
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().value.as_deref() == Some("v"))
    );
    assert_eq!(calls.get(), 1);
    let m = &f.cache.state().metrics()["test"];
    assert_eq!((m.origin_calls, m.coalesced, m.misses), (1, 9, 10));
}

#[test]
fn a_failed_origin_call_fails_its_followers_without_more_calls() {
    let f = Fixture::new();
    let calls = Rc::new(Cell::new(0));
    let policy = policy();
    let lookups = (0..5).map(|_| {
        let calls = Rc::clone(&calls);
        f.cache.get_or_fetch("k", &policy, move || async move {
            calls.set(calls.get() + 1);
            yield_once().await;
            Err::<Option<String>, _>("down".to_owned())
        })
    });
    let results = block_on(futures_util::future::join_all(lookups));
    assert_eq!(calls.get(), 1);
    assert_eq!(results[0], Err(LookupError::Origin("down".to_owned())));
    for r in &results[1..] {
        assert_eq!(r, &Err(LookupError::Joined("down".to_owned())));
    }
    assert!(
        !f.data.borrow().contains_key(&ek("k")),
        "errors are never cached"
    );
    assert_eq!(
        LookupError::<String>::Joined("down".into()).to_string(),
        "origin failed: down"
    );
}

//! The colo tier through the lookup, against the scripted Redis and a colo in memory: two isolates of
//! one location share the colo and Redis, each with its own state (fences, memory, breaker).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pollster::block_on;

use super::colo::FakeColo;
use super::tests::{Data, ek, store};
use super::*;
use crate::Plan;
use crate::client::FakeTransport;
use crate::clock::FakeClock;

struct Isolate {
    cache: Cache<FakeTransport>,
    tasks: Rc<RefCell<Vec<Task>>>,
    up: Rc<Cell<bool>>,
}

impl Isolate {
    fn new(data: &Data, colo: &FakeColo, clock: &FakeClock) -> Isolate {
        let up = Rc::new(Cell::new(true));
        let inner = RefCell::new(store(Rc::clone(data)));
        let flag = Rc::clone(&up);
        let transport = FakeTransport::new(move |request, _| {
            if flag.get() {
                block_on(inner.borrow_mut().send(request.clone()))
            } else {
                Err(Error::Transport("connection refused".into()))
            }
        });
        let client = Client::with_transport("http://redis.test", "t", transport).unwrap();
        let state = CacheState::with_clock(CacheOptions::default(), clock.clone());
        let tasks: Rc<RefCell<Vec<Task>>> = Rc::default();
        let queue = Rc::clone(&tasks);
        let cache = Cache::new(Rc::new(client), state)
            .spawner(move |t| queue.borrow_mut().push(t))
            .colo(colo.clone());
        Isolate { cache, tasks, up }
    }

    fn round_trips(&self) -> u64 {
        self.cache.client().stats().round_trips
    }

    /// Runs the background work (the colo puts): after the response, as `wait_until` would.
    fn run_tasks(&self) {
        let tasks: Vec<Task> = self.tasks.borrow_mut().drain(..).collect();
        for t in tasks {
            block_on(t);
        }
    }

    fn get(&self, key: impl Into<Key>, answer: &str) -> Lookup<String> {
        let answer = answer.to_owned();
        block_on(self.cache.get_or_fetch(key, &policy(), move || async move {
            Ok::<_, String>(Some(answer))
        }))
        .unwrap()
    }
}

fn policy() -> Policy {
    Policy::new("test").ttl_ms(60_000).colo_ttl_ms(2_000)
}

struct Location {
    data: Data,
    colo: FakeColo,
    clock: FakeClock,
}

fn location() -> Location {
    Location {
        data: Rc::default(),
        colo: FakeColo::default(),
        clock: FakeClock::new(1_000_000),
    }
}

#[test]
fn a_value_read_once_is_served_from_the_colo_without_a_round_trip() {
    let l = location();
    let a = Isolate::new(&l.data, &l.colo, &l.clock);
    let miss = a.get("k", "v1");
    assert_eq!((miss.status, miss.from_colo), (Status::Miss, false));
    assert!(l.colo.entries.borrow().is_empty(), "put after the response");
    a.run_tasks();
    let (body, max_age) = l.colo.entries.borrow().values().next().cloned().unwrap();
    assert_eq!(max_age, 2, "colo_ttl_ms in whole seconds");
    assert!(body.starts_with("rco1 1000000 1002000 "), "{body}");

    // Another isolate of the location: no Redis, no origin.
    let b = Isolate::new(&l.data, &l.colo, &l.clock);
    l.clock.advance(1_999);
    let hit = b.get("k", "other");
    assert_eq!(
        (hit.status, hit.from_colo, hit.value.as_deref()),
        (Status::Hit, true, Some("v1"))
    );
    assert_eq!(b.round_trips(), 0);
    let m = &b.cache.state().metrics()["test"];
    assert_eq!((m.colo_hits, m.hits, m.answered_from_cache()), (1, 0, 1));

    // Past the colo time: Redis again (a hit there), which puts the value back.
    l.clock.advance(1);
    let again = b.get("k", "other");
    assert_eq!((again.status, again.from_colo), (Status::Hit, false));
    assert_eq!(b.round_trips(), 1);
    b.run_tasks();
    assert_eq!(l.colo.puts.get(), 2);
    assert!(b.get("k", "other").from_colo);
}

#[test]
fn a_change_elsewhere_is_seen_within_the_colo_ttl_and_at_once_where_it_was_made() {
    let l = location();
    let a = Isolate::new(&l.data, &l.colo, &l.clock);
    let b = Isolate::new(&l.data, &l.colo, &l.clock);
    let key = || Key::new("k").tag("t");
    a.get(key(), "v1");
    a.run_tasks();
    l.clock.advance(10);

    // A tag invalidated in `a`: `a` fences every colo entry at once...
    block_on(a.cache.invalidate_tag("t")).unwrap();
    l.clock.advance(1);
    let seen = a.get(key(), "v2");
    assert_eq!(
        (seen.status, seen.value.as_deref()),
        (Status::Miss, Some("v2"))
    );
    // ... and its new value, read after the fence, replaces the colo copy for the location.
    a.run_tasks();
    let b_sees = b.get(key(), "x");
    assert_eq!(b_sees.value.as_deref(), Some("v2"));
    assert!(b_sees.from_colo);

    // An invalidation `b` cannot see: the tag bumped in Redis directly (another location).
    block_on(
        a.cache
            .client()
            .query::<i64>(&crate::client::commands::incr("cache:t:t")),
    )
    .unwrap();
    let changed_at = l.clock.now_ms();
    l.clock.advance(500);
    assert_eq!(
        b.get(key(), "x").value.as_deref(),
        Some("v2"),
        "inside the bound"
    );
    l.clock.advance(2_000 - 500);
    assert_eq!(l.clock.now_ms(), changed_at + 2_000);
    let after = b.get(key(), "v3");
    assert_eq!(
        (after.status, after.value.as_deref()),
        (Status::Miss, Some("v3"))
    );
}

#[test]
fn a_delete_removes_the_colo_copy_and_a_late_put_from_before_it_is_refused() {
    let l = location();
    let a = Isolate::new(&l.data, &l.colo, &l.clock);
    a.get("k", "old");
    a.run_tasks();
    l.clock.advance(5);
    assert!(a.get("k", "x").from_colo);

    // A lookup reads Redis (the colo copy expired), its put is still queued when the key is deleted.
    l.clock.advance(2_000);
    let read = a.get("k", "x");
    assert!(!read.from_colo && read.value.as_deref() == Some("old"));
    l.clock.advance(1);
    assert!(block_on(a.cache.delete("k")).unwrap());
    assert!(l.colo.entries.borrow().is_empty());
    a.run_tasks();
    assert!(
        l.colo.entries.borrow().is_empty(),
        "the put read before the delete"
    );
    l.clock.advance(1);
    let next = a.get("k", "new");
    assert_eq!(
        (next.status, next.value.as_deref()),
        (Status::Miss, Some("new"))
    );

    // Even a copy that got into the colo before the fence (another isolate's put) is a miss here.
    let stale = colo::encode(
        &colo::name("http://redis.test", &ek("k")),
        l.clock.now_ms() - 2,
        l.clock.now_ms() + 1_000,
        &Envelope {
            created: 0,
            fresh_until: u64::MAX,
            kind: Kind::Text,
            generations: vec![],
            payload: "old".into(),
        },
    );
    l.clock.advance(1);
    block_on(a.cache.set("k", &"newer".to_owned(), &policy())).unwrap();
    let name = colo::name("http://redis.test", &ek("k"));
    l.colo.entries.borrow_mut().insert(name, (stale, 1));
    l.clock.advance(1);
    let got = a.get("k", "x");
    assert_eq!(
        (got.from_colo, got.value.as_deref()),
        (false, Some("newer"))
    );
}

#[test]
fn with_redis_down_colo_hits_are_served_until_their_bound() {
    let l = location();
    let a = Isolate::new(&l.data, &l.colo, &l.clock);
    a.get("k", "v1");
    a.run_tasks();
    a.up.set(false);
    for _ in 0..5 {
        l.clock.advance(100);
        let hit = a.get("k", "origin");
        assert_eq!(
            (hit.status, hit.from_colo, hit.value.as_deref()),
            (Status::Hit, true, Some("v1"))
        );
    }
    l.clock.advance(2_000);
    let bypass = a.get("k", "origin");
    assert_eq!(
        (bypass.status, bypass.value.as_deref()),
        (Status::Bypass, Some("origin"))
    );
    assert_eq!(l.colo.puts.get(), 1, "nothing put while Redis is down");
}

#[test]
fn corrupt_foreign_or_mistyped_colo_entries_are_misses_that_read_redis() {
    let l = location();
    let a = Isolate::new(&l.data, &l.colo, &l.clock);
    a.get("k", "v1");
    a.run_tasks();
    let name = colo::name("http://redis.test", &ek("k"));
    let good = l.colo.entries.borrow()[&name].0.clone();
    let foreign = good.replacen(&name, &colo::name("http://other.test", &ek("k")), 1);
    for body in ["garbage".to_owned(), good.replace("rco1", "rco9"), foreign] {
        l.colo.entries.borrow_mut().insert(name.clone(), (body, 1));
        let before = a.round_trips();
        let got = a.get("k", "x");
        assert_eq!((got.from_colo, got.value.as_deref()), (false, Some("v1")));
        assert_eq!(a.round_trips(), before + 1, "read from Redis");
    }
    // The right entry, read as another type: a miss in the colo, not an error.
    l.colo.entries.borrow_mut().insert(name, (good, 1));
    let json = block_on(a.cache.get_or_fetch("k", &policy(), || async {
        Ok::<_, String>(Some(crate::client::Json(1)))
    }))
    .unwrap();
    assert!(!json.from_colo);
    assert!(a.cache.state().metrics()["test"].corrupt >= 3);
}

#[test]
fn the_plan_adds_nothing_for_a_colo_hit_and_the_tier_is_opt_in() {
    let l = location();
    let a = Isolate::new(&l.data, &l.colo, &l.clock);
    a.get("k", "v1");
    a.run_tasks();
    let plan = Plan::new(a.cache.client());
    let pending = block_on(plan.lookup_colo::<String>(&a.cache, "k", &policy()));
    assert!(pending.answered_by_tier() && plan.is_empty() && plan.wait().is_none());
    let read = pending.finish();
    assert_eq!(read.status(), Status::Hit);

    // Off in the policy: the colo is not asked, Redis is.
    let off = policy().colo_ttl_ms(0);
    let plan = Plan::new(a.cache.client());
    let pending = block_on(plan.lookup_colo::<String>(&a.cache, "k", &off));
    assert!(!pending.answered_by_tier() && !plan.is_empty());
    // No store given to the cache: the same.
    let bare = Cache::new(Rc::clone(&a.cache.client), Rc::clone(a.cache.state()));
    let plan = Plan::new(a.cache.client());
    assert!(!block_on(plan.lookup_colo::<String>(&bare, "k", &policy())).answered_by_tier());
}

#[test]
fn a_colo_hit_fills_the_memory_tier_no_longer_than_the_colo_bound() {
    let l = location();
    let a = Isolate::new(&l.data, &l.colo, &l.clock);
    a.get("k", "v1");
    a.run_tasks();
    let b = Isolate::new(&l.data, &l.colo, &l.clock);
    let both = policy().memory_ttl_ms(10_000);
    let get = |answer: &'static str| {
        block_on(b.cache.get_or_fetch("k", &both, move || async move {
            Ok::<_, String>(Some(answer.to_owned()))
        }))
        .unwrap()
    };
    l.clock.advance(1_500);
    assert!(get("x").from_colo);
    l.clock.advance(400);
    assert!(get("x").from_memory);
    l.clock.advance(100);
    l.colo.entries.borrow_mut().clear();
    let later = get("x");
    assert!(
        !later.from_memory && !later.from_colo,
        "the memory copy ended with the colo's"
    );
}

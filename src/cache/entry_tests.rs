//! `get`, `set`, `set_not_found`, `delete` and `update` against the scripted Redis of `tests.rs`, each
//! counted in round trips (the real scripts run against redis-server in `tests/cache.rs`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pollster::block_on;

use super::tests::{Data, Fixture, Hook, ek, policy, store_with_hook};
use super::*;
use crate::client::Json;

fn counter(f: &Fixture, key: impl Into<Key>) -> Result<Cached<Json<i64>>> {
    block_on(f.cache.get::<Json<i64>>(key, &policy()))
}

fn increment(f: &Fixture, key: &str, by: i64) -> Result<Updated<Json<i64>>> {
    block_on(f.cache.update(key, &policy(), move |Json(n): &Json<i64>| {
        Some(Json(n + by))
    }))
}

#[test]
fn set_then_get_or_fetch_hits_without_the_origin() {
    let f = Fixture::new();
    block_on(f.cache.set("k", &"v".to_owned(), &policy())).unwrap();
    assert_eq!(f.round_trips(), 1, "one script call");
    let stored = f.data.borrow()[&ek("k")].clone();
    assert_eq!(
        stored, "rc1 1000000 1001000 t -\nv",
        "the envelope a lookup writes"
    );
    let calls = Rc::new(Cell::new(0));
    let hit = f.get("k", &policy(), Ok(Some("origin")), &calls).unwrap();
    assert_eq!((hit.status, hit.value.as_deref()), (Status::Hit, Some("v")));
    assert_eq!((calls.get(), f.round_trips()), (0, 2));
}

#[test]
fn get_tells_fresh_stale_absent_and_not_cached_apart() {
    let f = Fixture::new();
    let get = || block_on(f.cache.get::<String>("k", &policy())).unwrap();
    assert_eq!(get(), Cached::NotCached);
    block_on(f.cache.set("k", &"v".to_owned(), &policy())).unwrap();
    assert_eq!(get(), Cached::Fresh("v".into()));
    f.clock.advance(1_000);
    assert_eq!(get(), Cached::Stale("v".into()));
    assert_eq!(get().fresh(), None);
    assert_eq!(get().value().as_deref(), Some("v"));
    f.clock.advance(10_000);
    assert_eq!(get(), Cached::NotCached, "past the grace window");
    block_on(f.cache.set_not_found("k", &policy())).unwrap();
    assert_eq!(get(), Cached::Absent);
    f.clock.advance(500);
    assert_eq!(get(), Cached::NotCached, "no grace for not found");
    assert_eq!(
        f.round_trips(),
        10,
        "eight gets and two writes, one round trip each"
    );
    // A value of another kind does not decode as the type asked for.
    block_on(f.cache.set("j", &Json(1), &policy())).unwrap();
    assert_eq!(
        block_on(f.cache.get::<String>("j", &policy())),
        Ok(Cached::NotCached)
    );
}

#[test]
fn a_set_value_carries_its_own_ttl() {
    let f = Fixture::new();
    block_on(f.cache.set("short", &Json(1), &policy().ttl_ms(100))).unwrap();
    f.clock.advance(100);
    // Read under the group's policy (ttl 1 s): the value's own time decides.
    assert_eq!(counter(&f, "short"), Ok(Cached::Stale(Json(1))));
}

#[test]
fn tags_invalidate_set_values() {
    let f = Fixture::new();
    let key = || Key::new("item").tag("t");
    // A counter that does not exist starts at the clock's time (see `generations`).
    assert_eq!(block_on(f.cache.invalidate_tag("t")), Ok(1_000_000));
    block_on(f.cache.set(key(), &Json(5), &policy())).unwrap();
    assert_eq!(
        f.round_trips(),
        2,
        "this isolate saw the generation it bumped"
    );
    assert!(f.data.borrow()[&ek("item")].starts_with("rc1 1000000 1001000 j 1000000\n"));
    assert_eq!(counter(&f, key()), Ok(Cached::Fresh(Json(5))));
    assert_eq!(
        counter(&f, "item"),
        Ok(Cached::NotCached),
        "read without its tags"
    );
    block_on(f.cache.invalidate_tag("t")).unwrap();
    assert_eq!(counter(&f, key()), Ok(Cached::NotCached));
    assert_eq!(
        block_on(f.cache.update(key(), &policy(), |_: &Json<i64>| {
            panic!("not called on an invalidated entry")
        })),
        Ok(Updated::NotCached)
    );
}

#[test]
fn delete_then_get_misses_and_set_not_found_without_negative_ttl_deletes() {
    let f = Fixture::new();
    block_on(f.cache.set("k", &Json(1), &policy())).unwrap();
    assert_eq!(block_on(f.cache.delete("k")), Ok(true));
    assert_eq!(block_on(f.cache.delete("k")), Ok(false));
    assert_eq!(counter(&f, "k"), Ok(Cached::NotCached));
    block_on(f.cache.set("k", &Json(1), &policy())).unwrap();
    let never = policy().negative_ttl_ms(0);
    block_on(f.cache.set_not_found("k", &never)).unwrap();
    assert!(!f.data.borrow().contains_key(&ek("k")));
}

#[test]
fn bad_input_is_a_typed_error_without_a_round_trip() {
    let f = Fixture::new();
    let small = policy().max_value_bytes(3);
    let big = block_on(f.cache.set("k", &"four".to_owned(), &small)).unwrap_err();
    assert!(big.is_too_large(), "{big}");
    assert!(matches!(
        block_on(f.cache.set("", &"v".to_owned(), &policy())),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        block_on(f.cache.get::<String>(Key::new("k").tag(""), &policy())),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        block_on(f.cache.delete("")),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(f.round_trips(), 0);
}

#[test]
fn set_and_update_keep_the_memory_tier_current() {
    let f = Fixture::new();
    let memory = policy().memory_ttl_ms(200);
    block_on(f.cache.set("k", &Json(1), &memory)).unwrap();
    assert_eq!(
        block_on(f.cache.get("k", &memory)),
        Ok(Cached::Fresh(Json(1)))
    );
    assert_eq!(f.round_trips(), 1, "the get was served from memory");
    let bump = |n: &Json<i64>| Some(Json(n.0 + 1));
    block_on(f.cache.update("k", &memory, bump)).unwrap();
    assert_eq!(
        block_on(f.cache.get("k", &memory)),
        Ok(Cached::Fresh(Json(2)))
    );
    block_on(f.cache.set("k", &Json(7), &policy())).unwrap();
    assert_eq!(
        block_on(f.cache.get("k", &memory)),
        Ok(Cached::Fresh(Json(7))),
        "a set without a memory tier still drops the old copy"
    );
    block_on(f.cache.delete("k")).unwrap();
    assert_eq!(
        block_on(f.cache.get::<Json<i64>>("k", &memory)),
        Ok(Cached::NotCached)
    );
}

#[test]
fn update_changes_in_place_keeping_the_entry_times() {
    let f = Fixture::new();
    block_on(f.cache.set("n", &Json(10), &policy())).unwrap();
    let before = f.round_trips();
    f.clock.advance(400);
    assert_eq!(increment(&f, "n", 5), Ok(Updated::Written(Json(15))));
    assert_eq!(f.round_trips() - before, 2, "read, compare-and-set");
    assert_eq!(
        f.data.borrow()[&ek("n")],
        "rc1 1000000 1001000 j -\n15",
        "created and fresh-until unchanged"
    );
    // Stale values are changed too, and stay stale.
    f.clock.advance(1_000);
    assert_eq!(increment(&f, "n", 1), Ok(Updated::Written(Json(16))));
    assert_eq!(counter(&f, "n"), Ok(Cached::Stale(Json(16))));
    // The closure may decline.
    let declined = block_on(f.cache.update("n", &policy(), |_: &Json<i64>| None));
    assert_eq!(declined, Ok(Updated::Kept(Json(16))));
    // Nothing to change: absent, expired, "not found". The closure is not called.
    let never = |_: &Json<i64>| -> Option<Json<i64>> { panic!("not called") };
    assert_eq!(
        block_on(f.cache.update("none", &policy(), never)),
        Ok(Updated::NotCached)
    );
    block_on(f.cache.set_not_found("gone", &policy())).unwrap();
    assert_eq!(
        block_on(f.cache.update("gone", &policy(), never)),
        Ok(Updated::NotCached)
    );
    f.clock.advance(10_000);
    assert_eq!(
        block_on(f.cache.update("n", &policy(), never)),
        Ok(Updated::NotCached)
    );
}

#[test]
fn twenty_concurrent_updates_in_one_isolate_queue_and_lose_nothing() {
    let f = Fixture::new();
    block_on(f.cache.set("n", &Json(0), &policy())).unwrap();
    let before = f.round_trips();
    let p = policy();
    // The scripted Redis answers at once, so updates would run one after the other. Holding the key's
    // queue until all twenty have joined it makes them overlap, as they do over a network.
    let n = ek("n");
    let place = f.cache.state().updates.join(&n);
    let holder = async {
        let turn = place.queue.lock().await;
        super::tests::yield_once().await;
        drop(turn);
    };
    let updates = (0..20).map(|_| {
        f.cache
            .update("n", &p, |Json(n): &Json<i64>| Some(Json(n + 1)))
    });
    let (_, results) = block_on(futures_util::future::join(
        holder,
        futures_util::future::join_all(updates),
    ));
    drop(place);
    assert!(results.iter().all(|r| matches!(r, Ok(Updated::Written(_)))));
    assert_eq!(
        f.round_trips() - before,
        21,
        "one read, then one compare-and-set each: the queue hands on what it wrote"
    );
    assert_eq!(counter(&f, "n"), Ok(Cached::Fresh(Json(20))));
    assert_eq!(f.cache.state().updates.len(), 0, "the queue is gone");
    // Alone, an update reads first.
    increment(&f, "n", 1).unwrap();
    assert_eq!(f.round_trips() - before, 21 + 1 + 2);
}

fn racing(hook: Hook) -> Fixture {
    let data: Data = Rc::default();
    let transport = store_with_hook(Rc::clone(&data), hook);
    let client = Client::with_transport("http://redis.test", "t", transport).unwrap();
    Fixture::with_client(data, client)
}

/// Another isolate adds 100 to the counter just before each of the next `times` compare-and-sets.
fn other_isolate(times: u32) -> Hook {
    let left = Cell::new(times);
    Rc::new(RefCell::new(Some(Box::new(
        move |data: &mut std::collections::HashMap<String, String>| {
            if left.get() == 0 {
                return;
            }
            left.set(left.get() - 1);
            let entry = data.get_mut(&ek("n")).unwrap();
            let (head, n) = entry.split_once('\n').unwrap();
            *entry = format!("{head}\n{}", n.parse::<i64>().unwrap() + 100);
        },
    ))))
}

#[test]
fn a_lost_race_retries_on_the_newer_value_without_another_read() {
    let f = racing(other_isolate(1));
    block_on(f.cache.set("n", &Json(1), &policy())).unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let outcome = block_on(f.cache.update("n", &policy(), move |Json(n): &Json<i64>| {
        log.borrow_mut().push(*n);
        Some(Json(n * 2))
    }));
    assert_eq!(outcome, Ok(Updated::Written(Json(202))));
    assert_eq!(
        *seen.borrow(),
        [1, 101],
        "ran again on the other isolate's value"
    );
    assert_eq!(
        f.round_trips(),
        1 + 3,
        "set; read, lost compare-and-set, won compare-and-set"
    );
}

#[test]
fn endless_contention_is_a_conflict_error() {
    let f = racing(other_isolate(u32::MAX));
    block_on(f.cache.set("n", &Json(1), &policy())).unwrap();
    let e = increment(&f, "n", 1).unwrap_err();
    assert!(e.is_conflict(), "{e}");
    let attempts = u64::from(MAX_UPDATE_ATTEMPTS);
    assert_eq!(f.round_trips(), 1 + 1 + attempts);
}

mod model {
    //! `get`, `set`, `set_not_found`, `delete`, `update` and tag invalidation against a reference model:
    //! a map from key to (value or "not found", fresh-until, tag generation at write).
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Set(usize, i64, u64),
        SetNotFound(usize),
        Delete(usize),
        Add(usize, i64),
        Get(usize),
        Invalidate,
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, -50..50i64, 1..3_000u64).prop_map(|(k, v, t)| Op::Set(k, v, t)),
            (0..3usize).prop_map(Op::SetNotFound),
            (0..3usize).prop_map(Op::Delete),
            (0..3usize, -5..5i64).prop_map(|(k, d)| Op::Add(k, d)),
            (0..3usize).prop_map(Op::Get),
            Just(Op::Invalidate),
            (0..2_000u64).prop_map(Op::Advance),
        ]
    }

    struct Entry {
        value: Option<i64>,
        fresh_until: u64,
        generation: u64,
    }

    proptest! {
        #[test]
        fn operations_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            let f = Fixture::new();
            let p = policy().grace_ms(1_000);
            let key = |k: usize| Key::new(format!("k{k}")).tag("all");
            let mut model: HashMap<usize, Entry> = HashMap::new();
            let mut generation = 0u64;
            let expected = |model: &HashMap<usize, Entry>, k, now: u64, generation| {
                match model.get(&k) {
                    Some(e) if e.generation == generation => match e.value {
                        Some(v) if now < e.fresh_until => Cached::Fresh(Json(v)),
                        Some(v) if now < e.fresh_until + p.grace_ms => Cached::Stale(Json(v)),
                        None if now < e.fresh_until => Cached::Absent,
                        _ => Cached::NotCached,
                    },
                    _ => Cached::NotCached,
                }
            };
            for op in ops {
                let now = f.clock.now_ms();
                match op {
                    Op::Set(k, v, ttl) => {
                        block_on(f.cache.set(key(k), &Json(v), &p.clone().ttl_ms(ttl))).unwrap();
                        model.insert(k, Entry { value: Some(v), fresh_until: now + ttl, generation });
                    }
                    Op::SetNotFound(k) => {
                        block_on(f.cache.set_not_found(key(k), &p)).unwrap();
                        let until = now + p.negative_ttl_ms;
                        model.insert(k, Entry { value: None, fresh_until: until, generation });
                    }
                    Op::Delete(k) => {
                        block_on(f.cache.delete(key(k).name())).unwrap();
                        model.remove(&k);
                    }
                    Op::Add(k, d) => {
                        let before = expected(&model, k, now, generation);
                        let got = block_on(f.cache.update(key(k), &p, |Json(n): &Json<i64>| Some(Json(n + d)))).unwrap();
                        match before.value() {
                            Some(Json(v)) => {
                                prop_assert_eq!(got, Updated::Written(Json(v + d)));
                                model.get_mut(&k).unwrap().value = Some(v + d);
                            }
                            None => prop_assert_eq!(got, Updated::NotCached),
                        }
                    }
                    Op::Get(k) => {
                        let got = block_on(f.cache.get::<Json<i64>>(key(k), &p)).unwrap();
                        prop_assert_eq!(got, expected(&model, k, now, generation));
                    }
                    Op::Invalidate => {
                        generation = block_on(f.cache.invalidate_tag("all")).unwrap();
                    }
                    Op::Advance(ms) => f.clock.advance(ms),
                }
            }
        }
    }
}

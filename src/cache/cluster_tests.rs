//! The cache on a Redis Cluster's terms: every command's keys in one slot, entries and their leases
//! together, tags apart; and the generations an entry embeds never ahead of their counters.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pollster::block_on;

use super::tests::{Data, Fixture, Hook, ek, policy, redis, store};
use super::*;
use crate::client::{Json, fake_server};
use crate::slot::{cluster_checked, slot};

type Slots = Rc<RefCell<Vec<(String, u16)>>>;

/// A fixture whose service refuses what a cluster refuses, recording each command's slot.
fn cluster(data: &Data, slots: &Slots) -> Fixture {
    let run = cluster_checked(Rc::clone(slots), redis(Rc::clone(data), Hook::default()));
    let client = Client::with_transport("http://redis.test", "t", fake_server(run)).unwrap();
    Fixture::with_client(Rc::clone(data), client)
}

/// Another isolate on the same data.
fn isolate(data: &Data) -> Fixture {
    let client = Client::with_transport("http://redis.test", "t", store(Rc::clone(data))).unwrap();
    Fixture::with_client(Rc::clone(data), client)
}

#[test]
fn every_cache_command_stays_in_one_slot() {
    let data = Data::default();
    let slots = Slots::default();
    let f = cluster(&data, &slots);
    let key = || Key::new("item:7").tags(["users", "item-7", "{odd}"]);
    let calls = Rc::new(Cell::new(0));
    // A miss (read, lease, write and release), then a hit.
    let lookup = f
        .get(key(), &policy().lease_ms(1_000), Ok(Some("v1")), &calls)
        .unwrap();
    assert_eq!(lookup.status, Status::Miss);
    assert_eq!(
        f.get(key(), &policy(), Ok(None), &calls).unwrap().status,
        Status::Hit
    );
    let entry_slot = slot(ek("item:7").as_bytes());
    let tag_slots: Vec<u16> = ["users", "item-7", "{odd}"]
        .iter()
        .map(|t| slot(keys::tag("cache", t).as_bytes()))
        .collect();
    let seen: Vec<u16> = slots.borrow().iter().map(|s| s.1).collect();
    assert!(seen.contains(&entry_slot));
    assert!(tag_slots.iter().all(|s| seen.contains(s)), "{seen:?}");
    assert_eq!(
        slot(keys::lease("cache", "item:7").as_bytes()),
        entry_slot,
        "the lease sits with its entry"
    );
    // Direct access.
    block_on(f.cache.set(key(), &"v2".to_owned(), &policy())).unwrap();
    assert_eq!(
        block_on(f.cache.get::<String>(key(), &policy())),
        Ok(Cached::Fresh("v2".into()))
    );
    let updated = block_on(
        f.cache
            .update(key(), &policy(), |v: &String| Some(format!("{v}+"))),
    );
    assert_eq!(updated, Ok(Updated::Written("v2+".into())));
    assert!(block_on(f.cache.invalidate_tag("item-7")).is_ok());
    assert_eq!(
        block_on(f.cache.get::<String>(key(), &policy())),
        Ok(Cached::NotCached)
    );
    assert_eq!(block_on(f.cache.delete("item:7")), Ok(true));
    assert_eq!(f.cache.state().metrics()["test"].cache_errors, 0);
}

#[test]
fn a_set_is_one_round_trip_when_this_isolate_knows_the_generations() {
    let data = Data::default();
    let a = isolate(&data);
    let b = isolate(&data);
    let key = || Key::new("k").tag("t");
    assert_eq!(block_on(a.cache.invalidate_tag("t")), Ok(1_000_000));
    // B never saw the tag: it writes, reads the counter in the same round trip, and writes again.
    block_on(b.cache.set(key(), &Json(1), &policy())).unwrap();
    assert_eq!(b.round_trips(), 2);
    assert_eq!(
        block_on(a.cache.get::<Json<i64>>(key(), &policy())),
        Ok(Cached::Fresh(Json(1)))
    );
    // Now it knows: one round trip.
    block_on(b.cache.set(key(), &Json(2), &policy())).unwrap();
    assert_eq!(b.round_trips(), 3);
    // Without tags there is nothing to read.
    block_on(b.cache.set("plain", &Json(3), &policy())).unwrap();
    assert_eq!(b.round_trips(), 4);
    // A invalidates again: B's knowledge is behind, its set costs two round trips and is valid.
    block_on(a.cache.invalidate_tag("t")).unwrap();
    block_on(b.cache.set(key(), &Json(4), &policy())).unwrap();
    assert_eq!(b.round_trips(), 6);
    assert_eq!(
        block_on(a.cache.get::<Json<i64>>(key(), &policy())),
        Ok(Cached::Fresh(Json(4)))
    );
}

#[test]
fn an_expired_counter_never_comes_back_to_a_generation_an_entry_embeds() {
    let data = Data::default();
    let f = isolate(&data);
    let key = || Key::new("k").tag("t");
    let counter = keys::tag("cache", "t");
    let first = block_on(f.cache.invalidate_tag("t")).unwrap();
    block_on(f.cache.set(key(), &Json(1), &policy())).unwrap();
    let written = data.borrow()[&ek("k")].clone();
    assert!(written.contains(&format!(" {first}\n")), "{written}");
    // The counter expires: the entry reads as a miss (generation 0 against its `first`).
    data.borrow_mut().remove(&counter);
    let read = |f: &Fixture| block_on(f.cache.get::<Json<i64>>(key(), &policy().memory_ttl_ms(0)));
    assert_eq!(read(&f), Ok(Cached::NotCached));
    // Invalidations after the expiry start past every earlier value and only go up: the old entry
    // (put back, as if a write had left it) never turns valid again.
    f.clock.advance(1);
    for _ in 0..5 {
        let g = block_on(f.cache.invalidate_tag("t")).unwrap();
        assert!(g > first, "{g} > {first}");
        data.borrow_mut().insert(ek("k"), written.clone());
        assert_eq!(read(&f), Ok(Cached::NotCached));
    }
    // This isolate knew `first`, which is ahead of nothing now: its set confirms with the counter.
    data.borrow_mut().remove(&counter);
    block_on(f.cache.set(key(), &Json(2), &policy())).unwrap();
    assert_eq!(read(&f), Ok(Cached::Fresh(Json(2))));
}

#[test]
fn a_set_whose_entry_was_replaced_meanwhile_leaves_the_newer_one() {
    let data = Data::default();
    let hook = Hook::default();
    let client = Client::with_transport(
        "http://redis.test",
        "t",
        super::tests::store_with_hook(Rc::clone(&data), Rc::clone(&hook)),
    )
    .unwrap();
    let f = Fixture::with_client(Rc::clone(&data), client);
    let other = isolate(&data);
    let key = || Key::new("k").tag("t");
    block_on(other.cache.invalidate_tag("t")).unwrap();
    // Between this isolate's write and its confirmation, another write lands.
    let newer = Rc::new(RefCell::new(String::new()));
    let seen = Rc::clone(&newer);
    *hook.borrow_mut() = Some(Box::new(
        move |d: &mut std::collections::HashMap<String, String>| {
            let entry = d.get_mut(&ek("k")).unwrap();
            *entry = entry.replace("\nmine", "\ntheirs");
            *seen.borrow_mut() = entry.clone();
        },
    ));
    block_on(f.cache.set(key(), &"mine".to_owned(), &policy())).unwrap();
    assert!(newer.borrow().ends_with("\ntheirs"));
    assert_eq!(
        data.borrow()[&ek("k")],
        *newer.borrow(),
        "left as the other write made it"
    );
}

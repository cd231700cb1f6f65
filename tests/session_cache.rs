//! The isolate's session cache compiled to wasm, against the real gateway and redis-server: reads
//! within its age cost no round trip, and everything it promises about revocations, writes and expiry
//! holds. Time comes from a fake clock the store shares with its scripts.
#![cfg(target_arch = "wasm32")]

mod support;

use std::rc::Rc;

use redge::client::{Client, FetchTransport};
use redge::clock::FakeClock;
use redge::session::{
    Lifetimes, Revoke, Revoked, SessionCache, SessionConfig, SessionStore, Update,
};
use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

const AGE: u64 = 5_000;

fn client() -> Client<FetchTransport> {
    let (url, token) = support::gateway();
    Client::new(&url, &token).unwrap()
}

fn config(lifetimes: Lifetimes) -> SessionConfig {
    SessionConfig {
        lifetimes,
        prefix: support::unique_key("sess-cache"),
        ..SessionConfig::default()
    }
}

/// A store on `client` with the shared `cache` (when given) and `clock`.
fn store<'c>(
    client: &'c Client<FetchTransport>,
    config: &SessionConfig,
    clock: &FakeClock,
    cache: Option<&Rc<SessionCache>>,
) -> SessionStore<'c, FetchTransport> {
    let store = SessionStore::with_clock(client, config.clone(), clock.clone());
    match cache {
        Some(cache) => store.with_cache(Rc::clone(cache)),
        None => store,
    }
}

fn trips(client: &Client<FetchTransport>) -> u64 {
    client.stats().round_trips
}

/// One isolate's parts: a client, a fake clock at the real time, a cache of `age` ms, and a config.
struct Isolate {
    client: Client<FetchTransport>,
    clock: FakeClock,
    cache: Rc<SessionCache>,
    config: SessionConfig,
}

impl Isolate {
    fn new(age: u64, lifetimes: Lifetimes) -> Self {
        Isolate {
            client: client(),
            clock: FakeClock::new(js_sys::Date::now() as u64),
            cache: SessionCache::new(age, 100),
            config: config(lifetimes),
        }
    }

    /// A request's store, sharing the isolate's cache.
    fn store(&self) -> SessionStore<'_, FetchTransport> {
        store(&self.client, &self.config, &self.clock, Some(&self.cache))
    }
}

#[wasm_bindgen_test]
async fn a_read_within_the_age_costs_no_round_trip_and_one_past_it_goes_to_redis() {
    let isolate = Isolate::new(AGE, Lifetimes::default());
    let store = isolate.store();
    let issued = store.sign_in("ada", &json!({"n": 1}), None).await.unwrap();
    let token = issued.token.expose();

    let first = store.load(&token).await.unwrap().unwrap();
    let before = trips(&isolate.client);
    isolate.clock.advance(AGE - 1);
    let second = store.load(&token).await.unwrap().unwrap();
    assert_eq!(trips(&isolate.client), before, "served from the isolate");
    assert_eq!(second.session, first.session);
    assert!(!second.refreshed);
    assert_eq!(isolate.cache.stats().0, 1);

    isolate.clock.advance(1);
    store.load(&token).await.unwrap().unwrap();
    assert_eq!(
        trips(&isolate.client),
        before + 1,
        "past its age the read goes to Redis"
    );
}

#[wasm_bindgen_test]
async fn a_sign_out_through_this_isolate_takes_effect_at_once() {
    let isolate = Isolate::new(AGE, Lifetimes::default());
    let store = isolate.store();
    let token = store
        .sign_in("bob", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();
    store.load(&token).await.unwrap().unwrap();

    // Another request of the same isolate: a store of its own, the same cache.
    let other_request = isolate.store();
    assert_eq!(
        other_request.revoke(&token, Revoke::Current).await.unwrap(),
        Revoked::Ended(1)
    );
    assert_eq!(store.load(&token).await.unwrap(), None);
}

#[wasm_bindgen_test]
async fn a_sign_out_through_another_isolate_is_seen_within_the_age() {
    let isolate = Isolate::new(AGE, Lifetimes::default());
    let here = isolate.store();
    let elsewhere = store(&isolate.client, &isolate.config, &isolate.clock, None);
    let token = here
        .sign_in("cy", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();
    here.load(&token).await.unwrap().unwrap();

    elsewhere.revoke(&token, Revoke::Current).await.unwrap();
    isolate.clock.advance(AGE - 1);
    assert!(
        here.load(&token).await.unwrap().is_some(),
        "the documented trade-off: still served here until the age passes"
    );
    isolate.clock.advance(1);
    assert_eq!(
        here.load(&token).await.unwrap(),
        None,
        "and not a millisecond longer"
    );
}

#[wasm_bindgen_test]
async fn writes_through_this_isolate_are_read_back_from_redis() {
    let isolate = Isolate::new(AGE, Lifetimes::default());
    let store = isolate.store();
    let token = store
        .sign_in("dee", &json!({"n": 1}), None)
        .await
        .unwrap()
        .token
        .expose();
    let loaded = store.load(&token).await.unwrap().unwrap();

    let update = store
        .update(&token, &json!({"n": 2}), Some(loaded.session.version))
        .await
        .unwrap();
    assert!(matches!(update, Update::Saved(_)), "{update:?}");
    let before = trips(&isolate.client);
    let read = store.load(&token).await.unwrap().unwrap();
    assert_eq!(trips(&isolate.client), before + 1);
    assert_eq!(read.session.data, json!({"n": 2}));

    assert_eq!(store.incr(&token, "visits", 3).await.unwrap(), Some(3));
    let read = store.load(&token).await.unwrap().unwrap();
    assert_eq!(read.session.counters.get("visits"), Some(&3));
}

#[wasm_bindgen_test]
async fn sign_out_everywhere_forgets_every_session_of_the_user_held_here() {
    let isolate = Isolate::new(AGE, Lifetimes::default());
    let store = isolate.store();
    let laptop = store
        .sign_in("eve", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();
    let phone = store
        .sign_in("eve", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();
    let other_user = store
        .sign_in("fay", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();
    for token in [&laptop, &phone, &other_user] {
        store.load(token).await.unwrap().unwrap();
    }
    assert_eq!(isolate.cache.len(), 3);
    assert_eq!(
        store.revoke(&laptop, Revoke::All).await.unwrap(),
        Revoked::Ended(2)
    );
    assert_eq!(store.load(&phone).await.unwrap(), None);
    assert_eq!(isolate.cache.len(), 1, "only fay's session is still held");
    let before = trips(&isolate.client);
    store.load(&other_user).await.unwrap().unwrap();
    assert_eq!(
        trips(&isolate.client),
        before,
        "another user's session stays cached"
    );
}

#[wasm_bindgen_test]
async fn a_cached_session_is_never_served_past_its_expiry_or_to_the_wrong_secret() {
    // Idle timeout 2 s, far shorter than the cache's age.
    let isolate = Isolate::new(60_000, Lifetimes::new(2_000, 60_000).unwrap());
    let store = isolate.store();
    let token = store
        .sign_in("gus", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();
    store.load(&token).await.unwrap().unwrap();

    // The right id with another secret: never served from memory, and Redis refuses it.
    let (id, secret) = token.split_once('.').unwrap();
    // The first character changes: all its bits are the secret's (the last one's low bits must be
    // zero, so changing those would be a malformed token, refused without asking Redis).
    let first = if secret.starts_with('A') { "B" } else { "A" };
    let forged_secret = format!("{first}{}", &secret[1..]);
    let before = trips(&isolate.client);
    assert_eq!(
        store.load(&format!("{id}.{forged_secret}")).await.unwrap(),
        None
    );
    assert_eq!(trips(&isolate.client), before + 1);

    isolate.clock.advance(2_000);
    assert_eq!(
        store.load(&token).await.unwrap(),
        None,
        "idle-expired, cache or not"
    );
}

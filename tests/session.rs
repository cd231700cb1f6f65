//! Sessions compiled to wasm, against the real gateway and redis-server (see `tests/support/mod.rs`).
//! Time comes from a fake clock started at the real time, so expiry is exact and nothing sleeps.
#![cfg(target_arch = "wasm32")]

mod support;

use std::cell::Cell;

use redge::Error;
use redge::client::commands as c;
use redge::client::{Client, FetchTransport, cmd};
use redge::clock::FakeClock;
use redge::session::{
    Lifetimes, Random, Revoke, Revoked, SessionConfig, SessionId, SessionStore, Token, Update,
    WebCrypto,
};
use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

const MIN: u64 = 60_000;

fn client() -> Client<FetchTransport> {
    let (url, token) = support::gateway();
    Client::new(&url, &token).unwrap()
}

fn config(lifetimes: Lifetimes) -> SessionConfig {
    SessionConfig {
        lifetimes,
        prefix: support::unique_key("sess"),
        ..SessionConfig::default()
    }
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// A store with a fake clock at the real time and default lifetimes.
fn store(client: &Client<FetchTransport>) -> (SessionStore<'_, FetchTransport>, FakeClock) {
    let clock = FakeClock::new(now());
    let store = SessionStore::with_clock(client, config(Lifetimes::default()), clock.clone());
    (store, clock)
}

fn trips(client: &Client<FetchTransport>) -> u64 {
    client.stats().round_trips
}

/// The raw record field `field` of session `id`.
async fn field(
    client: &Client<FetchTransport>,
    prefix: &str,
    id: &str,
    field: &str,
) -> Option<String> {
    client
        .query(&c::hget(
            redge::session::session_key(prefix, &SessionId::parse(id).unwrap()),
            field,
        ))
        .await
        .unwrap()
}

#[wasm_bindgen_test]
async fn sign_in_then_every_read_is_one_round_trip() {
    let client = client();
    let (store, _clock) = store(&client);
    let issued = store
        .sign_in("alice", &json!({"theme": "dark"}), None)
        .await
        .unwrap();
    assert_eq!(trips(&client), 1);
    let token = issued.token.expose();
    assert_eq!(token.len(), redge::session::TOKEN_LEN);
    let loaded = store.load(&token).await.unwrap().unwrap();
    assert_eq!(trips(&client), 2);
    assert!(!loaded.refreshed);
    assert_eq!(loaded.session, issued.session);
    assert_eq!(loaded.session.user, "alice");
    assert_eq!(loaded.session.data["theme"], "dark");
    assert_eq!(
        loaded.session.idle_expires_at - loaded.session.created,
        30 * MIN
    );
    assert_eq!(
        loaded.session.absolute_expires_at - loaded.session.created,
        12 * 60 * MIN
    );

    // Redis holds the hash of the secret, never the secret, and the key only the public id.
    let prefix = &store.config().prefix;
    let id = issued.token.id().as_str();
    let stored = field(&client, prefix, id, "h").await.unwrap();
    assert_eq!(stored, issued.token.secret_hash().to_hex());
    let secret = &token[id.len() + 1..];
    let keys: Vec<String> = client
        .query(&cmd("KEYS").arg(format!("{prefix}*")))
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains(secret)));
    // Redis owns expiry: the record and the index both have a TTL.
    for key in &keys {
        let ttl: i64 = client.query(&c::pttl(key)).await.unwrap();
        assert!(
            ttl > 29 * MIN as i64 && ttl <= 30 * MIN as i64,
            "{key}: {ttl}"
        );
    }
}

#[wasm_bindgen_test]
async fn a_load_shares_the_batch_with_other_capabilities() {
    let client = client();
    let (store, _clock) = store(&client);
    let issued = store.sign_in("bob", &json!({}), None).await.unwrap();
    let hits = support::unique_key("hits");
    let before = trips(&client);
    let batch = client.batch();
    let counter = batch.add::<i64>(c::incr(&hits));
    let session = store.prepare_load(&batch, &issued.token.expose());
    let junk = store.prepare_load(&batch, "not-a-token");
    batch.send().await.unwrap();
    assert_eq!(counter.take(), Ok(1));
    assert_eq!(session.finish().unwrap().unwrap().session.user, "bob");
    assert_eq!(junk.finish(), Ok(None));
    assert_eq!(trips(&client) - before, 1);
    let _: () = client.query(&c::del([&hits])).await.unwrap();
}

#[wasm_bindgen_test]
async fn forged_truncated_and_oversized_tokens() {
    let client = client();
    let (store, _clock) = store(&client);
    let issued = store.sign_in("carol", &json!({}), None).await.unwrap();
    let good = issued.token.expose();
    let before = trips(&client);
    let oversized = format!("{good}{}", "A".repeat(4096));
    let malformed = [
        String::new(),
        good[..good.len() - 1].to_owned(),
        good[..22].to_owned(),
        oversized,
        good.replace('.', "_"),
        format!("{}+{}", &good[..10], &good[11..]),
        format!("{}\0", &good[..good.len() - 1]),
    ];
    for bad in &malformed {
        assert_eq!(store.load(bad).await, Ok(None));
        assert_eq!(store.list(bad).await, Ok(None));
        assert_eq!(
            store.revoke(bad, Revoke::All).await,
            Ok(Revoked::Unauthenticated)
        );
    }
    assert_eq!(trips(&client), before, "malformed tokens never reach Redis");

    // A well-formed forgery (the real id, another secret) costs one round trip and is refused.
    let forged = format!("{}.{}", issued.token.id(), "A".repeat(43));
    assert_eq!(store.load(&forged).await, Ok(None));
    assert_eq!(
        store.update(&forged, &json!({"owned": true}), None).await,
        Ok(Update::Unauthenticated)
    );
    assert_eq!(
        store.revoke(&forged, Revoke::All).await,
        Ok(Revoked::Unauthenticated)
    );
    assert_eq!(trips(&client), before + 3);
    // ...and leaves the real session untouched.
    let loaded = store.load(&good).await.unwrap().unwrap();
    assert_eq!(loaded.session.data, json!({}));
}

#[wasm_bindgen_test]
async fn idle_expiry_ends_a_session_and_removes_it() {
    let client = client();
    let (store, clock) = store(&client);
    let issued = store.sign_in("dave", &json!({}), None).await.unwrap();
    let token = issued.token.expose();
    clock.advance(30 * MIN - 1);
    assert!(
        store.load(&token).await.unwrap().is_some(),
        "alive 1 ms before"
    );
    // That read refreshed it (less than half the window was left): idle again from here.
    clock.advance(30 * MIN);
    assert_eq!(store.load(&token).await, Ok(None));
    let prefix = &store.config().prefix;
    assert_eq!(
        field(&client, prefix, issued.token.id().as_str(), "v").await,
        None
    );
    let members: i64 = client
        .query(&c::zcard(redge::session::index_key(prefix, "dave")))
        .await
        .unwrap();
    assert_eq!(members, 0, "the index forgot it too");
}

#[wasm_bindgen_test]
async fn the_absolute_cap_ends_an_active_session() {
    let client = client();
    let clock = FakeClock::new(now());
    let lifetimes = Lifetimes::new(10 * MIN, 25 * MIN).unwrap();
    let store = SessionStore::with_clock(&client, config(lifetimes), clock.clone());
    let issued = store.sign_in("erin", &json!({}), None).await.unwrap();
    let token = issued.token.expose();
    let cap = issued.session.absolute_expires_at;
    // Active every 6 minutes: the idle timeout never bites, the cap does.
    for _ in 0..4 {
        clock.advance(6 * MIN);
        let loaded = store.load(&token).await.unwrap().unwrap();
        assert!(loaded.session.idle_expires_at <= cap);
    }
    let last = store.load(&token).await.unwrap().unwrap();
    assert_eq!(
        last.session.idle_expires_at, cap,
        "refresh stops at the cap"
    );
    clock.set(cap - 1);
    assert!(store.load(&token).await.unwrap().is_some());
    clock.set(cap);
    assert_eq!(store.load(&token).await, Ok(None));
}

#[wasm_bindgen_test]
async fn refresh_is_throttled_to_once_per_half_window() {
    let client = client();
    let (store, clock) = store(&client);
    let issued = store.sign_in("frank", &json!({}), None).await.unwrap();
    let token = issued.token.expose();
    let prefix = store.config().prefix.clone();
    let id = issued.token.id().as_str().to_owned();
    let written = field(&client, &prefix, &id, "s").await;

    // 30 reads over the first half of the window: none writes.
    let mut writes = 0;
    for _ in 0..30 {
        clock.advance(30_000);
        let loaded = store.load(&token).await.unwrap().unwrap();
        writes += u32::from(loaded.refreshed);
        assert!(!Lifetimes::default().refresh_due(
            clock.now(),
            loaded.session.idle_expires_at,
            loaded.session.absolute_expires_at
        ));
    }
    assert_eq!(writes, 0);
    assert_eq!(
        field(&client, &prefix, &id, "s").await,
        written,
        "nothing written"
    );

    // Past the half: the next read writes once, the following ones do not.
    clock.advance(1);
    let loaded = store.load(&token).await.unwrap().unwrap();
    assert!(loaded.refreshed);
    assert_eq!(loaded.session.last_seen, clock.now());
    assert_eq!(loaded.session.idle_expires_at, clock.now() + 30 * MIN);
    for _ in 0..10 {
        clock.advance(1000);
        assert!(!store.load(&token).await.unwrap().unwrap().refreshed);
    }
    let ttl: i64 = client
        .query(&c::pttl(redge::session::session_key(
            &prefix,
            &SessionId::parse(&id).unwrap(),
        )))
        .await
        .unwrap();
    assert!(
        ttl > 29 * MIN as i64,
        "the refresh moved Redis's TTL: {ttl}"
    );
}

trait Now {
    fn now(&self) -> u64;
}

impl Now for FakeClock {
    fn now(&self) -> u64 {
        redge::clock::Clock::now_ms(self)
    }
}

#[wasm_bindgen_test]
async fn rotation_leaves_no_usable_old_token() {
    let client = client();
    let (store, clock) = store(&client);
    let issued = store
        .sign_in("grace", &json!({"cart": [1, 2]}), None)
        .await
        .unwrap();
    let old = issued.token.expose();
    assert_eq!(store.incr(&old, "views", 3).await, Ok(Some(3)));
    clock.advance(MIN);
    let before = trips(&client);
    let rotated = store.rotate(&old).await.unwrap().unwrap();
    assert_eq!(trips(&client) - before, 1);
    let new = rotated.token.expose();
    assert_ne!(rotated.token.id(), issued.token.id());
    assert_eq!(
        rotated.token.id().tag(),
        issued.token.id().tag(),
        "the tag is kept"
    );
    assert_eq!(store.load(&old).await, Ok(None));
    assert_eq!(
        store.rotate(&old).await,
        Ok(None),
        "the old token cannot rotate again"
    );
    let loaded = store.load(&new).await.unwrap().unwrap().session;
    assert_eq!(loaded.data, json!({"cart": [1, 2]}));
    assert_eq!(loaded.counters.get("views"), Some(&3));
    assert_eq!(loaded.created, issued.session.created);
    assert_eq!(
        loaded.absolute_expires_at,
        issued.session.absolute_expires_at
    );
    let list = store.list(&new).await.unwrap().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].current);
    assert_eq!(list[0].id, *rotated.token.id());
}

#[wasm_bindgen_test]
async fn signing_in_over_a_session_rotates_it() {
    let client = client();
    let (store, _clock) = store(&client);
    let first = store
        .sign_in("heidi", &json!({"a": 1}), None)
        .await
        .unwrap();
    let again = store
        .sign_in("heidi", &json!({}), Some(&first.token.expose()))
        .await
        .unwrap();
    assert_eq!(store.load(&first.token.expose()).await, Ok(None));
    let kept = store.load(&again.token.expose()).await.unwrap().unwrap();
    assert_eq!(kept.session.data, json!({"a": 1}), "same user: data kept");
    assert_eq!(again.token.id().tag(), redge::session::user_tag("heidi"));
    let trips = client.stats().round_trips;
    let other = store
        .sign_in("ivan", &json!({}), Some(&again.token.expose()))
        .await
        .unwrap();
    assert_eq!(
        client.stats().round_trips,
        trips + 1,
        "another user's session (another slot) is ended in the same round trip"
    );
    assert_ne!(other.token.id().tag(), again.token.id().tag());
    assert_eq!(store.load(&again.token.expose()).await, Ok(None));
    let heidi_index: i64 = client
        .query(&c::exists([store.index_key("heidi")]))
        .await
        .unwrap();
    assert_eq!(heidi_index, 0, "heidi's index lost its only session");
    assert_eq!(
        other.session.data,
        json!({}),
        "another user: nothing carried over"
    );
    assert_eq!(
        store
            .list(&other.token.expose())
            .await
            .unwrap()
            .unwrap()
            .len(),
        1
    );
}

#[wasm_bindgen_test]
async fn revoke_all_ends_fifty_sessions_in_one_round_trip() {
    let client = client();
    let (store, _clock) = store(&client);
    let user = format!("judy-{}", now());
    let mut tokens = Vec::new();
    for _ in 0..50 {
        tokens.push(
            store
                .sign_in(&user, &json!({}), None)
                .await
                .unwrap()
                .token
                .expose(),
        );
    }
    let listed = store.list(&tokens[7]).await.unwrap().unwrap();
    assert_eq!(listed.len(), 50);
    assert_eq!(listed.iter().filter(|s| s.current).count(), 1);

    let before = trips(&client);
    assert_eq!(
        store.revoke(&tokens[0], Revoke::All).await,
        Ok(Revoked::Ended(50))
    );
    assert_eq!(trips(&client) - before, 1);

    // All 50 checked in one batch: none survives, and the index is gone.
    let batch = client.batch();
    let loads: Vec<_> = tokens
        .iter()
        .map(|t| store.prepare_load(&batch, t))
        .collect();
    batch.send().await.unwrap();
    assert!(loads.into_iter().all(|l| l.finish() == Ok(None)));
    let index: i64 = client
        .query(&c::exists([store.index_key(&user)]))
        .await
        .unwrap();
    assert_eq!(index, 0);
}

#[wasm_bindgen_test]
async fn revoking_one_session_only_works_on_my_own() {
    let client = client();
    let (store, _clock) = store(&client);
    let mine = store.sign_in("kim", &json!({}), None).await.unwrap().token;
    let my_other = store.sign_in("kim", &json!({}), None).await.unwrap().token;
    let theirs = store.sign_in("leo", &json!({}), None).await.unwrap().token;
    let as_me = mine.expose();
    assert_eq!(
        store
            .revoke(&as_me, Revoke::One(theirs.id().as_str()))
            .await,
        Ok(Revoked::NotFound)
    );
    assert!(store.load(&theirs.expose()).await.unwrap().is_some());
    assert_eq!(
        store
            .revoke(&as_me, Revoke::One(my_other.id().as_str()))
            .await,
        Ok(Revoked::Ended(1))
    );
    assert_eq!(store.load(&my_other.expose()).await, Ok(None));
    assert_eq!(
        store.revoke(&as_me, Revoke::Current).await,
        Ok(Revoked::Ended(1))
    );
    assert_eq!(store.load(&as_me).await, Ok(None));
    // A late write does not bring a signed-out session back (SET XX semantics).
    assert_eq!(
        store.update(&as_me, &json!({"late": true}), None).await,
        Ok(Update::Unauthenticated)
    );
    assert_eq!(store.incr(&as_me, "n", 1).await, Ok(None));
    assert_eq!(
        field(&client, &store.config().prefix, mine.id().as_str(), "d").await,
        None
    );
    assert_eq!(store.revoke_user("leo").await, Ok(1));
    assert_eq!(store.load(&theirs.expose()).await, Ok(None));
}

#[wasm_bindgen_test]
async fn concurrent_updates_with_compare_and_set() {
    let client = client();
    let (store, _clock) = store(&client);
    let token = store
        .sign_in("mia", &json!({"n": 0}), None)
        .await
        .unwrap()
        .token
        .expose();
    let read = store.load(&token).await.unwrap().unwrap().session;
    assert_eq!(read.version, 0);

    // Two requests read version 0 and both write with it: exactly one wins.
    let batch = client.batch();
    let a = store.prepare_update(&batch, &token, &json!({"n": "a"}), Some(read.version));
    let b = store.prepare_update(&batch, &token, &json!({"n": "b"}), Some(read.version));
    batch.send().await.unwrap();
    let Update::Saved(saved) = a.finish().unwrap() else {
        panic!("the first writer wins")
    };
    assert_eq!(saved.session.version, 1);
    let Update::Conflict(current) = b.finish().unwrap() else {
        panic!("the second writer sees a conflict")
    };
    assert_eq!(current.version, 1);
    assert_eq!(current.data, json!({"n": "a"}));

    // Without a version, last writer wins.
    let Update::Saved(last) = store
        .update(&token, &json!({"n": "c"}), None)
        .await
        .unwrap()
    else {
        panic!("saved")
    };
    assert_eq!(last.session.version, 2);

    // Counters have their own fields: interleaved increments all count, and data writes keep them.
    let other_client = self::client();
    let (other_store, _c) = store_sharing(&other_client, &store);
    let batch = client.batch();
    let other_batch = other_client.batch();
    for _ in 0..10 {
        store.prepare_incr(&batch, &token, "clicks", 1);
        other_store.prepare_incr(&other_batch, &token, "clicks", 2);
    }
    let update = other_store.prepare_update(&other_batch, &token, &json!({"n": "d"}), None);
    let (x, y) = futures_join(batch.send(), other_batch.send()).await;
    x.unwrap();
    y.unwrap();
    assert!(matches!(update.finish(), Ok(Update::Saved(_))));
    let session = store.load(&token).await.unwrap().unwrap().session;
    assert_eq!(session.counters.get("clicks"), Some(&30));
    assert_eq!(session.data, json!({"n": "d"}));
}

/// Another client's view of the same store (same prefix and lifetimes).
fn store_sharing<'c>(
    client: &'c Client<FetchTransport>,
    like: &SessionStore<'_, FetchTransport>,
) -> (SessionStore<'c, FetchTransport>, FakeClock) {
    let clock = FakeClock::new(now());
    let store = SessionStore::with_clock(client, like.config().clone(), clock.clone());
    (store, clock)
}

/// Runs two futures at once (both requests are in flight together).
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let mut ra = None;
    let mut rb = None;
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let std::task::Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let std::task::Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    match (ra, rb) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("both finished"),
    }
}

#[wasm_bindgen_test]
async fn an_unreachable_store_is_a_503_class_error_and_the_session_survives() {
    let client = client();
    let (store, _clock) = store(&client);
    let token = store
        .sign_in("nina", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();

    // Nothing listens on port 9: the store is down.
    let (_url, secret) = support::gateway();
    let down = Client::new("http://127.0.0.1:9", &secret).unwrap();
    let (down_store, _c) = store_sharing(&down, &store);
    let err = down_store.load(&token).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        !err.to_string().contains(&token[23..]),
        "no secret in errors"
    );
    assert!(
        down_store
            .update(&token, &json!({}), None)
            .await
            .unwrap_err()
            .is_unavailable()
    );
    assert!(
        down_store
            .revoke(&token, Revoke::All)
            .await
            .unwrap_err()
            .is_unavailable()
    );

    // A proxy that loses the first response: the error is reported, not retried (a write script) and
    // not mistaken for "no session"; the next request finds the session intact.
    let (url, _) = support::gateway();
    let port = support::flaky_server(1, &url).await;
    let flaky = Client::new(&format!("http://127.0.0.1:{port}"), &secret).unwrap();
    let (flaky_store, _c) = store_sharing(&flaky, &store);
    assert!(flaky_store.load(&token).await.unwrap_err().is_unavailable());
    assert!(flaky_store.load(&token).await.unwrap().is_some());
    assert!(store.load(&token).await.unwrap().is_some());
}

#[wasm_bindgen_test]
async fn a_slow_store_is_a_timeout_never_no_session() {
    let client = client();
    let (store, _clock) = store(&client);
    let token = store
        .sign_in("nora", &json!({}), None)
        .await
        .unwrap()
        .token
        .expose();
    // Answers after 3 s; the client gives up after 300 ms.
    let port = support::slow_server(3_000).await;
    let options = redge::client::Options {
        timeout_ms: 300,
        ..redge::client::Options::default()
    };
    let slow = Client::with_options(&format!("http://127.0.0.1:{port}"), "t", options).unwrap();
    let (slow_store, _c) = store_sharing(&slow, &store);
    let err = slow_store.load(&token).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(300)), "{err}");
    assert!(err.is_unavailable(), "a 503 for the visitor, not a 401");
    let err = slow_store
        .update(&token, &json!({"a": 1}), None)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let back = store
        .load(&token)
        .await
        .unwrap()
        .expect("the session survived");
    assert_eq!(back.session.data, json!({}), "the session is intact");
}

#[wasm_bindgen_test]
async fn a_write_that_reaches_redis_after_its_deadline_changes_nothing() {
    let client = client();
    let (store, _clock) = store(&client);
    let issued = store
        .sign_in("lena", &json!({"step": "before"}), None)
        .await
        .unwrap();
    let token = issued.token.expose();
    let (url, secret) = support::gateway();
    let options = redge::client::Options {
        timeout_ms: 300,
        ..redge::client::Options::default()
    };

    // Reaches Redis in time: applied (the proxy itself changes nothing).
    let port = support::late_server(20, &url).await;
    let prompt =
        Client::with_options(&format!("http://127.0.0.1:{port}"), &secret, options).unwrap();
    let (prompt_store, _c) = store_sharing(&prompt, &store);
    let saved = prompt_store
        .update(&token, &json!({"step": "prompt"}), Some(0))
        .await
        .unwrap();
    assert!(matches!(saved, Update::Saved(_)), "{saved:?}");

    // Reaches Redis 300 ms (the client's timeout) + 500 ms (the slack) + 400 ms after it was sent:
    // the client reported a timeout, and none of these writes may happen behind its back.
    let port = support::late_server(1_200, &url).await;
    let late = Client::with_options(&format!("http://127.0.0.1:{port}"), &secret, options).unwrap();
    let (late_store, _c) = store_sharing(&late, &store);
    let err = late_store
        .update(&token, &json!({"step": "late"}), Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(300)), "{err}");
    let err = late_store
        .sign_in("lena", &json!({}), Some(&token))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let err = late_store.rotate(&token).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let err = late_store.incr(&token, "clicks", 5).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // Every one of them has reached Redis by now.
    support::sleep_ms(1_600).await;
    assert_eq!(support::request_count(port), 4);

    let back = store
        .load(&token)
        .await
        .unwrap()
        .expect("the session was neither rotated nor replaced");
    assert_eq!(back.session.data, json!({"step": "prompt"}));
    assert_eq!(back.session.version, 1);
    assert_eq!(store.list(&token).await.unwrap().map(|l| l.len()), Some(1));
    assert_eq!(store.incr(&token, "clicks", 0).await.unwrap(), Some(0));
}

#[wasm_bindgen_test]
async fn unknown_envelope_versions_are_refused_cleanly() {
    let client = client();
    let (store, _clock) = store(&client);
    let issued = store.sign_in("olga", &json!({}), None).await.unwrap();
    let key = store.session_key(issued.token.id());
    let _: i64 = client.query(&c::hset(&key, [("v", "2")])).await.unwrap();
    let err = store.load(&issued.token.expose()).await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("version 2"), "{err}");
    // Refused, not deleted: the newer code that wrote it can still read it.
    let exists: i64 = client.query(&c::exists([&key])).await.unwrap();
    assert_eq!(exists, 1);
}

/// Hands out the same bytes to every store built from the same seed: ids collide on purpose.
struct Repeating(Cell<u8>);

impl Random for Repeating {
    fn fill(&self, buf: &mut [u8]) -> redge::Result<()> {
        for b in buf {
            *b = self.0.get();
            self.0.set(self.0.get().wrapping_add(1));
        }
        Ok(())
    }
}

#[wasm_bindgen_test]
async fn a_taken_id_is_never_overwritten() {
    let client = client();
    let cfg = config(Lifetimes::default());
    let seed = (js_sys::Math::random() * 200.0) as u8;
    let clock = FakeClock::new(now());
    let first = SessionStore::with_parts(
        &client,
        cfg.clone(),
        clock.clone(),
        Repeating(Cell::new(seed)),
    );
    let second = SessionStore::with_parts(&client, cfg, clock, Repeating(Cell::new(seed)));
    let a = first
        .sign_in("pat", &json!({"who": "first"}), None)
        .await
        .unwrap();
    let b = second
        .sign_in("quinn", &json!({"who": "second"}), None)
        .await
        .unwrap();
    assert_ne!(a.token.id(), b.token.id(), "the second candidate was used");
    let still = first.load(&a.token.expose()).await.unwrap().unwrap();
    assert_eq!(still.session.user, "pat");
    assert_eq!(still.session.data, json!({"who": "first"}));
    assert_eq!(
        client.stats().round_trips,
        3,
        "no extra round trip for the collision"
    );
}

#[wasm_bindgen_test]
fn web_crypto_tokens_differ() {
    let a = Token::generate(&WebCrypto).unwrap();
    let b = Token::generate(&WebCrypto).unwrap();
    assert_ne!(a, b);
    assert_eq!(Token::parse(&a.expose()).unwrap(), a);
}

#[wasm_bindgen_test]
async fn the_script_and_the_rust_arithmetic_agree_on_expiry_and_refresh() {
    let client = client();
    let clock = FakeClock::new(now());
    let lifetimes = Lifetimes::new(10 * MIN, 25 * MIN).unwrap();
    let store = SessionStore::with_clock(&client, config(lifetimes), clock.clone());
    let idle = lifetimes.idle_ms();
    // Each case: a fresh session, one read `offset` ms later, optionally after reads that moved it.
    for (hops, offset) in [
        (0, 0),
        (0, 1),
        (0, idle / 2 - 1),
        (0, idle / 2),
        (0, idle / 2 + 1),
        (0, idle - 1),
        (0, idle),
        (2, idle / 2 + 1),
        (2, idle - 1),
        (3, 1),
        (3, idle / 2 + 1),
    ] {
        let start = now();
        clock.set(start);
        let issued = store
            .sign_in("rust-vs-lua", &json!({}), None)
            .await
            .unwrap();
        let token = issued.token.expose();
        let (mut idle_at, absolute_at) = (
            issued.session.idle_expires_at,
            issued.session.absolute_expires_at,
        );
        // Hop forward by 8 minutes `hops` times, refreshing as the script sees fit.
        for _ in 0..hops {
            clock.advance(8 * MIN);
            let l = store.load(&token).await.unwrap().unwrap();
            idle_at = l.session.idle_expires_at;
        }
        clock.advance(offset);
        let at = clock.now();
        let loaded = store.load(&token).await.unwrap();
        let case = format!("hops {hops}, offset {offset}");
        if Lifetimes::expired(at, idle_at, absolute_at) {
            assert_eq!(loaded, None, "{case}: Rust says expired");
            continue;
        }
        let loaded = loaded.unwrap_or_else(|| panic!("{case}: Rust says alive"));
        let due = lifetimes.refresh_due(at, idle_at, absolute_at);
        assert_eq!(loaded.refreshed, due, "{case}");
        let expected = if due {
            lifetimes.refreshed(at, absolute_at)
        } else {
            idle_at
        };
        assert_eq!(loaded.session.idle_expires_at, expected, "{case}");
    }
}

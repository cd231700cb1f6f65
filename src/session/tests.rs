//! The store's local decisions and failure paths against a scripted transport. The scripts themselves
//! run against real Redis in `tests/session.rs`.

use std::cell::RefCell;
use std::rc::Rc;

use pollster::block_on;
use serde_json::json;

use super::token::Counter;
use super::*;
use crate::client::{Client, HttpRequest, HttpResponse, Transport};
use crate::clock::FakeClock;

/// Answers every request with `answer`, recording the bodies.
struct Scripted {
    answer: fn() -> Result<HttpResponse>,
    bodies: Rc<RefCell<Vec<String>>>,
}

impl Transport for Scripted {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        self.bodies
            .borrow_mut()
            .push(String::from_utf8_lossy(&request.body).into_owned());
        (self.answer)()
    }
}

fn client(answer: fn() -> Result<HttpResponse>) -> Client<Scripted> {
    let transport = Scripted {
        answer,
        bodies: Rc::default(),
    };
    Client::with_transport("http://redis.test", "t", transport).unwrap()
}

fn store<T: Transport>(client: &Client<T>) -> SessionStore<'_, T> {
    SessionStore::with_parts(
        client,
        SessionConfig::default(),
        FakeClock::new(1_000_000),
        Counter::new(0),
    )
}

fn refused() -> Result<HttpResponse> {
    Err(Error::Transport("connection refused".into()))
}

fn valid_token() -> String {
    Token::generate(&Counter::new(9)).unwrap().expose()
}

#[test]
fn malformed_tokens_never_reach_the_transport() {
    let client = client(refused);
    let store = store(&client);
    let long = "x".repeat(10_000);
    for bad in ["", "abc", "a.b", long.as_str(), "é"] {
        assert_eq!(block_on(store.load(bad)), Ok(None));
        assert_eq!(
            block_on(store.update(bad, &json!({}), None)),
            Ok(Update::Unauthenticated)
        );
        assert_eq!(block_on(store.list(bad)), Ok(None));
        assert_eq!(block_on(store.incr(bad, "n", 1)), Ok(None));
        assert_eq!(block_on(store.rotate(bad)), Ok(None));
        assert_eq!(
            block_on(store.revoke(bad, Revoke::All)),
            Ok(Revoked::Unauthenticated)
        );
    }
    let good = valid_token();
    assert_eq!(
        block_on(store.revoke(&good, Revoke::One("not-an-id"))),
        Ok(Revoked::NotFound)
    );
    assert_eq!(client.stats().round_trips, 0);
}

#[test]
fn bad_input_is_refused_before_sending() {
    let client = client(refused);
    let store = store(&client);
    let user = "u".repeat(MAX_USER_LEN + 1);
    let err = block_on(store.sign_in(&user, &json!({}), None)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
    assert!(block_on(store.sign_in("a\nb", &json!({}), None)).is_err());
    let big = json!({ "blob": "x".repeat(DEFAULT_MAX_DATA_BYTES) });
    assert!(
        block_on(store.sign_in("alice", &big, None))
            .unwrap_err()
            .is_too_large()
    );
    assert!(
        block_on(store.update(&valid_token(), &big, None))
            .unwrap_err()
            .is_too_large()
    );
    assert!(block_on(store.incr(&valid_token(), "", 1)).is_err());
    assert_eq!(client.stats().round_trips, 0);
}

#[test]
fn an_unreachable_store_is_an_unavailable_error_not_a_missing_session() {
    let client = client(refused);
    let store = store(&client);
    let token = valid_token();
    let err = block_on(store.load(&token)).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(!err.to_string().contains(&token[23..]));
    assert!(
        block_on(store.sign_in("alice", &json!({}), None))
            .unwrap_err()
            .is_unavailable()
    );
    // Writes are not retried: one round trip each.
    assert_eq!(client.stats().round_trips, 2);
}

#[test]
fn keys_and_arguments_hold_the_hash_never_the_secret() {
    let bodies = Rc::new(RefCell::new(Vec::new()));
    let transport = Scripted {
        answer: refused,
        bodies: Rc::clone(&bodies),
    };
    let client = Client::with_transport("http://redis.test", "t", transport).unwrap();
    let store = store(&client);
    let token = Token::parse(&valid_token()).unwrap();
    let _ = block_on(store.load(&token.expose()));
    let _ = block_on(store.sign_in("alice", &json!({}), Some(&token.expose())));
    let secret = &token.expose()[token::ID_LEN + 1..];
    assert_eq!(bodies.borrow().len(), 2);
    for body in bodies.borrow().iter() {
        assert!(!body.contains(secret), "{body}");
    }
}

#[test]
fn a_prepared_load_shares_the_batch_and_reads_nothing_before_send() {
    let client = client(refused);
    let store = store(&client);
    let batch = client.batch();
    let junk = store.prepare_load(&batch, "junk");
    assert!(!junk.is_queued());
    let pending = store.prepare_load(&batch, &valid_token());
    assert!(pending.is_queued());
    assert_eq!(batch.len(), 1);
    assert_eq!(junk.finish(), Ok(None));
    drop(batch);
    assert_eq!(pending.finish(), Err(Error::NotSent));
}

/// Every script call a store builds, as a Redis Cluster sees it: it declares keys, they share one slot,
/// and every key the script derives from its base (`ARGV[1]`) is in that slot too.
#[test]
fn every_session_script_stays_in_its_users_slot() {
    use crate::client::fake_server;
    use crate::slot::{cluster_keys, slot};

    let sent: Rc<RefCell<Vec<Vec<String>>>> = Rc::default();
    let record = Rc::clone(&sent);
    let transport = fake_server(move |args: &[String]| {
        record.borrow_mut().push(args.to_vec());
        Err("ERR not a real Redis".into())
    });
    let client = Client::with_transport("http://redis.test", "t", transport).unwrap();
    let store = store(&client);
    let tagged = |user: &str, seed: u8| {
        Token::generate_tagged(&Counter::new(seed), keys::user_tag_bytes(user))
            .unwrap()
            .expose()
    };
    let (alice, alice2, bob) = (tagged("alice", 1), tagged("alice", 50), tagged("bob", 99));
    let alice_id = Token::parse(&alice2).unwrap().id().to_string();
    let bob_id = Token::parse(&bob).unwrap().id().to_string();
    let data = json!({"k": 1});
    let mut expected_scripts = 0;
    let mut trips = 0;
    let mut run =
        |scripts: usize, op: &dyn Fn(&crate::client::Batch<'_, crate::client::FakeTransport>)| {
            let batch = client.batch();
            op(&batch);
            assert_eq!(batch.len(), scripts);
            let _ = block_on(batch.send());
            expected_scripts += scripts;
            trips += 1;
        };
    run(1, &|b| drop(store.prepare_load(b, &alice)));
    run(1, &|b| drop(store.prepare_sign_in(b, "alice", &data, None)));
    run(1, &|b| {
        drop(store.prepare_sign_in(b, "alice", &data, Some(&alice2)))
    });
    run(2, &|b| {
        drop(store.prepare_sign_in(b, "alice", &data, Some(&bob)))
    });
    run(1, &|b| drop(store.prepare_rotate(b, &bob)));
    run(1, &|b| {
        drop(store.prepare_update(b, &alice, &data, Some(3)))
    });
    run(1, &|b| drop(store.prepare_incr(b, &alice, "n", 2)));
    run(1, &|b| drop(store.prepare_list(b, &alice)));
    run(1, &|b| {
        drop(store.prepare_revoke(b, &alice, Revoke::Current))
    });
    run(1, &|b| {
        drop(store.prepare_revoke(b, &alice, Revoke::One(&alice_id)))
    });
    run(1, &|b| {
        drop(store.prepare_revoke(b, &alice, Revoke::One(&bob_id)))
    });
    run(1, &|b| drop(store.prepare_revoke(b, &alice, Revoke::All)));
    run(1, &|b| drop(store.prepare_revoke_user(b, "bob")));
    assert_eq!(client.stats().round_trips, trips, "one round trip each");

    let sent = sent.borrow();
    assert_eq!(sent.len(), expected_scripts);
    let alice_slot = slot(store.index_key("alice").as_bytes());
    let bob_slot = slot(store.index_key("bob").as_bytes());
    assert_ne!(alice_slot, bob_slot, "pick users in different slots");
    let mut seen = Vec::new();
    for args in sent.iter() {
        let keys = cluster_keys(args).unwrap_or_else(|e| panic!("{e}: {args:?}"));
        let n = keys.len();
        let base = &args[3 + n];
        let derived = [
            format!("{base}:s:{}", args[4 + n]),
            format!("{base}:u:anyone"),
        ];
        for key in &derived {
            assert_eq!(
                slot(key.as_bytes()),
                slot(keys[0].as_bytes()),
                "{key} vs {keys:?}"
            );
        }
        seen.push(slot(keys[0].as_bytes()));
    }
    // Bob's session is ended in his slot when alice signs in over it, and rotated in his slot.
    assert_eq!(seen[4], bob_slot);
    assert_eq!(seen[5], bob_slot);
    assert_eq!(
        seen.iter().filter(|s| **s == alice_slot).count(),
        seen.len() - 3
    );
    // Revoking another user's session sends no target from another slot.
    assert_eq!(seen[13], bob_slot, "revoke_user runs in the user's slot");
    let other = &sent[11];
    assert_eq!(other[other.len() - 1], "", "{other:?}");
}

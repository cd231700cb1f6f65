use std::cell::RefCell;
use std::rc::Rc;

use pollster::block_on;

use super::*;
use crate::client::commands::{get, incr, set};
use crate::client::transport::{FakeTransport, fake_server};
use crate::client::{HttpResponse, Options, cmd};

fn client(transport: FakeTransport) -> Client<FakeTransport> {
    Client::with_transport("http://redis.test", "t", transport).unwrap()
}

/// A tiny Redis: a string store plus scripts known by SHA1.
fn store() -> FakeTransport {
    let data: Rc<RefCell<std::collections::HashMap<String, String>>> = Rc::default();
    let scripts: Rc<RefCell<Vec<String>>> = Rc::default();
    fake_server(move |args| {
        let name = args
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        let mut data = data.borrow_mut();
        match (name.as_str(), &args[1..]) {
            ("SET", [k, v, ..]) => {
                data.insert(k.clone(), v.clone());
                Ok(Reply::Status("OK".into()))
            }
            ("GET", [k]) => Ok(data
                .get(k)
                .map_or(Reply::Nil, |v| Reply::Data(v.clone().into_bytes()))),
            ("INCR", [k]) => {
                let n = data
                    .get(k)
                    .map_or(Ok(0), |v| v.parse::<i64>())
                    .map_err(|_| "ERR value is not an integer or out of range".to_owned())?
                    + 1;
                data.insert(k.clone(), n.to_string());
                Ok(Reply::Int(n))
            }
            ("EVAL", [source, ..]) => {
                scripts
                    .borrow_mut()
                    .push(Script::new(source.as_str()).sha1().to_owned());
                Ok(Reply::Int(42))
            }
            ("EVALSHA", [sha, ..]) if scripts.borrow().contains(sha) => Ok(Reply::Int(42)),
            ("EVALSHA", _) => Err("NOSCRIPT No matching script. Please use EVAL.".into()),
            ("SCRIPT", [sub]) if sub == "FLUSH" => {
                scripts.borrow_mut().clear();
                Ok(Reply::Status("OK".into()))
            }
            _ => Err(format!("ERR unknown command '{name}'")),
        }
    })
}

#[test]
fn components_share_one_round_trip_in_order() {
    let client = client(store());
    let batch = client.batch();
    let written = batch.add::<bool>(set("a", "1"));
    let counted = batch.add::<i64>(incr("a"));
    let read = batch.add::<String>(get("a"));
    assert_eq!(batch.len(), 3);
    block_on(batch.send()).unwrap();
    assert!(written.take().unwrap());
    assert_eq!(counted.take().unwrap(), 2);
    assert_eq!(read.take().unwrap(), "2");
    assert_eq!(client.stats().round_trips, 1);
    assert_eq!(client.stats().commands, 3);
    assert_eq!(
        client.transport.bodies(),
        [r#"[["SET","a","1"],["INCR","a"],["GET","a"]]"#]
    );
    assert!(
        client.transport.requests.borrow()[0]
            .url
            .ends_with("/pipeline")
    );
}

#[test]
fn errors_belong_to_their_entry() {
    let client = client(store());
    let batch = client.batch();
    let before = batch.add::<()>(set("s", "text"));
    let failing = batch.add::<i64>(incr("s"));
    let mistyped = batch.add::<i64>(get("s"));
    let after = batch.add::<Option<String>>(get("s"));
    block_on(batch.send()).unwrap();
    assert_eq!(before.take(), Ok(()));
    assert_eq!(
        failing.take(),
        Err(Error::Redis(
            "ERR value is not an integer or out of range".into()
        ))
    );
    assert!(matches!(mistyped.take(), Err(Error::Type { ref command, .. }) if command == "GET"));
    assert_eq!(after.take().unwrap().as_deref(), Some("text"));
}

#[test]
fn handles_before_send_and_empty_batches() {
    let client = client(store());
    let batch = client.batch();
    let early = batch.add::<i64>(incr("x"));
    let unsent = client.batch().add::<i64>(incr("y"));
    drop(unsent);
    // Reading before sending is a clear error, not a panic.
    let other = client.batch();
    let h = other.add::<i64>(incr("z"));
    drop(other);
    assert_eq!(h.take(), Err(Error::NotSent));
    block_on(batch.send()).unwrap();
    assert_eq!(early.take(), Ok(1));
    block_on(client.batch().send()).unwrap();
    assert_eq!(client.stats().round_trips, 1);
}

#[test]
fn map_is_a_components_decode_step() {
    struct Counter;
    impl Counter {
        fn prepare<T: Transport>(&self, batch: &Batch<'_, T>) -> Handle<&'static str> {
            batch
                .add::<i64>(incr("visits"))
                .map(|n| Ok(if n > 1 { "again" } else { "first" }))
        }
    }
    let client = client(store());
    let batch = client.batch();
    let a = Counter.prepare(&batch);
    let b = Counter.prepare(&batch);
    block_on(batch.send()).unwrap();
    assert_eq!((a.take(), b.take()), (Ok("first"), Ok("again")));
}

#[test]
fn big_pipelines_are_chunked_in_order() {
    let client = client(store());
    let batch = client.batch();
    let handles: Vec<_> = (0..2_500).map(|_| batch.add::<i64>(incr("n"))).collect();
    block_on(batch.send()).unwrap();
    let values: Vec<i64> = handles.into_iter().map(|h| h.take().unwrap()).collect();
    assert_eq!(values, (1..=2_500).collect::<Vec<_>>());
    assert_eq!(client.stats().round_trips, 3);

    // By bytes: three 40-byte commands in 100-byte requests.
    let client = crate::client::Client::with_transport("http://r", "t", store())
        .unwrap()
        .options(Options {
            max_request_bytes: 100,
            ..Options::default()
        });
    let value = "v".repeat(24);
    let cmds: Vec<Cmd> = (0..3).map(|i| set(format!("k{i}"), &value)).collect();
    let results = block_on(client.pipeline(&cmds)).unwrap();
    assert!(results.iter().all(Result::is_ok));
    let bodies = client.transport.bodies();
    assert_eq!(bodies.len(), 2);
    assert!(bodies.iter().all(|b| b.len() <= 100), "{bodies:?}");
}

#[test]
fn chunk_respects_both_limits() {
    let enc = |sizes: &[usize]| sizes.iter().map(|&n| vec![b'x'; n]).collect::<Vec<_>>();
    assert_eq!(chunk(&enc(&[10, 10, 10]), 100, 2).unwrap(), [0..2, 2..3]);
    // [10,10] is 2 + 10 + 1 + 10 = 23 bytes; a third would make 34.
    assert_eq!(chunk(&enc(&[10, 10, 10]), 33, 100).unwrap(), [0..2, 2..3]);
    assert_eq!(chunk(&enc(&[10, 10, 10]), 34, 100).unwrap().len(), 1);
    assert_eq!(
        chunk(&enc(&[]), 34, 100).unwrap(),
        Vec::<Range<usize>>::new()
    );
    assert!(matches!(
        chunk(&enc(&[5, 40]), 34, 100),
        Err(Error::TooLarge(_))
    ));
    {
        let ranges = chunk(&enc(&[7; 50]), 40, 3).unwrap();
        let joined: Vec<usize> = ranges.iter().flat_map(Clone::clone).collect();
        assert_eq!(joined, (0..50).collect::<Vec<_>>());
        assert!(
            ranges
                .iter()
                .all(|r| r.len() <= 3 && body_len(&enc(&vec![7; r.len()])) <= 40)
        );
    }
}

#[test]
fn a_failed_chunk_fails_its_entries_and_the_later_ones() {
    let transport = FakeTransport::new(|request, n| {
        if n == 0 {
            let count = serde_json::from_slice::<serde_json::Value>(&request.body)
                .unwrap()
                .as_array()
                .unwrap()
                .len();
            let entries: Vec<_> = (0..count).map(|_| Ok(Reply::Int(1))).collect();
            crate::client::transport::ok(protocol::batch_body(&entries, true))
        } else {
            Ok(HttpResponse {
                status: 503,
                sync_token: None,
                body: br#"{"error":"down"}"#.to_vec(),
            })
        }
    });
    let client = client(transport).options(Options {
        max_batch_commands: 2,
        ..Options::default()
    });
    let batch = client.batch();
    let handles: Vec<_> = (0..5).map(|_| batch.add::<i64>(incr("n"))).collect();
    let err = block_on(batch.send()).unwrap_err();
    assert!(matches!(err, Error::Http { status: 503, .. }));
    let results: Vec<_> = handles.into_iter().map(Handle::take).collect();
    assert_eq!(results[..2], [Ok(1), Ok(1)]);
    assert!(
        results[2..]
            .iter()
            .all(|r| r.as_ref().is_err_and(Error::is_unavailable))
    );
    // Writes are not retried, and the third chunk is never sent.
    assert_eq!(client.stats().round_trips, 2);
}

#[test]
fn transactions_are_one_request_or_refused() {
    let client = client(store());
    let tx = client.transaction();
    let a = tx.add::<()>(set("t", "1"));
    let b = tx.add::<i64>(incr("t"));
    block_on(tx.send()).unwrap();
    assert_eq!((a.take(), b.take()), (Ok(()), Ok(2)));
    assert!(
        client.transport.requests.borrow()[0]
            .url
            .ends_with("/multi-exec")
    );

    let small = crate::client::Client::with_transport("http://r", "t", store())
        .unwrap()
        .options(Options {
            max_request_bytes: 50,
            ..Options::default()
        });
    let tx = small.transaction();
    let h = tx.add::<()>(set("k", "v".repeat(60)));
    assert!(
        matches!(block_on(tx.send()), Err(Error::TooLarge(ref m)) if m.contains("cannot be split"))
    );
    assert!(matches!(h.take(), Err(Error::TooLarge(_))));
    assert_eq!(small.stats().round_trips, 0);
}

#[test]
fn an_aborted_transaction_fails_every_handle() {
    let transport = FakeTransport::new(|_, _| {
        Ok(HttpResponse {
            status: 400,
            sync_token: None,
            body: br#"{"error":"EXECABORT Transaction discarded because of previous errors."}"#
                .to_vec(),
        })
    });
    let client = client(transport);
    let tx = client.transaction();
    let a = tx.add::<()>(set("k", "v"));
    let b = tx.add::<()>(cmd("SET").arg("only-key"));
    let err = block_on(tx.send()).unwrap_err();
    assert!(matches!(err, Error::Redis(ref t) if t.starts_with("EXECABORT")));
    assert_eq!(a.take(), Err(err.clone()));
    assert_eq!(b.take(), Err(err));
}

#[test]
fn scripts_fall_back_to_eval_for_just_the_noscript_entries() {
    let script = Script::new("return 42 -- batch fallback test");
    let client = client(store()).options(Options {
        eval_first: false,
        ..Options::default()
    });
    let batch = client.batch();
    let before = batch.add::<i64>(incr("c"));
    let first = batch.add_script::<i64, &str, &str>(&script, ["k"], ["a"]);
    let after = batch.add::<i64>(incr("c"));
    block_on(batch.send()).unwrap();
    assert_eq!(
        (before.take(), first.take(), after.take()),
        (Ok(1), Ok(42), Ok(2))
    );
    let bodies = client.transport.bodies();
    assert_eq!(
        bodies.len(),
        2,
        "one extra round trip for the NOSCRIPT entry"
    );
    assert!(bodies[0].contains("EVALSHA"));
    assert!(bodies[1].starts_with(r#"[["EVAL","return 42"#) && !bodies[1].contains("INCR"));

    // Now known: EVALSHA only, one round trip.
    let batch = client.batch();
    let again = batch.add_script::<i64, &str, &str>(&script, ["k"], ["a"]);
    block_on(batch.send()).unwrap();
    assert_eq!(again.take(), Ok(42));
    assert_eq!(client.stats().round_trips, 3);
    assert!(client.transport.bodies()[2].contains("EVALSHA"));
}

#[test]
fn scripts_are_sent_whole_on_first_use_and_always_in_transactions() {
    let script = Script::new("return 42 -- eval first test");
    let client = client(store());
    let batch = client.batch();
    let h = batch.add_script::<i64, &str, &str>(&script, [], []);
    block_on(batch.send()).unwrap();
    assert_eq!(h.take(), Ok(42));
    assert!(client.transport.bodies()[0].contains(r#"["EVAL","return 42"#));
    assert_eq!(
        block_on(client.eval::<i64, &str, &str>(&script, [], [])),
        Ok(42)
    );
    assert!(client.transport.bodies()[1].contains("EVALSHA"));

    let tx = client.transaction();
    let h = tx.add_script::<i64, &str, &str>(&script, [], []);
    block_on(tx.send()).unwrap();
    assert_eq!(h.take(), Ok(42));
    assert!(client.transport.bodies()[2].contains(r#"["EVAL","#));

    // Redis lost its scripts: a single call repairs itself with one extra round trip.
    let _: () = block_on(client.query(&cmd("SCRIPT").arg("FLUSH"))).unwrap();
    let before = client.stats().round_trips;
    assert_eq!(
        block_on(client.eval::<i64, &str, &str>(&script, [], [])),
        Ok(42)
    );
    assert_eq!(client.stats().round_trips - before, 2);
}

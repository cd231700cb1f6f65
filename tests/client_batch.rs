//! Batches through `/pipeline` and `/multi-exec`, compiled to wasm, against the real gateway and
//! redis-server (see `tests/support/mod.rs`).
#![cfg(target_arch = "wasm32")]

mod support;

use redge::Error;
use redge::client::commands as c;
use redge::client::{
    Batch, Client, FetchTransport, Handle, Options, Reply, Script, Transport, cmd,
};
use wasm_bindgen_test::wasm_bindgen_test;

fn client() -> Client<FetchTransport> {
    let (url, token) = support::gateway();
    Client::new(&url, &token).unwrap()
}

/// What a capability (a rate limiter, a session store) looks like: it prepares its commands in the
/// route's batch and decodes its own result.
struct VisitCounter {
    script: Script,
}

impl VisitCounter {
    fn new() -> Self {
        VisitCounter {
            script: Script::new(format!(
                "-- visit counter {}\nlocal n = redis.call('INCR', KEYS[1])\nredis.call('EXPIRE', KEYS[1], ARGV[1])\nreturn n",
                js_sys::Math::random()
            )),
        }
    }

    fn prepare<T: Transport>(&self, batch: &Batch<'_, T>, key: &str) -> Handle<bool> {
        batch
            .add_script::<i64, _, _>(&self.script, [key], [60])
            .map(|n| Ok(n == 1))
    }
}

#[wasm_bindgen_test]
async fn components_share_one_round_trip() {
    let client = client();
    let counter = VisitCounter::new();
    let k = support::unique_key("batch");
    let visits = support::unique_key("visits");

    let batch = client.batch();
    let set = batch.add::<()>(c::set_with(&k, "1", c::SetOptions::default().ex(60)));
    let first_visit = counter.prepare(&batch, &visits);
    let incr = batch.add::<i64>(c::incr(&k));
    let read = batch.add::<String>(c::get(&k));
    batch.send().await.unwrap();
    assert_eq!(set.take(), Ok(()));
    assert_eq!(first_visit.take(), Ok(true));
    assert_eq!(incr.take(), Ok(2));
    assert_eq!(
        read.take().unwrap(),
        "2",
        "order kept: the read sees the writes before it"
    );
    assert_eq!(client.stats().round_trips, 1);

    let batch = client.batch();
    let again = counter.prepare(&batch, &visits);
    batch.send().await.unwrap();
    assert_eq!(again.take(), Ok(false));
    assert_eq!(
        client.stats().round_trips,
        2,
        "EVALSHA now, still one round trip"
    );
    let _: () = client.query(&c::del([&k, &visits])).await.unwrap();
}

#[wasm_bindgen_test]
async fn pipeline_errors_stay_in_their_entry() {
    let client = client();
    let k = support::unique_key("pipe-err");
    let results = client
        .pipeline(&[
            c::set(&k, "text"),
            c::incr(&k),
            cmd("SET").arg("only-key"),
            c::get(&k),
        ])
        .await
        .unwrap();
    // Inside an array, OK is base64 like any other string: it reads back as data.
    assert_eq!(results[0], Ok(Reply::Data(b"OK".to_vec())));
    assert_eq!(
        results[1],
        Err(Error::Redis(
            "ERR value is not an integer or out of range".into()
        ))
    );
    assert_eq!(
        results[2],
        Err(Error::Redis(
            "ERR wrong number of arguments for 'set' command".into()
        ))
    );
    assert_eq!(results[3], Ok(Reply::Data(b"text".to_vec())));

    // A type mismatch is one handle's error too.
    let batch = client.batch();
    let wrong = batch.add::<i64>(c::get(&k));
    let right = batch.add::<String>(c::get(&k));
    batch.send().await.unwrap();
    assert!(matches!(wrong.take(), Err(Error::Type { ref command, .. }) if command == "GET"));
    assert_eq!(right.take().unwrap(), "text");
    let _: () = client.query(&c::del([&k])).await.unwrap();
}

#[wasm_bindgen_test]
async fn transactions_are_atomic() {
    let client = client();
    let k = support::unique_key("tx");
    let tx = client.transaction();
    let a = tx.add::<()>(c::set(&k, "1"));
    let b = tx.add::<i64>(c::incrby(&k, 5));
    let script = Script::new(format!(
        "-- tx {}\nreturn redis.call('GET', KEYS[1])",
        js_sys::Math::random()
    ));
    let s = tx.add_script::<String, _, &str>(&script, [&k], []);
    tx.send().await.unwrap();
    assert_eq!(
        (a.take(), b.take(), s.take().as_deref()),
        (Ok(()), Ok(6), Ok("6"))
    );

    // A runtime error inside EXEC is that entry's; the others are applied.
    let tx = client.transaction();
    let bad = tx.add::<i64>(c::hlen(&k));
    let good = tx.add::<i64>(c::incr(&k));
    tx.send().await.unwrap();
    assert!(matches!(bad.take(), Err(Error::Redis(ref t)) if t.starts_with("WRONGTYPE")));
    assert_eq!(good.take(), Ok(7));

    // A syntax error while queueing discards everything.
    let tx = client.transaction();
    let lost = tx.add::<i64>(c::incr(&k));
    let _broken = tx.add::<()>(cmd("SET").arg("only-key"));
    let err = tx.send().await.unwrap_err();
    assert!(
        matches!(err, Error::Redis(ref t) if t.starts_with("EXECABORT")),
        "{err}"
    );
    assert_eq!(lost.take(), Err(err));
    assert_eq!(client.query::<i64>(&c::get(&k)).await.unwrap(), 7);
    let _: () = client.query(&c::del([&k])).await.unwrap();
}

#[wasm_bindgen_test]
async fn noscript_inside_a_batch_costs_one_more_round_trip() {
    let (url, token) = support::gateway();
    let options = Options {
        eval_first: false,
        ..Options::default()
    };
    let client = Client::with_options(&url, &token, options).unwrap();
    let script = Script::new(format!(
        "-- batch noscript {}\nreturn ARGV[1]",
        js_sys::Math::random()
    ));
    let k = support::unique_key("noscript");
    let batch = client.batch();
    let before = batch.add::<i64>(c::incr(&k));
    let ran = batch.add_script::<String, &str, _>(&script, [], ["hello"]);
    let after = batch.add::<i64>(c::incr(&k));
    batch.send().await.unwrap();
    assert_eq!(
        (before.take(), ran.take().as_deref(), after.take()),
        (Ok(1), Ok("hello"), Ok(2))
    );
    assert_eq!(client.stats().round_trips, 2);
    assert_eq!(
        client.stats().commands,
        4,
        "only the NOSCRIPT entry was sent again"
    );
    let _: () = client.query(&c::del([&k])).await.unwrap();
}

#[wasm_bindgen_test]
async fn an_eleven_megabyte_batch_is_chunked() {
    let client = client().timeout_ms(20_000);
    let prefix = support::unique_key("chunk");
    let value = "x".repeat(1024 * 1024);
    let batch = client.batch();
    let writes: Vec<Handle<()>> = (0..11)
        .map(|i| batch.add(c::set(format!("{prefix}:{i}"), &value)))
        .collect();
    let lens: Vec<Handle<usize>> = (0..11)
        .map(|i| batch.add(c::strlen(format!("{prefix}:{i}"))))
        .collect();
    batch.send().await.unwrap();
    for h in writes {
        assert_eq!(h.take(), Ok(()));
    }
    for h in lens {
        assert_eq!(h.take(), Ok(value.len()));
    }
    assert_eq!(
        client.stats().round_trips,
        2,
        "11 MiB does not fit the 10 MB request limit"
    );

    // A transaction cannot be split: refused before sending.
    let tx = client.transaction();
    let handles: Vec<Handle<()>> = (0..11)
        .map(|i| tx.add(c::set(format!("{prefix}:{i}"), &value)))
        .collect();
    assert!(matches!(tx.send().await, Err(Error::TooLarge(_))));
    assert!(matches!(
        handles.into_iter().next().map(Handle::take),
        Some(Err(Error::TooLarge(_)))
    ));
    assert_eq!(client.stats().round_trips, 2);
    let keys: Vec<String> = (0..11).map(|i| format!("{prefix}:{i}")).collect();
    let _: () = client.query(&c::del(&keys)).await.unwrap();
}

//! The client compiled to wasm, talking through `fetch` to the real gateway and redis-server.
#![cfg(target_arch = "wasm32")]

mod support;

use redge::Error;
use redge::client::{Client, cmd};
use wasm_bindgen_test::wasm_bindgen_test;

fn client() -> Client<redge::client::FetchTransport> {
    let (url, token) = support::gateway();
    Client::new(&url, &token).unwrap()
}

#[wasm_bindgen_test]
async fn ping_and_set_get_round_trip() {
    let client = client();
    let pong: String = client.query(&cmd("PING")).await.unwrap();
    assert_eq!(pong, "PONG");

    let key = support::unique_key("roundtrip");
    let value = "héllo 😀 OK";
    let _: () = client
        .query(&cmd("SET").arg(&key).arg(value).arg("EX").arg(60))
        .await
        .unwrap();
    let got: Option<String> = client.query(&cmd("GET").arg(&key)).await.unwrap();
    assert_eq!(got.as_deref(), Some(value));
    let stats = client.stats();
    assert_eq!((stats.round_trips, stats.commands), (3, 3));
    assert!(client.sync_token().is_some());
}

#[wasm_bindgen_test]
async fn errors_are_typed() {
    let client = client();
    let err = client
        .query::<()>(&cmd("SET").arg("only-key"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Redis("ERR wrong number of arguments for 'set' command".into())
    );

    let key = support::unique_key("type");
    let _: () = client.query(&cmd("SET").arg(&key).arg("x")).await.unwrap();
    let err = client
        .query::<i64>(&cmd("GET").arg(&key))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Type { ref command, .. } if command == "GET"),
        "{err}"
    );

    let (url, _) = support::gateway();
    let bad_token = Client::new(&url, "not-the-token").unwrap();
    assert!(
        bad_token
            .query::<String>(&cmd("PING"))
            .await
            .unwrap_err()
            .is_auth()
    );
}

#[wasm_bindgen_test]
async fn an_unreachable_service_is_a_transport_error() {
    // Port 9 (discard) is closed on test machines: the connection is refused at once.
    let client = Client::new("http://127.0.0.1:9", "token").unwrap();
    let err = client.query::<String>(&cmd("PING")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

// ------------------------------------------------------------------ helpers against real Redis

use std::collections::{BTreeMap, HashMap};

use redge::client::commands::{self as c, Expiry, GetExpiry, ScanOptions, SetOptions, Trim};
use redge::client::{Json, Options, Pairs, Reply, Script};

#[wasm_bindgen_test]
async fn string_helpers() {
    let client = client();
    let k = support::unique_key("str");
    assert!(
        client
            .query::<bool>(&c::set_with(&k, "1", SetOptions::default().ex(60).nx()))
            .await
            .unwrap()
    );
    // NX on an existing key: nil, read as false.
    assert!(
        !client
            .query::<bool>(&c::set_with(&k, "2", SetOptions::default().nx()))
            .await
            .unwrap()
    );
    let old: Option<String> = client
        .query(&c::set_with(
            &k,
            "5",
            SetOptions::default().keep_ttl().xx().get(),
        ))
        .await
        .unwrap();
    assert_eq!(old.as_deref(), Some("1"));
    let ttl: i64 = client.query(&c::ttl(&k)).await.unwrap();
    assert!((1..=60).contains(&ttl), "KEEPTTL kept the TTL: {ttl}");
    assert_eq!(client.query::<i64>(&c::incr(&k)).await.unwrap(), 6);
    assert_eq!(client.query::<i64>(&c::incrby(&k, 10)).await.unwrap(), 16);
    assert_eq!(client.query::<i64>(&c::decr(&k)).await.unwrap(), 15);
    assert_eq!(client.query::<u64>(&c::append(&k, "0")).await.unwrap(), 3);
    assert_eq!(client.query::<i32>(&c::get(&k)).await.unwrap(), 150);
    let v: String = client
        .query(&c::getex(&k, GetExpiry::Persist))
        .await
        .unwrap();
    assert_eq!(v, "150");
    assert_eq!(client.query::<i64>(&c::ttl(&k)).await.unwrap(), -1);
    let _: String = client
        .query(&c::getex(&k, GetExpiry::Millis(50_000)))
        .await
        .unwrap();
    let pttl: i64 = client.query(&c::pttl(&k)).await.unwrap();
    assert!((1..=50_000).contains(&pttl));
    let k2 = format!("{k}:2");
    let _: () = client
        .query(&c::mset([(&k, "a"), (&k2, "b")]))
        .await
        .unwrap();
    let both: Vec<Option<String>> = client
        .query(&c::mget([&k, &k2, &format!("{k}:none")]))
        .await
        .unwrap();
    assert_eq!(both, [Some("a".into()), Some("b".into()), None]);
    let at = SetOptions {
        expiry: Some(Expiry::AtSeconds(4_000_000_000)),
        ..SetOptions::default()
    };
    let _: () = client.query(&c::set_with(&k2, "c", at)).await.unwrap();
    assert_eq!(
        client
            .query::<Option<String>>(&c::getdel(&k2))
            .await
            .unwrap()
            .as_deref(),
        Some("c")
    );
    assert_eq!(
        client.query::<Option<String>>(&c::get(&k2)).await.unwrap(),
        None
    );
    let _: () = client.query(&c::del([&k])).await.unwrap();
}

#[wasm_bindgen_test]
async fn key_helpers_and_scan() {
    let client = client();
    let prefix = support::unique_key("keys");
    let keys: Vec<String> = (0..25).map(|i| format!("{prefix}:{i}")).collect();
    let _: () = client
        .query(&c::mset(keys.iter().map(|k| (k, "v"))))
        .await
        .unwrap();
    assert_eq!(
        client.query::<usize>(&c::exists(&keys[..3])).await.unwrap(),
        3
    );
    assert!(
        client
            .query::<bool>(&c::expire(&keys[0], 100))
            .await
            .unwrap()
    );
    assert!(
        client
            .query::<bool>(&c::pexpire(&keys[1], 100_000))
            .await
            .unwrap()
    );
    assert!(client.query::<bool>(&c::persist(&keys[1])).await.unwrap());
    assert_eq!(
        client
            .query::<String>(&c::key_type(&keys[2]))
            .await
            .unwrap(),
        "string"
    );

    let mut scan = client.scan(ScanOptions {
        pattern: Some(format!("{prefix}:*")),
        count: Some(7),
        key_type: Some("string".into()),
    });
    let mut found = Vec::new();
    while let Some(key) = scan.next().await.unwrap() {
        found.push(key);
    }
    found.sort();
    found.dedup();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(found, expected);

    assert_eq!(
        client.query::<i64>(&c::unlink(&keys[..10])).await.unwrap(),
        10
    );
    assert_eq!(client.query::<i64>(&c::del(&keys[10..])).await.unwrap(), 15);
}

#[wasm_bindgen_test]
async fn hash_list_set_helpers() {
    let client = client();
    let h = support::unique_key("hash");
    assert_eq!(
        client
            .query::<i64>(&c::hset(&h, [("a", "1"), ("b", "2")]))
            .await
            .unwrap(),
        2
    );
    assert!(
        !client
            .query::<bool>(&c::hsetnx(&h, "a", "9"))
            .await
            .unwrap()
    );
    assert_eq!(
        client.query::<i64>(&c::hincrby(&h, "a", 4)).await.unwrap(),
        5
    );
    assert_eq!(
        client
            .query::<Option<i64>>(&c::hget(&h, "a"))
            .await
            .unwrap(),
        Some(5)
    );
    let all: HashMap<String, i64> = client.query(&c::hgetall(&h)).await.unwrap();
    assert_eq!(all, HashMap::from([("a".into(), 5), ("b".into(), 2)]));
    let sorted: BTreeMap<String, String> = client.query(&c::hgetall(&h)).await.unwrap();
    assert_eq!(sorted.len(), 2);
    let some: Vec<Option<String>> = client.query(&c::hmget(&h, ["b", "zz"])).await.unwrap();
    assert_eq!(some, [Some("2".into()), None]);
    assert!(client.query::<bool>(&c::hexists(&h, "b")).await.unwrap());
    assert_eq!(client.query::<usize>(&c::hlen(&h)).await.unwrap(), 2);
    assert_eq!(
        client
            .query::<Vec<String>>(&c::hkeys(&h))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        client.query::<Vec<i64>>(&c::hvals(&h)).await.unwrap().len(),
        2
    );
    assert_eq!(client.query::<i64>(&c::hdel(&h, ["a"])).await.unwrap(), 1);

    let l = support::unique_key("list");
    assert_eq!(
        client
            .query::<i64>(&c::rpush(&l, ["a", "b", "c", "d"]))
            .await
            .unwrap(),
        4
    );
    assert_eq!(client.query::<i64>(&c::lpush(&l, ["z"])).await.unwrap(), 5);
    let _: () = client.query(&c::ltrim(&l, 0, 3)).await.unwrap();
    let items: Vec<String> = client.query(&c::lrange(&l, 0, -1)).await.unwrap();
    assert_eq!(items, ["z", "a", "b", "c"]);
    assert_eq!(client.query::<usize>(&c::llen(&l)).await.unwrap(), 4);
    assert_eq!(
        client.query::<String>(&c::lindex(&l, -1)).await.unwrap(),
        "c"
    );
    assert_eq!(client.query::<i64>(&c::lrem(&l, 0, "a")).await.unwrap(), 1);
    assert_eq!(
        client
            .query::<Option<String>>(&c::lpop(&l))
            .await
            .unwrap()
            .as_deref(),
        Some("z")
    );
    assert_eq!(
        client
            .query::<Option<String>>(&c::rpop(&l))
            .await
            .unwrap()
            .as_deref(),
        Some("c")
    );

    let s = support::unique_key("set");
    assert_eq!(
        client
            .query::<i64>(&c::sadd(&s, ["x", "y", "x"]))
            .await
            .unwrap(),
        2
    );
    assert!(client.query::<bool>(&c::sismember(&s, "y")).await.unwrap());
    assert_eq!(client.query::<usize>(&c::scard(&s)).await.unwrap(), 2);
    let mut members: Vec<String> = client.query(&c::smembers(&s)).await.unwrap();
    members.sort();
    assert_eq!(members, ["x", "y"]);
    assert_eq!(client.query::<i64>(&c::srem(&s, ["x"])).await.unwrap(), 1);
    let _: () = client.query(&c::del([&h, &l, &s])).await.unwrap();
}

#[wasm_bindgen_test]
async fn sorted_set_and_stream_helpers() {
    let client = client();
    let z = support::unique_key("zset");
    let members = [(1.0, "a"), (2.5, "b"), (4.0, "c"), (8.0, "d")];
    assert_eq!(client.query::<i64>(&c::zadd(&z, members)).await.unwrap(), 4);
    assert_eq!(
        client
            .query::<f64>(&c::zincrby(&z, 0.5, "a"))
            .await
            .unwrap(),
        1.5
    );
    assert_eq!(
        client
            .query::<Option<f64>>(&c::zscore(&z, "b"))
            .await
            .unwrap(),
        Some(2.5)
    );
    assert_eq!(client.query::<usize>(&c::zcard(&z)).await.unwrap(), 4);
    assert_eq!(
        client
            .query::<i64>(&c::zcount(&z, 2, "+inf"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        client
            .query::<Option<i64>>(&c::zrank(&z, "c"))
            .await
            .unwrap(),
        Some(2)
    );
    let by_rank: Vec<String> = client.query(&c::zrange(&z, 0, 1)).await.unwrap();
    assert_eq!(by_rank, ["a", "b"]);
    let options = c::ZRangeOptions {
        by: c::ZRangeBy::Score,
        rev: false,
        limit: Some((1, 2)),
        with_scores: true,
    };
    let page: Pairs<String, f64> = client
        .query(&c::zrange_with(&z, "(1.5", "+inf", options))
        .await
        .unwrap();
    assert_eq!(page.0, [("c".into(), 4.0), ("d".into(), 8.0)]);
    assert_eq!(
        client
            .query::<i64>(&c::zremrangebyscore(&z, "-inf", 2.5))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        client
            .query::<i64>(&c::zrem(&z, ["c", "nope"]))
            .await
            .unwrap(),
        1
    );

    let s = support::unique_key("stream");
    let first: String = client.query(&c::xadd(&s, [("n", "1")])).await.unwrap();
    assert!(first.contains('-'));
    for i in 2..=20 {
        let trim = Trim::MaxLen {
            approx: false,
            len: 10,
        };
        let _: String = client
            .query(&c::xadd_with(&s, "*", Some(&trim), [("n", i)]))
            .await
            .unwrap();
    }
    assert_eq!(client.query::<usize>(&c::xlen(&s)).await.unwrap(), 10);
    let approx = Trim::MaxLen {
        approx: true,
        len: 5,
    };
    let _: String = client
        .query(&c::xadd_with(&s, "*", Some(&approx), [("n", "x")]))
        .await
        .unwrap();
    let entries: Vec<(String, Vec<String>)> = client
        .query(&c::xrange(&s, "-", "+", Some(2)))
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].1, ["n", "11"]);
    let newest = entries[1].0.clone();
    let removed: i64 = client
        .query(&c::xtrim(
            &s,
            &Trim::MinId {
                approx: false,
                id: newest,
            },
        ))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let _: () = client.query(&c::del([&z, &s])).await.unwrap();
}

#[wasm_bindgen_test]
async fn server_pubsub_and_script_helpers() {
    let client = client();
    assert_eq!(client.query::<String>(&c::ping()).await.unwrap(), "PONG");
    let (secs, micros): (u64, u64) = client.query(&c::time()).await.unwrap();
    assert!(secs > 1_700_000_000 && micros < 1_000_000);
    assert_eq!(
        client
            .query::<i64>(&c::publish("redge-test", "hi"))
            .await
            .unwrap(),
        0
    );

    let script = Script::new(format!(
        "-- {}\nreturn {{KEYS[1], ARGV[1]}}",
        js_sys::Math::random()
    ));
    let loaded: String = client
        .query(&c::script_load(script.source()))
        .await
        .unwrap();
    assert_eq!(loaded, script.sha1(), "our SHA1 is redis's");
    let exists: Vec<bool> = client
        .query(&c::script_exists([script.sha1(), "0000"]))
        .await
        .unwrap();
    assert_eq!(exists, [true, false]);
    let out: (String, String) = client
        .query(&c::evalsha(script.sha1(), ["k"], ["v"]))
        .await
        .unwrap();
    assert_eq!(out, ("k".into(), "v".into()));
    let out: Vec<String> = client
        .query(&c::eval("return ARGV", [] as [&str; 0], ["a", "b"]))
        .await
        .unwrap();
    assert_eq!(out, ["a", "b"]);
}

// ------------------------------------------------------------------ scripts

#[wasm_bindgen_test]
async fn scripts_fall_back_to_eval_on_noscript() {
    // A script Redis has never seen, called EVALSHA-first: NOSCRIPT, then EVAL.
    let (url, token) = support::gateway();
    let options = Options {
        eval_first: false,
        ..Options::default()
    };
    let client = Client::with_options(&url, &token, options).unwrap();
    let script = Script::new(format!(
        "return {{'{}', KEYS[1], ARGV[1]}}",
        js_sys::Math::random()
    ));
    let raw = client
        .query::<Reply>(&script.evalsha_cmd(["k"], ["v"]))
        .await
        .unwrap_err();
    assert!(
        matches!(raw, Error::Redis(ref t) if t.starts_with("NOSCRIPT")),
        "{raw}"
    );
    let before = client.stats().round_trips;
    let out: (String, String, String) = client.eval(&script, ["k"], ["v"]).await.unwrap();
    assert_eq!((out.1.as_str(), out.2.as_str()), ("k", "v"));
    assert_eq!(client.stats().round_trips - before, 2, "EVALSHA, then EVAL");
    let _: (String, String, String) = client.eval(&script, ["k"], ["v"]).await.unwrap();
    assert_eq!(
        client.stats().round_trips - before,
        3,
        "known now: EVALSHA only"
    );

    // The default: a cold isolate sends EVAL at once.
    let client = Client::new(&url, &token).unwrap();
    let fresh = Script::new(format!("return '{}'", js_sys::Math::random()));
    let _: String = client
        .eval(&fresh, [] as [&str; 0], [] as [&str; 0])
        .await
        .unwrap();
    assert_eq!(client.stats().round_trips, 1);
    let exists: Vec<bool> = client
        .query(&c::script_exists([fresh.sha1()]))
        .await
        .unwrap();
    assert_eq!(exists, [true]);
}

// ------------------------------------------------------------------ values

#[wasm_bindgen_test]
async fn values_keep_every_byte_and_are_not_reinterpreted() {
    let client = client();
    let k = support::unique_key("values");
    for value in [
        "OK",
        "",
        "123",
        "😀 emoji",
        "T0s=",
        "null",
        "{\"a\":1}",
        "\u{0}nul",
        "line\nbreak",
    ] {
        let _: () = client.query(&c::set(&k, value)).await.unwrap();
        let bytes: Vec<u8> = client.query(&c::get(&k)).await.unwrap();
        assert_eq!(bytes, value.as_bytes(), "{value:?}");
        let text: String = client.query(&c::get(&k)).await.unwrap();
        assert_eq!(text, value);
    }
    // "123" stays a string unless read as a number or as JSON.
    let _: () = client.query(&c::set(&k, "123")).await.unwrap();
    assert_eq!(client.query::<String>(&c::get(&k)).await.unwrap(), "123");
    assert_eq!(
        client.query::<Json<u32>>(&c::get(&k)).await.unwrap(),
        Json(123)
    );
    // Binary written by Redis itself (SETRANGE with a Lua-made byte) reads back as bytes.
    let _: () = client
        .query(&c::eval(
            "redis.call('SET', KEYS[1], string.char(255, 0, 128)) return 1",
            [&k],
            [] as [&str; 0],
        ))
        .await
        .map(|_: i64| ())
        .unwrap();
    let bytes: Vec<u8> = client.query(&c::get(&k)).await.unwrap();
    assert_eq!(bytes, [255, 0, 128]);
    let err = client.query::<String>(&c::get(&k)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Type {
                expected: "a UTF-8 string",
                ..
            }
        ),
        "{err}"
    );
    let _: () = client.query(&c::del([&k])).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_five_megabyte_value_round_trips() {
    let client = client().timeout_ms(10_000);
    let k = support::unique_key("big");
    let value: String = "0123456789abcdef😀".repeat(5 * 1024 * 1024 / 20);
    let _: () = client.query(&c::set(&k, &value)).await.unwrap();
    let back: String = client.query(&c::get(&k)).await.unwrap();
    assert_eq!(back.len(), value.len());
    assert!(back == value);
    let _: () = client.query(&c::del([&k])).await.unwrap();
}

// ------------------------------------------------------------------ deadlines and retries

#[wasm_bindgen_test]
async fn a_slow_service_hits_the_deadline() {
    let port = support::slow_server(2_000).await;
    let url = format!("http://127.0.0.1:{port}");
    let client = Client::new(&url, "t").unwrap().timeout_ms(200);
    let started = js_sys::Date::now();
    let err = client.query::<String>(&c::get("k")).await.unwrap_err();
    let elapsed = js_sys::Date::now() - started;
    assert_eq!(err, Error::Timeout(200));
    assert!(
        elapsed < 1_000.0,
        "aborted at the deadline, not after {elapsed} ms"
    );
    // A timeout ends the call: no retry, even for a read.
    assert_eq!(client.stats().round_trips, 1);
    assert_eq!(support::request_count(port), 1);

    // Fast enough: fine.
    let port = support::slow_server(20).await;
    let client = Client::new(&format!("http://127.0.0.1:{port}"), "t").unwrap();
    assert_eq!(client.query::<String>(&c::ping()).await.unwrap(), "OK");
}

#[wasm_bindgen_test]
async fn lost_responses_are_retried_for_reads_only() {
    let (upstream, token) = support::gateway();
    let k = support::unique_key("flaky");
    let direct = client();
    let _: () = direct.query(&c::set(&k, "v")).await.unwrap();

    let port = support::flaky_server(2, &upstream).await;
    let flaky = Client::new(&format!("http://127.0.0.1:{port}"), &token).unwrap();
    let v: String = flaky.query(&c::get(&k)).await.unwrap();
    assert_eq!(v, "v");
    assert_eq!(flaky.stats().retries, 2);
    assert_eq!(support::request_count(port), 3);

    // A write whose response is lost is not repeated...
    let port = support::flaky_server(1, &upstream).await;
    let flaky = Client::new(&format!("http://127.0.0.1:{port}"), &token).unwrap();
    let n = support::unique_key("counter");
    let err = flaky.query::<i64>(&c::incr(&n)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(support::request_count(port), 1);
    assert_eq!(
        direct.query::<Option<i64>>(&c::get(&n)).await.unwrap(),
        None
    );

    // ...unless the caller says it may be.
    let port = support::flaky_server(1, &upstream).await;
    let flaky = Client::new(&format!("http://127.0.0.1:{port}"), &token)
        .unwrap()
        .retry_writes(true);
    assert_eq!(flaky.query::<i64>(&c::incr(&n)).await.unwrap(), 1);
    assert_eq!(support::request_count(port), 2);
    let _: () = direct.query(&c::del([&k, &n])).await.unwrap();
}

#[wasm_bindgen_test]
async fn the_sync_token_is_handed_across_clients() {
    let first = client();
    let _: String = first.query(&c::ping()).await.unwrap();
    let token = first.sync_token();
    assert!(token.is_some());
    let second = client();
    second.set_sync_token(token.clone());
    assert_eq!(second.sync_token(), token);
    let _: String = second.query(&c::ping()).await.unwrap();
    assert_ne!(
        second.sync_token(),
        token,
        "a fresh token on every response"
    );
}

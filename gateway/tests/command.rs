//! `POST /` against a real redis-server.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Redis, TOKEN, command, gateway, post};
use serde_json::json;

#[tokio::test]
async fn set_then_get_round_trips_in_base64_and_plain() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let set = command(&gw, json!(["SET", "greeting", "héllo 😀", "EX", 60])).await;
    assert_eq!((set.status, set.json), (200, json!({ "result": "OK" })));

    let get = command(&gw, json!(["GET", "greeting"])).await;
    assert_eq!(get.json, json!({ "result": B64.encode("héllo 😀") }));

    let plain = post(
        &format!("{}/", gw.url),
        Some(TOKEN),
        false,
        r#"["get","greeting"]"#,
    )
    .await;
    assert_eq!(plain.json, json!({ "result": "héllo 😀" }));

    let missing = command(&gw, json!(["GET", "nope"])).await;
    assert_eq!(missing.json, json!({ "result": null }));
}

#[tokio::test]
async fn replies_keep_their_shapes() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let big = command(&gw, json!(["INCRBY", "n", 9_007_199_254_740_993i64])).await;
    assert_eq!(big.json, json!({ "result": 9_007_199_254_740_993i64 }));

    command(&gw, json!(["SET", "empty", ""])).await;
    let empty = command(&gw, json!(["MGET", "empty", "none"])).await;
    assert_eq!(empty.json, json!({ "result": ["", null] }));

    // A status inside an array is encoded like any other string.
    let nested = command(
        &gw,
        json!(["EVAL", "return {redis.status_reply('OK'), 1}", 0]),
    )
    .await;
    assert_eq!(nested.json, json!({ "result": [B64.encode("OK"), 1] }));
}

#[tokio::test]
async fn redis_errors_are_400_with_the_verbatim_text() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let arity = command(&gw, json!(["SET", "k"])).await;
    assert_eq!(arity.status, 400);
    assert_eq!(
        arity.json,
        json!({ "error": "ERR wrong number of arguments for 'set' command" })
    );

    command(&gw, json!(["SET", "s", "x"])).await;
    let wrong = command(&gw, json!(["INCR", "s"])).await;
    assert_eq!(
        wrong.json,
        json!({ "error": "ERR value is not an integer or out of range" })
    );

    let noscript = command(
        &gw,
        json!(["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", 0]),
    )
    .await;
    assert_eq!(
        noscript.json,
        json!({ "error": "NOSCRIPT No matching script. Please use EVAL." })
    );

    let wrongtype = command(&gw, json!(["LPUSH", "s", "x"])).await;
    assert_eq!(
        wrongtype.json,
        json!({ "error": "WRONGTYPE Operation against a key holding the wrong kind of value" })
    );
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let url = format!("{}/", gw.url);

    for body in [
        "",
        "not json",
        "{}",
        "[]",
        r#"["GET",null]"#,
        r#"["GET",{"a":1}]"#,
        "[1]",
    ] {
        let answer = post(&url, Some(TOKEN), true, body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert!(
            answer.json["error"].as_str().unwrap().starts_with("ERR "),
            "{body}"
        );
    }

    let refused = command(&gw, json!(["BLPOP", "q", 0])).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.json["error"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );

    let oversized = post(&url, Some(TOKEN), true, vec![b'['; 10 * 1024 * 1024 + 1]).await;
    assert_eq!(oversized.status, 413);
    assert_eq!(
        oversized.json,
        json!({ "error": "ERR max request size exceeded" })
    );

    // The path form takes every other path; an empty command name is no route.
    let not_found = post(&format!("{}//nowhere", gw.url), Some(TOKEN), true, "[]").await;
    assert_eq!(not_found.status, 404);
}

#[tokio::test]
async fn tokens_are_required() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let url = format!("{}/", gw.url);

    for token in [None, Some("wrong"), Some("")] {
        let answer = post(&url, token, true, r#"["PING"]"#).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.json, json!({ "error": "Unauthorized" }));
    }
    let by_query = post(&format!("{url}?_token={TOKEN}"), None, true, r#"["PING"]"#).await;
    assert_eq!(by_query.status, 200);
}

#[tokio::test]
async fn every_response_carries_a_fresh_sync_token() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let a = command(&gw, json!(["PING"])).await.sync_token.unwrap();
    let b = command(&gw, json!(["SET"])).await.sync_token.unwrap();
    let c = post(&format!("{}/", gw.url), None, true, "[]")
        .await
        .sync_token
        .unwrap();
    assert!(!a.is_empty());
    assert!(a != b && b != c && a != c);
}

#[tokio::test]
async fn recovers_when_redis_restarts() {
    let mut redis = Redis::start();
    let gw = gateway(&redis).await;
    assert_eq!(command(&gw, json!(["PING"])).await.status, 200);

    redis.stop();
    let started = Instant::now();
    let down = command(&gw, json!(["PING"])).await;
    assert_eq!(down.status, 503);
    assert!(down.json["error"].as_str().unwrap().contains("unavailable"));
    assert!(started.elapsed() < Duration::from_secs(2));
    let health = reqwest::get(format!("{}/healthz", gw.url)).await.unwrap();
    assert_eq!(health.status(), 503);

    redis.restart();
    // The connection is re-established on demand; allow a few attempts for the backoff.
    let mut status = 0;
    for _ in 0..50 {
        status = command(&gw, json!(["PING"])).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    let health = reqwest::get(format!("{}/healthz", gw.url)).await.unwrap();
    assert_eq!(health.status(), 200);
}

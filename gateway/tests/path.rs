//! The path form, reply encodings (base64, RESP2) and method handling.

mod common;

use common::{Redis, b64, command, gateway, send};
use serde_json::json;

const B64: (&str, &str) = ("Upstash-Encoding", "base64");

#[tokio::test]
async fn path_segments_body_and_query_become_arguments() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    // Segments are decoded one by one: %2F stays inside its argument.
    let set = send(
        "GET",
        &format!("{}/set/a%2Fb/hello%20world", gw.url),
        &[],
        "",
    )
    .await;
    assert_eq!((set.status, set.json()), (200, json!({ "result": "OK" })));
    let get = send("GET", &format!("{}/GET/a%2Fb", gw.url), &[], "").await;
    assert_eq!(get.json(), json!({ "result": "hello world" }));

    // Query pairs come after the body; _token is auth, not an argument.
    let url = format!("{}/set/q/v?EX=100&NX&_token={}", gw.url, common::TOKEN);
    let with_query = reqwest::Client::new().put(&url).send().await.unwrap();
    assert_eq!(with_query.status(), 200);
    let ttl = command(&gw, json!(["TTL", "q"])).await.json["result"]
        .as_i64()
        .unwrap();
    assert!((1..=100).contains(&ttl), "{ttl}");
    let again = send("PUT", &url, &[], "").await;
    assert_eq!(
        again.json(),
        json!({ "result": null }),
        "NX refused the second SET"
    );

    // HEAD runs the command and answers without a body.
    let head = send("HEAD", &format!("{}/incr/visits", gw.url), &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        command(&gw, json!(["GET", "visits"])).await.json,
        json!({ "result": b64("1") })
    );

    // A Redis error in the path form is a 400 with the verbatim text.
    let error = send("GET", &format!("{}/incr/a%2Fb", gw.url), &[], "").await;
    assert_eq!(error.status, 400);
    assert_eq!(
        error.json(),
        json!({ "error": "ERR value is not an integer or out of range" })
    );
}

#[tokio::test]
async fn a_raw_body_is_the_last_argument_byte_for_byte() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let bytes: Vec<u8> = vec![0xff, 0x00, b'{', 0xfe, b'\n', 0x80];
    let set = send(
        "POST",
        &format!("{}/set/bin?EX=60", gw.url),
        &[],
        bytes.clone(),
    )
    .await;
    assert_eq!(set.json(), json!({ "result": "OK" }));

    let back = send("POST", &format!("{}/", gw.url), &[B64], r#"["GET","bin"]"#).await;
    assert_eq!(back.json(), json!({ "result": b64(&bytes) }));
    // Without base64 the invalid bytes become U+FFFD.
    let lossy = send("GET", &format!("{}/get/bin", gw.url), &[], "").await;
    assert_eq!(
        lossy.json(),
        json!({ "result": String::from_utf8_lossy(&bytes) })
    );
    let ttl = command(&gw, json!(["TTL", "bin"])).await.json["result"]
        .as_i64()
        .unwrap();
    assert!(ttl > 0);
}

#[tokio::test]
async fn base64_encodes_every_string_but_a_top_level_ok() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let set = command(&gw, json!(["SET", "e", "😀"])).await;
    assert_eq!(set.json, json!({ "result": "OK" }));
    assert_eq!(
        command(&gw, json!(["GET", "e"])).await.json,
        json!({ "result": b64("😀") })
    );
    command(&gw, json!(["SET", "empty", ""])).await;
    assert_eq!(
        command(&gw, json!(["GET", "empty"])).await.json,
        json!({ "result": "" })
    );
    // A status other than OK is encoded even at the top.
    assert_eq!(
        command(&gw, json!(["PING"])).await.json,
        json!({ "result": b64("PONG") })
    );
    assert_eq!(
        command(&gw, json!(["TYPE", "e"])).await.json,
        json!({ "result": b64("string") })
    );
    // Integers beyond 2^53 stay exact; doubles are strings.
    let big = command(&gw, json!(["INCRBY", "big", 9_007_199_254_740_993i64])).await;
    assert_eq!(big.json, json!({ "result": 9_007_199_254_740_993i64 }));
    let float = command(&gw, json!(["INCRBYFLOAT", "f", 1.5])).await;
    assert_eq!(float.json, json!({ "result": b64("1.5") }));
    // HGETALL stays a flat array.
    command(&gw, json!(["HSET", "h", "f", "v"])).await;
    assert_eq!(
        command(&gw, json!(["HGETALL", "h"])).await.json,
        json!({ "result": [b64("f"), b64("v")] })
    );
}

#[tokio::test]
async fn resp2_format_returns_redis_bytes() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let resp2 = ("Upstash-Response-Format", "resp2");
    let url = format!("{}/", gw.url);

    let set = send("POST", &url, &[resp2], r#"["SET","k","v"]"#).await;
    assert_eq!(set.status, 200);
    assert_eq!(set.header("content-type"), Some("application/octet-stream"));
    assert_eq!(set.body, b"+OK\r\n");
    let get = send("POST", &url, &[resp2], r#"["MGET","k","none"]"#).await;
    assert_eq!(get.body, b"*2\r\n$1\r\nv\r\n$-1\r\n");
    let error = send("POST", &url, &[resp2], r#"["INCR","k"]"#).await;
    assert_eq!(error.status, 400);
    assert_eq!(
        error.body,
        b"-ERR value is not an integer or out of range\r\n"
    );
    let pipeline = send(
        "POST",
        &format!("{}/pipeline", gw.url),
        &[resp2],
        r#"[["INCR","n"],["INCR","k"]]"#,
    )
    .await;
    assert_eq!(
        pipeline.body,
        b"*2\r\n:1\r\n-ERR value is not an integer or out of range\r\n"
    );
    let path = send("GET", &format!("{}/get/k", gw.url), &[resp2], "").await;
    assert_eq!(path.body, b"$1\r\nv\r\n");

    let both = send("POST", &url, &[resp2, B64], r#"["GET","k"]"#).await;
    assert_eq!(both.status, 400);
    assert!(both.json()["error"].as_str().unwrap().contains("resp2"));
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    for (method, path, allow) in [
        ("GET", "/", "POST"),
        ("PUT", "/pipeline", "POST"),
        ("GET", "/multi-exec", "POST"),
        ("DELETE", "/get/k", "GET, HEAD, POST, PUT"),
        ("PATCH", "/set/k/v", "GET, HEAD, POST, PUT"),
        ("DELETE", "/subscribe/ch", "GET, POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ] {
        let answer = send(method, &format!("{}{path}", gw.url), &[], "").await;
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
        assert!(answer.json()["error"].is_string());
        assert!(answer.header("upstash-sync-token").is_some());
    }
    let empty = send("GET", &format!("{}//x", gw.url), &[], "").await;
    assert_eq!(empty.status, 404);
    assert!(empty.json()["error"].is_string());
}

#[tokio::test]
async fn healthz_needs_no_token_and_shows_no_secret() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let health = reqwest::get(format!("{}/healthz", gw.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    let text = health.text().await.unwrap();
    assert_eq!(text, r#"{"status":"ok","redis":"up"}"#);
}

/// URL clients drop `.` and `..` segments (and `%2E`, `%2e%2E`) before a request leaves; a request that
/// carries them anyway (curl `--path-as-is`, a raw socket) gets them as arguments, not resolved as a path.
#[tokio::test]
async fn dot_segments_sent_as_they_are_are_arguments() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let raw_get = |path: &str| {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            common::TOKEN
        );
        common::raw(&gw.url, request.into_bytes())
    };
    for (path, key, value) in [
        ("/set/./..", ".", ".."),
        ("/set/%2E/%2e%2E", ".", ".."),
        ("/set/../.", "..", "."),
    ] {
        let answer = raw_get(path).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(answer.ends_with(r#"{"result":"OK"}"#), "{path}: {answer}");
        let get = command(&gw, json!(["GET", key])).await;
        assert_eq!(get.json, json!({ "result": b64(value) }), "{path}");
    }
    // A `.` between two arguments stays a third one: Redis reads it as an option and refuses it.
    let answer = raw_get("/set/a/./b").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("syntax error"), "{answer}");
}

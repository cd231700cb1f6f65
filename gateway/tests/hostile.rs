//! Hostile input against the gateway and a real redis-server: oversized headers and bodies, huge
//! numbers of arguments, deep nesting, invalid UTF-8, CR/LF/NUL in keys and values, tokens in odd
//! places, request smuggling and header injection. Every refusal is a clean status (JSON where the
//! gateway answers, a bare 4xx where the HTTP parser refuses the request before it reaches a route),
//! and the gateway keeps serving afterwards.

mod common;

use common::{Gateway, Redis, TOKEN, b64, command, gateway, gateway_with, post, raw, send};
use redge_gateway::Config;
use serde_json::json;

/// The gateway still answers a plain command.
async fn still_serving(gw: &Gateway) {
    let ping = command(gw, json!(["PING"])).await;
    assert_eq!(
        (ping.status, ping.json),
        (200, json!({ "result": b64("PONG") }))
    );
}

/// The status line and whether the answer carries a JSON body.
fn status_of(answer: &str) -> &str {
    answer.lines().next().unwrap_or("<no answer>")
}

fn request_with(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{headers}Connection: close\r\n\r\n{body}"
    )
    .into_bytes()
}

#[tokio::test]
async fn oversized_headers_are_refused_by_the_parser_and_the_gateway_carries_on() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let ping = r#"["PING"]"#;
    let length = format!("Content-Length: {}\r\n", ping.len());

    let huge = format!("X-Big: {}\r\n{length}", "a".repeat(600 * 1024));
    let answer = raw(&gw.url, request_with(&huge, ping)).await;
    assert_eq!(
        status_of(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    let many: String = (0..200)
        .map(|i| format!("X-H{i}: v\r\n"))
        .collect::<String>()
        + &length;
    let answer = raw(&gw.url, request_with(&many, ping)).await;
    assert_eq!(
        status_of(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    // A long token in the query is just a wrong token.
    let long = format!("{}/ping?_token={}", gw.url, "t".repeat(60 * 1024));
    let answer = reqwest::get(&long).await.unwrap();
    assert_eq!(answer.status(), 401);
    still_serving(&gw).await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_on_every_route_and_the_limit_is_inclusive() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.max_body_bytes = 64 * 1024;
    let gw = gateway_with(config).await;
    let too_large = json!({ "error": "ERR max request size exceeded" });

    for (method, route) in [
        ("POST", "/"),
        ("POST", "/pipeline"),
        ("POST", "/multi-exec"),
        ("POST", "/set/k"),
        ("PUT", "/set/k"),
    ] {
        let answer = send(
            method,
            &format!("{}{route}", gw.url),
            &[],
            vec![b'x'; 64 * 1024 + 1],
        )
        .await;
        assert_eq!(
            (answer.status, answer.json()),
            (413, too_large.clone()),
            "{method} {route}"
        );
    }

    // Without a Content-Length (chunked), the limit holds as the bytes arrive.
    let chunks = (0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let answer = send("POST", &format!("{}/", gw.url), &[], body).await;
    assert_eq!((answer.status, answer.json()), (413, too_large));

    // Exactly at the limit is accepted.
    let padding = 64 * 1024 - r#"["ECHO",""]"#.len();
    let exact = json!(["ECHO", "v".repeat(padding)]).to_string();
    assert_eq!(exact.len(), 64 * 1024);
    let answer = post(&format!("{}/", gw.url), Some(TOKEN), false, exact).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["result"].as_str().map(str::len), Some(padding));
    still_serving(&gw).await;
}

#[tokio::test]
async fn huge_keys_values_and_numbers_of_arguments_run_whole() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let mut mset = vec![json!("MSET")];
    for i in 0..50_000 {
        mset.push(json!(format!("k{i}")));
        mset.push(json!(i));
    }
    assert_eq!(
        command(&gw, json!(mset)).await.json,
        json!({ "result": "OK" })
    );
    assert_eq!(
        command(&gw, json!(["DBSIZE"])).await.json,
        json!({ "result": 50_000 })
    );

    let mut del = vec![json!("DEL")];
    del.extend((0..50_000).map(|i| json!(format!("k{i}"))));
    assert_eq!(
        command(&gw, json!(del)).await.json,
        json!({ "result": 50_000 })
    );

    let pipeline: Vec<_> = (0..10_000).map(|i| json!(["ECHO", i])).collect();
    let answer = common::batch(&gw, "pipeline", json!(pipeline)).await;
    let entries = answer.json.as_array().unwrap();
    assert_eq!(entries.len(), 10_000);
    assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, e)| e == &json!({ "result": b64(i.to_string()) }))
    );

    // A 1 MiB key holding an 8 MiB value, under the 10 MiB body limit.
    let key = "k".repeat(1024 * 1024);
    let set = command(&gw, json!(["SET", key, "v".repeat(8 * 1024 * 1024)])).await;
    assert_eq!(set.json, json!({ "result": "OK" }));
    assert_eq!(
        command(&gw, json!(["STRLEN", key])).await.json,
        json!({ "result": 8 * 1024 * 1024 })
    );

    // The path form: 5 000 segments.
    let path: String = (0..5_000).map(|i| format!("/p{i}")).collect();
    let answer = send("GET", &format!("{}/exists{path}", gw.url), &[], "").await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({ "result": 0 }))
    );
}

#[tokio::test]
async fn deep_nesting_is_a_400_in_requests_and_a_clean_503_in_replies() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let deep = format!(
        r#"["SET","k",{}1{}]"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    for (route, body) in [
        ("", deep.clone()),
        ("pipeline", format!("[{deep}]")),
        ("multi-exec", format!("[{deep}]")),
        ("pipeline", "[".repeat(100_000)),
    ] {
        let answer = post(&format!("{}/{route}", gw.url), Some(TOKEN), true, body).await;
        assert_eq!(answer.status, 400, "/{route}");
        assert!(
            answer.json["error"].as_str().unwrap().starts_with("ERR "),
            "/{route}"
        );
    }

    // A script can return a reply nested deeper than the Redis client library parses (99 levels):
    // that request fails with a JSON 503, nothing is mistaken for another reply, and the next request
    // is served (tests/hostile_scripts.rs: no other request fails with it).
    let script = "local t = {1} for i = 1, tonumber(ARGV[1]) do t = {t} end return t";
    let shallow = command(&gw, json!(["EVAL", script, 0, 90])).await;
    assert_eq!(shallow.status, 200);
    let too_deep = command(&gw, json!(["EVAL", script, 0, 500])).await;
    assert_eq!(too_deep.status, 503);
    assert!(too_deep.json["error"].as_str().unwrap().starts_with("ERR "));
    still_serving(&gw).await;
}

#[tokio::test]
async fn invalid_utf8_in_json_is_a_400_and_escaped_control_bytes_are_data() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let url = format!("{}/", gw.url);
    for bytes in [
        &b"[\"SET\",\"k\",\"\xff\"]"[..],
        b"[\"SET\",\"k\",\"\xc0\xaf\"]",     // overlong '/'
        b"[\"SET\",\"k\",\"\xed\xa0\x80\"]", // a surrogate, encoded
        b"[\"SET\",\"k\",\"\xf0\x9f\x98\"]", // truncated emoji
        br#"["SET","k","\ud800"]"#,          // a lone surrogate, escaped
        b"[\"SET\",\"k\",\"a\nb\"]",         // a raw control character inside a string
        b"[\"SET\"\xff,\"k\",\"v\"]",
    ] {
        let answer = post(&url, Some(TOKEN), true, bytes.to_vec()).await;
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(bytes));
        assert!(answer.json["error"].as_str().unwrap().starts_with("ERR "));
    }
    let batch = post(
        &format!("{url}pipeline"),
        Some(TOKEN),
        true,
        b"[[\"GET\",\"\xff\"]]".to_vec(),
    )
    .await;
    assert_eq!(batch.status, 400);
    assert_eq!(
        command(&gw, json!(["EXISTS", "k"])).await.json,
        json!({ "result": 0 })
    );

    let set = post(
        &url,
        Some(TOKEN),
        true,
        r#"["SET","\u0000\r\n","\u0000\u001f\ud83d\ude00"]"#,
    )
    .await;
    assert_eq!(set.status, 200);
    let get = command(&gw, json!(["GET", "\0\r\n"])).await;
    assert_eq!(get.json, json!({ "result": b64("\0\u{1f}😀") }));
}

#[tokio::test]
async fn cr_lf_and_nul_in_keys_and_values_stay_data_and_inject_nothing() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let key = "k\r\n*1\r\n$8\r\nFLUSHALL\r\n\0";
    let value = "v\r\nSET injected 1\r\n\0";
    command(&gw, json!(["SET", "canary", "alive"])).await;
    assert_eq!(
        command(&gw, json!(["SET", key, value])).await.json,
        json!({ "result": "OK" })
    );

    // The same key through the path form, value as the raw body.
    let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    let set = send("POST", &format!("{}/set/{encoded}2", gw.url), &[], value).await;
    assert_eq!(set.status, 200);
    let get = send(
        "GET",
        &format!("{}/get/{encoded}2", gw.url),
        &[("Upstash-Encoding", "base64")],
        "",
    )
    .await;
    assert_eq!(get.json(), json!({ "result": b64(value) }));

    let mut keys: Vec<String> = command(&gw, json!(["KEYS", "*"])).await.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut expected = [b64("canary"), b64(key), b64(format!("{key}2"))];
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected);

    // RESP2 replies carry such values as length-prefixed bulk strings, and error lines stay one line.
    let resp2 = [("Upstash-Response-Format", "resp2")];
    let bulk = send("GET", &format!("{}/get/{encoded}", gw.url), &resp2, "").await;
    assert_eq!(
        bulk.body,
        format!("${}\r\n{value}\r\n", value.len()).into_bytes()
    );
    let error = send("GET", &format!("{}/{encoded}", gw.url), &resp2, "").await;
    assert_eq!(error.status, 400);
    assert!(error.body.starts_with(b"-ERR ") && error.body.ends_with(b"\r\n"));
    assert_eq!(error.body.iter().filter(|&&b| b == b'\n').count(), 1);

    // Nothing a request carries ever becomes a response header.
    let sneaky: String = "\r\nSet-Cookie: a=b"
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let answer = send("GET", &format!("{}/echo/x{sneaky}", gw.url), &[], "").await;
    assert_eq!(answer.status, 200);
    let mut names: Vec<&str> = answer.headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "content-length",
            "content-type",
            "date",
            "upstash-sync-token"
        ]
    );
}

#[tokio::test]
async fn tokens_count_only_where_the_protocol_puts_them() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let client = reqwest::Client::new();
    // (query, Authorization header, expected status)
    let cases: &[(&str, Option<&str>, u16)] = &[
        ("_token=test-token", None, 200),
        ("_token=test%2Dtoken", None, 200),
        ("_token=test-token&_token=garbage", None, 200),
        ("x&_token=test-token", None, 400),
        ("_token=", None, 401),
        ("_token", None, 401),
        ("_token=%", None, 401),
        ("_token=%ZZ", None, 401),
        ("_token=test-token%00", None, 401),
        ("_token=%FF%FE", None, 401),
        ("_token=garbage&_token=test-token", None, 401),
        ("_TOKEN=test-token", None, 401),
        ("token=test-token", None, 401),
        ("_token=test-token", Some("Bearer wrong"), 401),
        ("_token=garbage", Some("Bearer test-token"), 200),
        // The scheme is case-insensitive and followed by one or more spaces (RFC 9110, section 11).
        ("", Some("BEARER test-token"), 200),
        ("", Some("bEaReR test-token"), 200),
        ("", Some("Bearer  test-token"), 200),
        ("", Some("Bearertest-token"), 401),
        ("", Some("Bearer test-token x"), 401),
        ("", Some("Basic dGVzdC10b2tlbg=="), 401),
        ("", Some("test-token"), 401),
        ("", Some("Bearer"), 401),
        ("", None, 401),
    ];
    for (query, authorization, expected) in cases {
        let mut request = client.get(format!("{}/echo/hi?{query}", gw.url));
        if let Some(value) = authorization {
            request = request.header("Authorization", *value);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(status, *expected, "?{query} with {authorization:?}: {body}");
        // `_token` pairs are never arguments, whatever they hold; other pairs are (`ECHO hi x`).
        match status {
            200 => assert_eq!(body, json!({ "result": "hi" })),
            400 => assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains("wrong number of arguments")
            ),
            _ => assert_eq!(body, json!({ "error": "Unauthorized" })),
        }
    }

    // The token is no token in the path or in the body.
    let in_path = reqwest::get(format!("{}/{TOKEN}", gw.url)).await.unwrap();
    assert_eq!(in_path.status(), 401);
    let in_body = post(
        &format!("{}/", gw.url),
        None,
        false,
        format!(r#"["ECHO","{TOKEN}"]"#),
    )
    .await;
    assert_eq!(in_body.status, 401);
}

#[tokio::test]
async fn malformed_http_smuggling_and_header_injection_are_refused_before_any_command() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    let set = |key: &str| format!(r#"["SET","{key}","1"]"#);
    let cl = |body: &str| format!("Content-Length: {}\r\n", body.len());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "obs-fold",
            request_with(
                &format!("X-A: a\r\n b\r\n{}", cl(&set("fold"))),
                &set("fold"),
            ),
        ),
        (
            "NUL in a header",
            request_with(&format!("X-A: a\0b\r\n{}", cl(&set("nul"))), &set("nul")),
        ),
        (
            "bare CR in a header",
            request_with(
                &format!("X-A: a\rSet-Cookie: b\r\n{}", cl(&set("cr"))),
                &set("cr"),
            ),
        ),
        (
            "space before the colon",
            request_with(
                &format!("Authorization : x\r\n{}", cl(&set("sp"))),
                &set("sp"),
            ),
        ),
        (
            "two Content-Lengths",
            request_with(
                &format!("Content-Length: 1\r\n{}", cl(&set("dup"))),
                &set("dup"),
            ),
        ),
        (
            "negative Content-Length",
            request_with("Content-Length: -1\r\n", &set("neg")),
        ),
        (
            "unknown Transfer-Encoding",
            request_with("Transfer-Encoding: gzip\r\n", &set("gzip")),
        ),
        (
            "raw bytes in the path",
            b"GET /set/raw/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("garbage", b"\x00\x01\x02 garbage\r\n\r\n".to_vec()),
    ];
    for (name, request) in cases {
        let answer = raw(&gw.url, request).await;
        assert_eq!(
            status_of(&answer),
            "HTTP/1.1 400 Bad Request",
            "{name}: {answer}"
        );
    }

    // Content-Length and chunked together: the chunked body counts, and the connection is closed after
    // the first request, so the bytes behind it never run as a second, smuggled command.
    let smuggled = set("smuggled");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 4\r\n\
         Transfer-Encoding: chunked\r\n\r\n8\r\n[\"PING\"]\r\n0\r\n\r\n\
         POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{}\r\n{smuggled}",
        cl(&smuggled)
    );
    let answer = raw(&gw.url, request.into_bytes()).await;
    assert_eq!(status_of(&answer), "HTTP/1.1 200 OK");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");

    let mut conn = common::direct(&redis).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.is_empty(), "a refused request wrote {keys:?}");
    still_serving(&gw).await;
}

/// Announces `length` bytes of body, sends two, and expects `status` with the JSON `error` before the
/// connection is closed.
async fn answers_at_once(gw: &Gateway, length: u64, status: &str, error: &str) {
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {length}\r\n\r\n[\""
    );
    let answer = raw(&gw.url, request.into_bytes()).await;
    assert_eq!(status_of(&answer), format!("HTTP/1.1 {status}"), "{answer}");
    assert!(
        answer.ends_with(&json!({ "error": error }).to_string()),
        "{answer}"
    );
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_frees_its_request_slot() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.max_concurrency = 1;
    config.body_timeout_ms = 200;
    let gw = gateway_with(config).await;
    // Ten bytes announced, two sent, the connection left open: a client that stalled or vanished.
    answers_at_once(
        &gw,
        10,
        "408 Request Timeout",
        "ERR the request body did not arrive within 200 ms",
    )
    .await;
    // The only request slot is free again.
    still_serving(&gw).await;
}

#[tokio::test]
async fn an_announced_oversized_body_gets_413_before_it_is_sent() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;
    // 100 MB announced, a few bytes sent: the answer comes at once, not after 10 MiB or a timeout.
    answers_at_once(
        &gw,
        100_000_000,
        "413 Payload Too Large",
        "ERR max request size exceeded",
    )
    .await;
    still_serving(&gw).await;
}

#[tokio::test]
async fn commands_that_reach_other_hosts_databases_or_libraries_are_refused_unless_allowed() {
    let redis = Redis::start();
    let port = redis.port;
    let library = "#!lua name=lib\nredis.register_function('one', function() return 1 end)";
    // (command, what Redis itself answers once the gateway lets it through)
    let cases: Vec<(serde_json::Value, serde_json::Value)> = vec![
        (
            json!(["MIGRATE", "127.0.0.1", port, "absent", 0, 1000]),
            json!({ "result": b64("NOKEY") }),
        ),
        (json!(["SWAPDB", 0, 1]), json!({ "result": "OK" })),
        (json!(["MOVE", "absent", 1]), json!({ "result": 0 })),
        (json!(["PFSELFTEST"]), json!({ "result": "OK" })),
        (
            json!(["FUNCTION", "LOAD", library]),
            json!({ "result": b64("lib") }),
        ),
        (
            json!(["FUNCTION", "DELETE", "lib"]),
            json!({ "result": "OK" }),
        ),
        (json!(["FUNCTION", "FLUSH"]), json!({ "result": "OK" })),
    ];

    let gw = gateway(&redis).await;
    for (args, _) in &cases {
        let answer = command(&gw, args.clone()).await;
        let name = match args[0].as_str().unwrap() {
            "FUNCTION" => format!("FUNCTION {}", args[1].as_str().unwrap()),
            other => other.to_owned(),
        };
        assert_eq!(
            (answer.status, answer.json),
            (
                400,
                json!({ "error": format!("ERR {name} is not supported over the HTTP protocol") })
            ),
            "{args}"
        );
    }
    for name in ["RESTORE", "RESTORE-ASKING", "PFDEBUG", "REPLCONF"] {
        let answer = command(&gw, json!([name, "k", 0, "x"])).await;
        assert_eq!(answer.status, 400, "{name}");
        assert!(
            answer.json["error"]
                .as_str()
                .unwrap()
                .ends_with("is not supported over the HTTP protocol"),
            "{name}: {}",
            answer.json
        );
    }
    // In a batch, the refused command refuses the whole batch before anything runs.
    let pipeline = common::batch(
        &gw,
        "pipeline",
        json!([["SET", "before", 1], ["SWAPDB", 0, 1]]),
    )
    .await;
    assert_eq!(pipeline.status, 400);
    assert_eq!(
        command(&gw, json!(["EXISTS", "before"])).await.json,
        json!({ "result": 0 })
    );
    // Reading the function libraries stays allowed.
    let list = command(&gw, json!(["FUNCTION", "LIST"])).await;
    assert_eq!((list.status, list.json), (200, json!({ "result": [] })));
    drop(gw);

    // `--allow` takes them off the list, a command with all of its refused subcommands.
    let mut config = Config::new(&redis.url(), TOKEN);
    config.allow = [
        "MIGRATE",
        "SWAPDB",
        "MOVE",
        "PFSELFTEST",
        "function",
        "RESTORE",
    ]
    .map(String::from)
    .to_vec();
    let gw = gateway_with(config).await;
    for (args, expected) in cases {
        let answer = command(&gw, args.clone()).await;
        assert_eq!((answer.status, answer.json), (200, expected), "{args}");
    }
    // RESTORE loads what DUMP produced (raw bytes: through the path form's body).
    command(&gw, json!(["SET", "original", "value"])).await;
    let payload = {
        use base64::Engine as _;
        let text = send(
            "GET",
            &format!("{}/dump/original", gw.url),
            &[("Upstash-Encoding", "base64")],
            "",
        )
        .await
        .json()["result"]
            .as_str()
            .unwrap()
            .to_owned();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    };
    let restore = send("POST", &format!("{}/restore/copy/0", gw.url), &[], payload).await;
    assert_eq!(
        (restore.status, restore.json()),
        (200, json!({ "result": "OK" }))
    );
    assert_eq!(
        command(&gw, json!(["GET", "copy"])).await.json,
        json!({ "result": b64("value") })
    );
    // Still refused: not allowed by name.
    let asking = command(&gw, json!(["RESTORE-ASKING", "k", 0, "x"])).await;
    assert_eq!(asking.status, 400);
    assert!(
        asking.json["error"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body) from `stream`.
fn read_response(stream: &mut std::net::TcpStream) -> std::io::Result<(String, String)> {
    use std::io::Read as _;
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((head, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn an_oversized_body_sent_whole_before_reading_receives_its_413() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.max_body_bytes = 1024 * 1024;
    let gw = gateway_with(config).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    // As Node's fetch does: the whole body is written before the response is read. 3 MiB is more
    // than the socket buffers hold, so the writes only finish if the gateway reads them.
    let outcome = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        for (length, chunked) in [(3 * 1024 * 1024, false), (2 * 1024 * 1024, true)] {
            let body = vec![b' '; length];
            let head = if chunked {
                format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                     Transfer-Encoding: chunked\r\n\r\n{length:x}\r\n"
                )
            } else {
                format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                     Content-Length: {length}\r\n\r\n"
                )
            };
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body)?;
            if chunked {
                stream.write_all(b"\r\n0\r\n\r\n")?;
            }
            let (head, body) = read_response(&mut stream)?;
            assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
            assert_eq!(body, r#"{"error":"ERR max request size exceeded"}"#);
        }
        // The body was read to its end, so the connection carries the next request.
        let ping = r#"["PING"]"#;
        let request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{ping}",
            ping.len()
        );
        stream.write_all(request.as_bytes())?;
        read_response(&mut stream)
    })
    .await
    .unwrap();
    let (head, body) = outcome.expect("the whole body was accepted and the 413 read");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, r#"{"result":"PONG"}"#);

    // A body announced beyond what is worth reading, or one that waits for `100 Continue`, gets its
    // 413 at once instead.
    for expect in ["", "Expect: 100-continue\r\n"] {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{expect}\
             Content-Length: {}\r\n\r\n[",
            if expect.is_empty() {
                5 * 1024 * 1024
            } else {
                2 * 1024 * 1024
            }
        );
        let answer = raw(&gw.url, request.into_bytes()).await;
        assert_eq!(
            status_of(&answer),
            "HTTP/1.1 413 Payload Too Large",
            "{answer}"
        );
    }
    still_serving(&gw).await;
}

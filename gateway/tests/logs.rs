//! Log hygiene: the real binary, at the most verbose level, handles requests that carry secrets in
//! every place a request can hold one (tokens in the header and the query, keys, values, raw bodies,
//! command names, scripts, channels, sync tokens, the Redis password), succeeding and failing in every
//! way; then not one log line contains any of them.

mod common;

use common::Redis;

/// Every secret below contains this marker; no log line may.
const MARKER: &str = "s3cr3t";

const TOKEN: &str = "s3cr3t-token-full";
const QUERY_TOKEN: &str = "s3cr3t-token-query";
const READER: &str = "s3cr3t-token-reader";
const PASSWORD: &str = "s3cr3t-redis-password";

/// One request: method, path and query, the token of its Authorization header, an extra header, the
/// body, and the status it must get.
struct Probe(
    &'static str,
    String,
    Option<&'static str>,
    Option<(&'static str, &'static str)>,
    Vec<u8>,
    u16,
);

#[tokio::test]
async fn no_token_key_value_or_password_reaches_any_log_line() {
    let mut redis = Redis::start();
    let mut conn = common::direct(&redis).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(PASSWORD)
        .query_async(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let tokens = format!("{TOKEN},{QUERY_TOKEN}");
    let (child, base) = common::spawn_binary(&[
        ("REDGE_REDIS_URL", &url),
        ("REDGE_GATEWAY_TOKENS", &tokens),
        ("REDGE_GATEWAY_READ_ONLY_TOKENS", READER),
        ("REDGE_GATEWAY_MAX_BODY_BYTES", "4096"),
        ("RUST_LOG", "trace"),
    ])
    .await;

    let client = reqwest::Client::new();
    let requests = vec![
        Probe(
            "POST",
            "/".into(),
            Some(TOKEN),
            Some(("upstash-sync-token", "s3cr3t-sync")),
            br#"["SET","s3cr3t-key-1","s3cr3t-value-1"]"#.to_vec(),
            200,
        ),
        Probe(
            "GET",
            format!("/get/s3cr3t-key-1?_token={QUERY_TOKEN}"),
            None,
            None,
            vec![],
            200,
        ),
        Probe(
            "POST",
            format!("/set/s3cr3t-key-2?EX=100&_token={QUERY_TOKEN}"),
            None,
            None,
            b"s3cr3t-value-2 raw \xff body".to_vec(),
            200,
        ),
        Probe(
            "GET",
            "/get/s3cr3t-key-2".into(),
            Some(TOKEN),
            Some(("upstash-response-format", "resp2")),
            vec![],
            200,
        ),
        Probe(
            "POST",
            "/pipeline".into(),
            Some(TOKEN),
            None,
            br#"[["SET","s3cr3t-key-3","s3cr3t-value-3"],["INCR","s3cr3t-key-3"]]"#.to_vec(),
            200,
        ),
        Probe(
            "POST",
            "/multi-exec".into(),
            Some(TOKEN),
            None,
            br#"[["SET","s3cr3t-key-4","s3cr3t-value-4"],["s3cr3t-command-in-a-transaction"]]"#
                .to_vec(),
            400,
        ),
        Probe(
            "POST",
            "/".into(),
            Some(TOKEN),
            None,
            br#"["EVAL","return 's3cr3t-script'",0]"#.to_vec(),
            200,
        ),
        Probe(
            "POST",
            "/".into(),
            Some(TOKEN),
            None,
            br#"["s3cr3t-command-json","s3cr3t-value-5"]"#.to_vec(),
            400,
        ),
        Probe(
            "GET",
            "/s3cr3t-command-path/s3cr3t-value-6".into(),
            Some(TOKEN),
            None,
            vec![],
            400,
        ),
        Probe(
            "POST",
            "/".into(),
            Some(TOKEN),
            None,
            br#"{"s3cr3t-value-7": ["#.to_vec(),
            400,
        ),
        Probe(
            "POST",
            "/".into(),
            Some(TOKEN),
            None,
            "s3cr3t-value-8 ".repeat(400).into_bytes(),
            413,
        ),
        Probe(
            "POST",
            "/".into(),
            Some("s3cr3t-token-wrong"),
            None,
            br#"["GET","s3cr3t-key-1"]"#.to_vec(),
            401,
        ),
        Probe(
            "GET",
            "/get/s3cr3t-key-1?_token=s3cr3t-token-wrong".into(),
            None,
            None,
            vec![],
            401,
        ),
        Probe(
            "POST",
            "/".into(),
            Some(READER),
            None,
            br#"["SET","s3cr3t-key-9","s3cr3t-value-9"]"#.to_vec(),
            400,
        ),
        Probe(
            "POST",
            "/".into(),
            Some(TOKEN),
            None,
            br#"["CONFIG","SET","requirepass","s3cr3t-value-10"]"#.to_vec(),
            400,
        ),
        Probe(
            "PATCH",
            "/s3cr3t-key-11/s3cr3t-value-11".into(),
            Some(TOKEN),
            None,
            vec![],
            405,
        ),
        Probe(
            "POST",
            "/subscribe".into(),
            Some(TOKEN),
            None,
            br#"["s3cr3t-channel-2"]"#.to_vec(),
            400,
        ),
        Probe(
            "GET",
            "//s3cr3t-nowhere".into(),
            Some(TOKEN),
            None,
            vec![],
            404,
        ),
    ];
    let count = requests.len();
    for Probe(method, path, token, header, body, expected) in requests {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client.request(method, format!("{base}{path}")).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert_eq!(status, expected, "{path}");
    }

    // A stream on a secret channel, opened and dropped.
    let stream = client
        .post(format!(
            "{base}/subscribe/s3cr3t-channel?_token={QUERY_TOKEN}"
        ))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    drop(stream);

    // Redis gone: errors are logged as warnings, still without anything secret.
    redis.stop();
    let down = client
        .post(format!("{base}/"))
        .bearer_auth(TOKEN)
        .body(r#"["GET","s3cr3t-key-1"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);

    common::sigterm(&child);
    let logs = common::logs_of(child);

    let lines: Vec<&str> = logs.lines().collect();
    for line in &lines {
        assert!(!line.contains(MARKER), "a secret reached the log: {line}");
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    // Every request was logged, so the check above saw them all.
    let logged = lines
        .iter()
        .filter(|l| l.contains(r#""message":"request""#))
        .count();
    assert!(
        logged > count,
        "{logged} request lines for {} requests:\n{logs}",
        count + 2
    );
    assert!(
        logs.contains(r#""status":503"#) && logs.contains(r#""level":"WARN""#),
        "{logs}"
    );
}

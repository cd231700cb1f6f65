//! `/pipeline` and `/multi-exec` against a real redis-server.

mod common;

use common::{Redis, TOKEN, b64, batch, command, gateway, post};
use serde_json::json;

#[tokio::test]
async fn pipeline_answers_every_command_in_order() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let answer = batch(
        &gw,
        "pipeline",
        json!([
            ["SET", "a", "1"],
            ["INCR", "a"],
            ["HSET", "a", "f", "v"],
            ["GET", "a"],
            ["GET", "none"]
        ]),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json,
        json!([
            { "result": b64("OK") },
            { "result": 2 },
            { "error": "WRONGTYPE Operation against a key holding the wrong kind of value" },
            { "result": b64("2") },
            { "result": null },
        ])
    );
    // An error entry has no `result` key at all.
    assert!(answer.json[2].get("result").is_none());

    // Without base64, plain strings (and OK inside an array is just a string).
    let plain = post(
        &format!("{}/pipeline", gw.url),
        Some(TOKEN),
        false,
        r#"[["SET","b","x"],["GET","b"]]"#,
    )
    .await;
    assert_eq!(plain.json, json!([{ "result": "OK" }, { "result": "x" }]));
}

#[tokio::test]
async fn multi_exec_commits_with_per_entry_runtime_errors() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let answer = batch(
        &gw,
        "multi-exec",
        json!([
            ["SET", "k", "v"],
            ["INCR", "k"],
            ["GET", "k"],
            ["XADD", "s", "1-1", "f", "v"],
            ["XRANGE", "s", "-", "+"]
        ]),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json,
        json!([
            { "result": b64("OK") },
            { "error": "ERR value is not an integer or out of range" },
            { "result": b64("v") },
            { "result": b64("1-1") },
            { "result": [[b64("1-1"), [b64("f"), b64("v")]]] },
        ])
    );
}

#[tokio::test]
async fn a_queueing_error_discards_the_transaction() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    let answer = batch(
        &gw,
        "multi-exec",
        json!([
            ["SET", "k", "v"],
            ["SET", "only-a-key"],
            ["SET", "other", "x"]
        ]),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.json);
    assert_eq!(
        answer.json,
        json!({ "error": "EXECABORT Transaction discarded because of previous errors." })
    );
    // Nothing of it ran.
    let get = command(&gw, json!(["MGET", "k", "other"])).await;
    assert_eq!(get.json, json!({ "result": [null, null] }));
    // The connection is clean for the next transaction.
    let next = batch(&gw, "multi-exec", json!([["SET", "k", "1"], ["GET", "k"]])).await;
    assert_eq!(
        next.json,
        json!([{ "result": b64("OK") }, { "result": b64("1") }])
    );
}

#[tokio::test]
async fn concurrent_transactions_never_interleave() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    // Each transaction writes its own value to ONE shared key and reads it back. If another request's
    // SET ran between them, the GET would return a foreign value.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let url = format!("{}/multi-exec", gw.url);
            tokio::spawn(async move {
                let value = format!("writer-{i}");
                let body = json!([
                    ["SET", "shared", value],
                    ["INCR", "counter"],
                    ["GET", "shared"],
                    ["GET", "counter"],
                ]);
                let answer = post(&url, Some(TOKEN), false, body.to_string()).await;
                (value, answer)
            })
        })
        .collect();
    let mut counters = Vec::new();
    for task in tasks {
        let (value, answer) = task.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.json);
        assert_eq!(answer.json[2]["result"], json!(value));
        let incremented = answer.json[1]["result"].as_i64().unwrap();
        assert_eq!(answer.json[3]["result"], json!(incremented.to_string()));
        counters.push(incremented);
    }
    counters.sort_unstable();
    assert_eq!(counters, (1..=50).collect::<Vec<i64>>());
}

#[tokio::test]
async fn malformed_batches_and_refused_commands_are_400_before_anything_runs() {
    let redis = Redis::start();
    let gw = gateway(&redis).await;

    for route in ["pipeline", "multi-exec"] {
        let url = format!("{}/{route}", gw.url);
        for body in [
            "",
            "nope",
            "{}",
            "[]",
            r#"["GET","k"]"#,
            "[[]]",
            r#"[["GET",{"a":1}]]"#,
            r#"[["SET","k",null]]"#,
        ] {
            let answer = post(&url, Some(TOKEN), true, body).await;
            assert_eq!(answer.status, 400, "{route} {body}");
            assert!(
                answer.json["error"].as_str().unwrap().starts_with("ERR "),
                "{route} {body}"
            );
        }
        let refused = batch(&gw, route, json!([["SET", "ran", "1"], ["BLPOP", "q", 0]])).await;
        assert_eq!(refused.status, 400);
        assert!(
            refused.json["error"]
                .as_str()
                .unwrap()
                .contains("BLPOP is not supported")
        );
        let unauthorized = post(&url, Some("wrong"), true, r#"[["PING"]]"#).await;
        assert_eq!(unauthorized.status, 401);
    }
    assert_eq!(
        command(&gw, json!(["EXISTS", "ran"])).await.json,
        json!({ "result": 0 })
    );
}

#[tokio::test]
async fn batches_are_unavailable_while_redis_is_down() {
    let mut redis = Redis::start();
    let gw = gateway(&redis).await;
    assert_eq!(
        batch(&gw, "multi-exec", json!([["PING"]])).await.status,
        200
    );
    redis.stop();
    for route in ["pipeline", "multi-exec"] {
        let down = batch(&gw, route, json!([["PING"]])).await;
        assert_eq!(down.status, 503, "{route}");
        assert!(down.json["error"].as_str().unwrap().contains("unavailable"));
    }
    redis.restart();
    let mut statuses = (0, 0);
    for _ in 0..50 {
        statuses = (
            batch(&gw, "pipeline", json!([["PING"]])).await.status,
            batch(&gw, "multi-exec", json!([["PING"]])).await.status,
        );
        if statuses == (200, 200) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(statuses, (200, 200));
}

#[tokio::test]
async fn pooled_transaction_connections_that_died_with_redis_are_replaced_at_once() {
    let mut redis = Redis::start();
    let gw = gateway(&redis).await;
    // Fill the idle pool with a few connections.
    let warm: Vec<_> = (0..4)
        .map(|_| batch(&gw, "multi-exec", json!([["PING"]])))
        .collect();
    for response in futures_util::future::join_all(warm).await {
        assert_eq!(response.status, 200);
    }
    redis.restart();
    // Wait until Redis answers plain commands again (the shared connection reconnects by itself)...
    let mut up = false;
    for _ in 0..50 {
        if batch(&gw, "pipeline", json!([["PING"]])).await.status == 200 {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "Redis did not come back");
    // ...then the first transactions must not fail on the pool's dead connections.
    for i in 0..6 {
        let response = batch(&gw, "multi-exec", json!([["INCR", "after-restart"]])).await;
        assert_eq!(response.status, 200, "transaction {i}: {}", response.json);
        assert_eq!(response.json[0]["result"], json!(i + 1));
    }
}

//! Scripts that would hurt other requests: one that runs for ever, one whose reply is nested deeper
//! than the Redis client library parses. Each fails alone, and every concurrent write is answered
//! truthfully: a 200 was applied, anything else was not (checked by reading back).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Gateway, Redis, TOKEN, command, direct, gateway_with, post};
use redge_gateway::Config;
use serde_json::json;

const READ_ONLY: &str = "read-only-token";

/// Writes `SET <prefix><i> 1` from `writers` concurrent clients for `duration`; answers the keys
/// with the status each write got.
async fn write_for(
    gw: &Gateway,
    prefix: &str,
    writers: usize,
    duration: Duration,
) -> Vec<(String, u16)> {
    let until = tokio::time::Instant::now() + duration;
    let tasks = (0..writers).map(|w| {
        let url = format!("{}/", gw.url);
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut i = 0;
            while tokio::time::Instant::now() < until {
                let key = format!("{prefix}{w}-{i}");
                let body = json!(["SET", key, 1]).to_string();
                let answer = post(&url, Some(TOKEN), false, body).await;
                outcomes.push((key, answer.status));
                i += 1;
            }
            outcomes
        })
    });
    let mut all = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        all.extend(task.unwrap());
    }
    all
}

/// Asserts that exactly the writes answered 200 exist in Redis.
async fn applied_exactly_when_acknowledged(redis: &Redis, outcomes: &[(String, u16)]) {
    let mut conn = direct(redis).await;
    let mut unacknowledged_but_applied = Vec::new();
    for (key, status) in outcomes {
        let exists: bool = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if *status == 200 {
            assert!(exists, "{key} was acknowledged but is missing");
        } else if exists {
            unacknowledged_but_applied.push((key.clone(), *status));
        }
    }
    assert!(
        unacknowledged_but_applied.is_empty(),
        "{} writes were answered as failed but applied: {:?}",
        unacknowledged_but_applied.len(),
        &unacknowledged_but_applied[..unacknowledged_but_applied.len().min(5)]
    );
}

/// Stops whatever script still runs (so that a failing test leaves a usable server) and waits until
/// Redis answers again.
async fn until_redis_answers(redis: &Redis) {
    let mut conn = direct(redis).await;
    for _ in 0..50 {
        let _: redis::RedisResult<()> = redis::cmd("SCRIPT")
            .arg("KILL")
            .query_async(&mut conn)
            .await;
        let ping: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        if ping.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Redis stayed busy");
}

#[tokio::test]
async fn an_endless_read_only_script_is_stopped_at_its_deadline_and_writes_meanwhile_are_answered_truly()
 {
    let redis = Redis::start();
    quick_kills(&redis).await;
    let mut config = Config::new(&redis.url(), TOKEN);
    config.read_only_tokens = vec![READ_ONLY.into()];
    config.deadline_ms = 400;
    config.pool_size = 2;
    let gw = gateway_with(config).await;

    let url = format!("{}/", gw.url);
    let endless = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let body = json!(["EVAL_RO", "while true do end", 0]).to_string();
        let answer = post(&url, Some(READ_ONLY), false, body).await;
        (answer.status, answer.json, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let writes = write_for(&gw, "w", 8, Duration::from_millis(1500)).await;
    let (status, body, took) = endless.await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Script killed"),
        "{body}"
    );
    assert!(took < Duration::from_millis(1200), "stopped after {took:?}");
    let metrics = common::scrape(&gw.url).await;
    let killed = common::sample(&metrics, "redge_gateway_scripts_killed_total", &[]);
    assert_eq!(killed, 1.0);

    // Redis serves everyone again, without anybody's help.
    let after = command(&gw, json!(["SET", "after", 1])).await;
    assert_eq!(after.status, 200, "{}", after.json);
    until_redis_answers(&redis).await;
    // Writes queued behind nothing: every one answered, BUSY ones (400) not applied.
    assert!(writes.iter().any(|(_, s)| *s == 200));
    assert!(
        writes.iter().all(|(_, s)| *s == 200 || *s == 400),
        "{:?}",
        writes.iter().map(|(_, s)| *s).collect::<HashSet<_>>()
    );
    applied_exactly_when_acknowledged(&redis, &writes).await;
}

#[tokio::test]
async fn a_reply_nested_too_deep_fails_only_its_own_request() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    // One shared connection: every write shares it with whatever else is in flight.
    config.pool_size = 1;
    let gw = gateway_with(config).await;
    let deep = "local t = {1} for i = 1, 500 do t = {t} end return t";

    let url = format!("{}/", gw.url);
    let scripts = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let body = json!(["EVAL", deep, 0]).to_string();
            let answer = post(&url, Some(TOKEN), false, body).await;
            statuses.push(answer.status);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        statuses
    });
    let writes = write_for(&gw, "d", 32, Duration::from_millis(500)).await;
    let scripts = scripts.await.unwrap();
    assert!(scripts.iter().all(|s| *s >= 500), "{scripts:?}");
    let failed: Vec<_> = writes.iter().filter(|(_, s)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} writes failed",
        failed.len(),
        writes.len()
    );
    applied_exactly_when_acknowledged(&redis, &writes).await;

    // In a pipeline or a transaction, the batch fails alone, and neither is run twice, also on a
    // connection that served a transaction before (kept idle for the next one).
    let warm = common::batch(&gw, "multi-exec", json!([["GET", "x"]])).await;
    assert_eq!(warm.status, 200);
    let pipeline = common::batch(&gw, "pipeline", json!([["INCR", "p"], ["EVAL", deep, 0]])).await;
    assert!(pipeline.status >= 500, "{}", pipeline.json);
    common::batch(&gw, "multi-exec", json!([["GET", "x"]])).await;
    let transaction =
        common::batch(&gw, "multi-exec", json!([["INCR", "t"], ["EVAL", deep, 0]])).await;
    assert!(transaction.status >= 500, "{}", transaction.json);
    assert_eq!(
        command(&gw, json!(["MGET", "p", "t"])).await.json,
        json!({ "result": [common::b64("1"), common::b64("1")] })
    );
}

#[tokio::test]
async fn an_endless_read_only_function_is_stopped_with_function_kill() {
    let redis = Redis::start();
    let mut conn = quick_kills(&redis).await;
    // Loaded directly: FUNCTION LOAD is refused over HTTP by default.
    let library = "#!lua name=spin\nredis.register_function{function_name='spin', \
                   callback=function() while true do end end, flags={'no-writes'}}";
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.read_only_tokens = vec![READ_ONLY.into()];
    config.deadline_ms = 300;
    let gw = gateway_with(config).await;

    let started = tokio::time::Instant::now();
    let body = json!(["FCALL_RO", "spin", 0]).to_string();
    let answer = post(&format!("{}/", gw.url), Some(READ_ONLY), false, body).await;
    assert_eq!(answer.status, 400, "{}", answer.json);
    assert!(
        answer.json["error"].as_str().unwrap().contains("killed"),
        "{}",
        answer.json
    );
    assert!(started.elapsed() < Duration::from_millis(1200));
    let after = command(&gw, json!(["SET", "after", 1])).await;
    assert_eq!(after.status, 200, "{}", after.json);
}

/// Lowers `busy-reply-threshold` to 100 ms: Redis takes other clients' commands (a kill among them)
/// only once a script has run this long. Returns the connection used.
async fn quick_kills(redis: &Redis) -> redis::aio::MultiplexedConnection {
    let mut conn = direct(redis).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg(100)
        .query_async(&mut conn)
        .await
        .unwrap();
    conn
}

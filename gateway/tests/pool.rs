//! The pool of shared connections (`--pool-size`) against a real redis-server: every connection is
//! used, a busy connection is passed over, answers never cross between requests, and every connection
//! comes back after Redis restarts.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Gateway, Redis, TOKEN, b64, command, gateway_with};
use redge_gateway::{AppState, Config};
use serde_json::json;

/// A gateway on `redis` with `pool_size` shared connections, `CLIENT` allowed (to see connections) and
/// `extra` commands taken off the refused list.
async fn pooled(redis: &Redis, pool_size: usize, extra: &[&str]) -> Gateway {
    let mut config = Config::new(&redis.url(), TOKEN);
    config.pool_size = pool_size;
    config.allow = ["CLIENT"]
        .iter()
        .chain(extra)
        .map(|c| (*c).to_owned())
        .collect();
    gateway_with(config).await
}

/// The Redis client id of the connection that carried this request.
async fn client_id(gw: &Gateway) -> Option<i64> {
    let answer = command(gw, json!(["CLIENT", "ID"])).await;
    (answer.status == 200).then(|| answer.json["result"].as_i64().unwrap())
}

/// The ordinary (non pub/sub) client connections Redis has open, as listed through the gateway.
async fn normal_clients(gw: &Gateway) -> usize {
    let answer = command(gw, json!(["CLIENT", "LIST", "TYPE", "normal"])).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let list = common_decode(&answer.json["result"]);
    list.lines().filter(|l| !l.trim().is_empty()).count()
}

fn common_decode(value: &serde_json::Value) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn sequential_commands_take_every_pooled_connection_in_turn() {
    let redis = Redis::start();
    let gw = pooled(&redis, 3, &[]).await;
    let mut ids = Vec::new();
    for _ in 0..9 {
        ids.push(client_id(&gw).await.expect("CLIENT ID answered"));
    }
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    // Round-robin while idle: each connection carried every third request.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(*id, ids[i % 3], "{ids:?}");
    }
    // Redis sees exactly the pool: no connection per request, none left over.
    assert_eq!(normal_clients(&gw).await, 3);
}

#[tokio::test]
async fn a_pool_of_one_is_one_connection() {
    let redis = Redis::start();
    let gw = pooled(&redis, 1, &[]).await;
    let mut ids = HashSet::new();
    for _ in 0..5 {
        ids.insert(client_id(&gw).await.expect("CLIENT ID answered"));
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(normal_clients(&gw).await, 1);
}

#[tokio::test]
async fn a_connection_held_by_a_blocked_command_is_passed_over() {
    // A blocking command holds its connection until Redis answers it; every other request must go to
    // the other connection, or the LPUSH that releases it would queue behind it for ever.
    let redis = Redis::start();
    let gw = pooled(&redis, 2, &["BLPOP"]).await;
    let blocked = {
        let url = format!("{}/", gw.url);
        tokio::spawn(async move {
            common::post(&url, Some(TOKEN), true, r#"["BLPOP","queue","0"]"#).await
        })
    };
    // Wait until Redis reports the BLPOP as blocked (no timing assumption: poll Redis directly).
    let mut conn = common::direct(&redis).await;
    loop {
        let blocked_clients: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(&mut conn)
            .await
            .unwrap();
        if blocked_clients.contains("blocked_clients:1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..4 {
        assert_eq!(
            command(&gw, json!(["PING"])).await.json,
            json!({ "result": b64("PONG") })
        );
    }
    let push = command(&gw, json!(["LPUSH", "queue", "job"])).await;
    assert_eq!(push.json, json!({ "result": 1 }));
    let blocked = blocked.await.unwrap();
    assert_eq!(blocked.status, 200);
    assert_eq!(
        blocked.json,
        json!({ "result": [b64("queue"), b64("job")] })
    );
}

#[tokio::test]
async fn concurrent_requests_over_the_pool_get_their_own_answers() {
    let redis = Redis::start();
    let gw = pooled(&redis, 4, &[]).await;
    let requests = (0..200).map(|i| {
        let gw = &gw;
        async move {
            let key = format!("key:{i}");
            let value = format!("value:{i}");
            let set = command(gw, json!(["SET", key, value])).await;
            assert_eq!(set.json, json!({ "result": "OK" }));
            let echo = command(gw, json!(["ECHO", format!("echo:{i}")])).await;
            assert_eq!(echo.json, json!({ "result": b64(format!("echo:{i}")) }));
            let incr = command(gw, json!(["INCR", "counter"])).await;
            assert_eq!(incr.status, 200);
            let pipe = common::batch(gw, "pipeline", json!([["GET", key], ["ECHO", i]])).await;
            assert_eq!(
                pipe.json,
                json!([{ "result": b64(&value) }, { "result": b64(i.to_string()) }])
            );
        }
    });
    futures_util::future::join_all(requests).await;
    assert_eq!(
        command(&gw, json!(["GET", "counter"])).await.json,
        json!({ "result": b64("200") })
    );
    // However many requests were in flight at once, Redis saw only the pool's connections.
    assert_eq!(normal_clients(&gw).await, 4);
}

#[tokio::test]
async fn every_pooled_connection_comes_back_after_redis_restarts() {
    let mut redis = Redis::start();
    let gw = pooled(&redis, 3, &[]).await;
    for _ in 0..3 {
        client_id(&gw).await.expect("CLIENT ID answered");
    }

    redis.stop();
    for _ in 0..3 {
        let down = command(&gw, json!(["PING"])).await;
        assert_eq!(down.status, 503);
        assert!(down.json["error"].as_str().unwrap().contains("unavailable"));
    }

    redis.restart();
    // Each connection re-establishes itself on demand (a request may fail while it does): within a
    // bounded number of attempts, all three carry requests again.
    let mut ids = HashSet::new();
    for _ in 0..100 {
        if let Some(id) = client_id(&gw).await {
            ids.insert(id);
        }
        if ids.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids.len(), 3, "{ids:?}");
    // Once back, they stay up: every request succeeds, and the pool is still three connections.
    for _ in 0..6 {
        assert_eq!(command(&gw, json!(["PING"])).await.status, 200);
    }
    assert_eq!(normal_clients(&gw).await, 3);
}

/// Redis restarts while the gateway is idle: every shared connection is dead, and nobody has noticed.
/// The first requests find them dead before writing anything, reconnect and go on: not one request
/// fails, writes included.
#[tokio::test]
async fn a_redis_restart_while_idle_costs_no_request() {
    let mut redis = Redis::start();
    let gw = pooled(&redis, 3, &[]).await;
    for _ in 0..3 {
        client_id(&gw).await.expect("CLIENT ID answered");
    }
    redis.restart();
    // The old connections read the end of their sockets by now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..6 {
        let set = command(&gw, json!(["INCR", "after-idle-restart"])).await;
        assert_eq!(
            (set.status, &set.json),
            (200, &json!({ "result": i + 1 })),
            "write {i}"
        );
    }
    let pipeline = common::batch(
        &gw,
        "pipeline",
        json!([
            ["INCR", "after-idle-restart"],
            ["GET", "after-idle-restart"]
        ]),
    )
    .await;
    assert_eq!(pipeline.status, 200, "{}", pipeline.json);
    assert_eq!(normal_clients(&gw).await, 3);
}

#[test]
fn the_pool_size_is_validated() {
    for bad in [0, 257] {
        let mut config = Config::new("redis://127.0.0.1:6379", TOKEN);
        config.pool_size = bad;
        let Err(error) = AppState::from_config(&config) else {
            panic!("pool size {bad} was accepted");
        };
        assert!(
            error.contains("--pool-size (REDGE_GATEWAY_POOL_SIZE)"),
            "{error}"
        );
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_redge-gateway"))
        .env("REDGE_GATEWAY_TOKENS", TOKEN)
        .env("REDGE_GATEWAY_POOL_SIZE", "0")
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--pool-size (REDGE_GATEWAY_POOL_SIZE) must be between 1 and 256"),
        "{stderr}"
    );
}

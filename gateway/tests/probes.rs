//! `/livez`, `/readyz` and `/healthz` for orchestrators, and the binary's configuration by the
//! environment variable names of serverless-redis-http (SRH).

mod common;

use std::time::{Duration, Instant};

use common::{Redis, TOKEN, gateway, post, spawn_binary};

async fn get(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn livez_never_asks_redis_and_readyz_says_why_it_is_not_ready() {
    let mut redis = Redis::start();
    let gw = gateway(&redis).await;

    assert_eq!(
        get(&format!("{}/livez", gw.url)).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    assert_eq!(
        get(&format!("{}/readyz", gw.url)).await,
        (200, serde_json::json!({"status": "ready"}))
    );
    for probe in ["livez", "readyz"] {
        let head = reqwest::Client::new()
            .head(format!("{}/{probe}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200, "HEAD /{probe}");
        assert!(head.bytes().await.unwrap().is_empty());
        let post = reqwest::Client::new()
            .post(format!("{}/{probe}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 405, "POST /{probe}");
        assert_eq!(post.headers()["allow"], "GET, HEAD");
    }

    redis.stop();
    let started = Instant::now();
    let (status, body) = get(&format!("{}/readyz", gw.url)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unready");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.starts_with("redis: "), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "within the probe's deadline"
    );
    assert_eq!(
        get(&format!("{}/livez", gw.url)).await.0,
        200,
        "alive while Redis is down"
    );
    assert_eq!(get(&format!("{}/healthz", gw.url)).await.0, 503);

    redis.restart();
    let mut ready = 0;
    for _ in 0..50 {
        ready = get(&format!("{}/readyz", gw.url)).await.0;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200, "ready again once Redis is back");
    assert_eq!(
        get(&format!("{}/healthz", gw.url)).await,
        (200, serde_json::json!({"status": "ok", "redis": "up"}))
    );
}

#[tokio::test]
async fn a_redis_that_answers_ping_with_an_error_is_not_ready() {
    let redis = Redis::start();
    let mut conn = common::direct(&redis).await;
    let gw = gateway(&redis).await;
    // From now on PING needs a password the gateway does not have: NOAUTH.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("not-the-gateways")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Connections opened before keep their authentication; a new one (after a restart) would not.
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..20 {
        last = get(&format!("{}/readyz", gw.url)).await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    assert!(
        last.1["reason"].as_str().unwrap().contains("NOAUTH"),
        "{}",
        last.1
    );
}

#[tokio::test]
async fn srh_variables_configure_the_binary_and_redge_variables_win() {
    let redis = Redis::start();
    let (mut child, base) = spawn_binary(&[
        ("SRH_MODE", "env"),
        ("SRH_TOKEN", "srh-token"),
        ("SRH_CONNECTION_STRING", &redis.url()),
    ])
    .await;
    let ping = post(&format!("{base}/"), Some("srh-token"), false, r#"["PING"]"#).await;
    assert_eq!(ping.status, 200, "{}", ping.json);
    assert_eq!(ping.json["result"], "PONG");
    // The binary counts on each of its threads; a scrape adds them up.
    for _ in 0..3 {
        post(&format!("{base}/get/k"), Some("srh-token"), false, "").await;
    }
    let metrics = common::scrape(&base).await;
    let requests = |route| {
        common::sample(
            &metrics,
            "redge_gateway_requests_total",
            &[("route", route), ("status", "200")],
        )
    };
    assert_eq!((requests("command"), requests("path")), (1.0, 3.0));
    assert_eq!(
        common::sample(&metrics, "redge_gateway_redis_calls_total", &[]),
        4.0
    );
    let _ = child.kill();
    let _ = child.wait();

    // Both names set: REDGE_* counts, the SRH_* value is ignored (its Redis does not exist).
    let (mut child, base) = spawn_binary(&[
        ("SRH_TOKEN", "srh-token"),
        ("SRH_CONNECTION_STRING", "redis://127.0.0.1:1"),
        ("REDGE_GATEWAY_TOKENS", TOKEN),
        ("REDGE_REDIS_URL", &redis.url()),
    ])
    .await;
    let ours = post(&format!("{base}/"), Some(TOKEN), false, r#"["PING"]"#).await;
    assert_eq!(ours.status, 200, "{}", ours.json);
    let theirs = post(&format!("{base}/"), Some("srh-token"), false, r#"["PING"]"#).await;
    assert_eq!(theirs.status, 401);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn srh_file_mode_stops_the_binary_with_a_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_redge-gateway"))
        .env("SRH_MODE", "file")
        .env("SRH_TOKEN", "t")
        .env_remove("REDGE_GATEWAY_TOKENS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SRH_MODE=file"), "{stderr}");
}

#[test]
fn without_any_token_the_binary_names_both_variables() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_redge-gateway"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("REDGE_GATEWAY_TOKENS")
        .env_remove("SRH_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("REDGE_GATEWAY_TOKENS") && stderr.contains("SRH_TOKEN"),
        "{stderr}"
    );
}

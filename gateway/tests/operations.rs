//! Operating the gateway: tokens, limits, deadline, graceful shutdown, logs, `--help`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Redis, TOKEN, b64, command, gateway_with, post};
use redge_gateway::{AppState, Config};
use serde_json::json;

#[tokio::test]
async fn read_only_tokens_read_but_never_write() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.read_only_tokens = vec!["reader".into()];
    let gw = gateway_with(config).await;
    command(&gw, json!(["SET", "k", "v"])).await;

    let url = format!("{}/", gw.url);
    let read = post(&url, Some("reader"), true, r#"["GET","k"]"#).await;
    assert_eq!(read.json, json!({ "result": b64("v") }));
    let write = post(&url, Some("reader"), true, r#"["DEL","k"]"#).await;
    assert_eq!(write.status, 400);
    assert_eq!(
        write.json,
        json!({ "error": "NOPERM this token is read-only and has no permissions to run the 'del' command" })
    );
    let script = post(&url, Some("reader"), true, r#"["EVAL","return 1",0]"#).await;
    assert!(
        script.json["error"]
            .as_str()
            .unwrap()
            .starts_with("NOPERM ")
    );
    let pipeline = post(
        &format!("{}/pipeline", gw.url),
        Some("reader"),
        true,
        r#"[["GET","k"],["SET","k","w"]]"#,
    )
    .await;
    assert_eq!(pipeline.status, 400);
    let path = reqwest::Client::new()
        .get(format!("{}/set/k/w", gw.url))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(path.status(), 400);
    assert_eq!(
        command(&gw, json!(["GET", "k"])).await.json,
        json!({ "result": b64("v") })
    );
}

#[tokio::test]
async fn the_refused_list_and_body_limit_are_configurable() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.refuse = vec!["flushall".into()];
    config.allow = vec!["DEBUG".into()];
    config.max_body_bytes = 64;
    let gw = gateway_with(config).await;

    let flush = command(&gw, json!(["FLUSHALL"])).await;
    assert_eq!(flush.status, 400);
    assert_eq!(
        flush.json,
        json!({ "error": "ERR FLUSHALL is not supported over the HTTP protocol" })
    );
    for refused in [
        json!(["SUBSCRIBE", "x"]),
        json!(["MULTI"]),
        json!(["CONFIG", "GET", "*"]),
    ] {
        let answer = command(&gw, refused.clone()).await;
        assert_eq!(answer.status, 400, "{refused}");
    }
    assert_eq!(command(&gw, json!(["DEBUG", "SLEEP", 0])).await.status, 200);

    let url = format!("{}/", gw.url);
    let big = post(
        &url,
        Some(TOKEN),
        true,
        format!(r#"["SET","k","{}"]"#, "x".repeat(64)),
    )
    .await;
    assert_eq!(big.status, 413);
    assert_eq!(
        big.json,
        json!({ "error": "ERR max request size exceeded" })
    );
    let path = common::send("POST", &format!("{}/set/k", gw.url), &[], vec![b'x'; 65]).await;
    assert_eq!(path.status, 413);
    // The connection is still usable after a 413.
    assert_eq!(command(&gw, json!(["PING"])).await.status, 200);
}

#[tokio::test]
async fn a_slow_command_hits_the_deadline_and_a_full_gateway_answers_503() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.allow = vec!["DEBUG".into()];
    config.deadline_ms = 400;
    config.max_concurrency = 1;
    let gw = gateway_with(config).await;

    let slow_url = format!("{}/", gw.url);
    let slow = tokio::spawn(async move {
        post(&slow_url, Some(TOKEN), true, r#"["DEBUG","SLEEP","1"]"#).await
    });
    // Redis cannot be asked while it sleeps, so give the slow request a head start well inside both the
    // 1 s sleep and the 400 ms deadline: the one request slot is then taken.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let busy = command(&gw, json!(["PING"])).await;
    assert_eq!(busy.status, 503);
    assert!(busy.json["error"].as_str().unwrap().contains("busy"));

    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 503);
    assert!(
        slow.json["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 400 ms")
    );
    // Once Redis is responsive again, so is the gateway.
    let mut status = 0;
    for _ in 0..50 {
        status = command(&gw, json!(["PING"])).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.allow = vec!["DEBUG".into()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let state = AppState::from_config(&config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(redge_gateway::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let slow_url = url.clone();
    let slow = tokio::spawn(async move {
        post(&slow_url, Some(TOKEN), true, r#"["DEBUG","SLEEP","0.4"]"#).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let slow = slow.await.unwrap();
    assert_eq!((slow.status, slow.json), (200, json!({ "result": "OK" })));
    server.await.unwrap().unwrap();
    assert!(reqwest::get(&url).await.is_err(), "the listener is closed");
}

/// [`redge_gateway::run`] on a free port, on a thread of its own, with 3 server threads and one Redis
/// connection each, also allowing `allow`: its base URL, the sender that stops it, and its thread.
fn run_in_background(
    redis: &Redis,
    allow: &str,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<std::io::Result<()>>,
) {
    let mut config = Config::new(&redis.url(), TOKEN);
    config.threads = 3;
    config.pool_size = 3;
    config.allow = vec![allow.into()];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        redge_gateway::run(listener, &config, async {
            let _ = stopped.await;
        })
    });
    (url, stop, server)
}

/// `run`, what the binary does: several threads, each with its own runtime and connections, on one
/// listener. Many clients at once get their own answers, and a shutdown drains every thread.
#[test]
fn run_serves_from_several_threads_and_drains_them_all() {
    let redis = Redis::start();
    let (url, stop, server) = run_in_background(&redis, "DEBUG");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // A client of its own for each caller: its own connection, accepted by any thread.
        let calls = (0..48).map(|i| {
            let url = url.clone();
            async move {
                let client = reqwest::Client::new();
                let set = client
                    .post(format!("{url}/set/run:{i}/value-{i}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(set.status(), 200);
                let get: serde_json::Value = client
                    .post(format!("{url}/get/run:{i}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(get, json!({ "result": format!("value-{i}") }));
            }
        });
        futures_util::future::join_all(calls).await;

        let slow = (0..3).map(|_| {
            let url = format!("{url}/");
            tokio::spawn(async move {
                post(&url, Some(TOKEN), true, r#"["DEBUG","SLEEP","0.3"]"#).await
            })
        });
        let slow: Vec<_> = slow.collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        for call in slow {
            let answer = call.await.unwrap();
            assert_eq!(
                (answer.status, answer.json),
                (200, json!({ "result": "OK" }))
            );
        }
    });
    server.join().unwrap().unwrap();
    let refused = runtime.block_on(reqwest::get(format!("{url}/healthz")));
    assert!(refused.is_err(), "the listener is closed");
}

#[test]
fn run_hands_each_new_connection_to_the_thread_with_the_fewest() {
    // One Redis connection per thread: `CLIENT ID` names the thread that served a request.
    let redis = Redis::start();
    let (base, stop, server) = run_in_background(&redis, "CLIENT");
    let url = format!("{base}/");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client_id = |client: reqwest::Client| {
            let url = url.clone();
            async move {
                let answer: serde_json::Value = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .body(r#"["CLIENT","ID"]"#)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["result"].as_i64().unwrap()
            }
        };
        // Six keep-alive connections, opened one after the other and kept open: two per thread.
        let clients: Vec<_> = (0..6).map(|_| reqwest::Client::new()).collect();
        let mut served = std::collections::BTreeMap::<i64, usize>::new();
        for client in &clients {
            *served.entry(client_id(client.clone()).await).or_default() += 1;
        }
        assert_eq!(
            served.values().copied().collect::<Vec<_>>(),
            [2, 2, 2],
            "connections per Redis connection (one per thread): {served:?}"
        );
        // Every connection keeps its thread: a second round lands the same way.
        let mut again = std::collections::BTreeMap::<i64, usize>::new();
        for client in &clients {
            *again.entry(client_id(client.clone()).await).or_default() += 1;
        }
        assert_eq!(again, served);
        stop.send(()).unwrap();
    });
    server.join().unwrap().unwrap();
}

#[test]
fn run_refuses_invalid_settings_with_their_name() {
    let mut config = Config::new("redis://127.0.0.1:1", TOKEN);
    config.threads = 0;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = redge_gateway::run(listener, &config, async {}).unwrap_err();
    assert!(error.to_string().contains("--threads"), "{error}");
}

#[tokio::test]
async fn the_binary_drains_on_sigterm_and_logs_no_secrets() {
    let redis = Redis::start();
    let (child, base) = common::spawn_binary(&[
        ("REDGE_REDIS_URL", &redis.url()),
        ("REDGE_GATEWAY_TOKENS", "secret-token-1,secret-token-2"),
        ("REDGE_GATEWAY_ALLOW", "DEBUG"),
        ("RUST_LOG", "info"),
    ])
    .await;

    let set = post(
        &format!("{base}/set/secret-key/secret-value"),
        Some("secret-token-2"),
        true,
        "",
    )
    .await;
    assert_eq!(set.status, 200);
    let slow_url = format!("{base}/");
    let slow = tokio::spawn(async move {
        post(
            &slow_url,
            Some("secret-token-1"),
            true,
            r#"["DEBUG","SLEEP","0.4"]"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    common::sigterm(&child);
    assert_eq!(slow.await.unwrap().status, 200);
    let logs = common::logs_of(child);
    assert!(logs.contains(r#""route":"path""#), "{logs}");
    assert!(logs.contains(r#""command":"SET""#), "{logs}");
    assert!(logs.contains(r#""command":"DEBUG""#), "{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    for secret in ["secret-token", "secret-key", "secret-value"] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs: {logs}"
        );
    }
}

#[test]
fn help_documents_every_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_redge-gateway"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for option in [
        "--listen",
        "--redis-url",
        "--redis-password",
        "--token",
        "--read-only-token",
        "--max-body-bytes",
        "--deadline-ms",
        "--body-timeout-ms",
        "--max-concurrency",
        "--max-streams",
        "--pool-size",
        "REDGE_GATEWAY_POOL_SIZE",
        "--threads",
        "REDGE_GATEWAY_THREADS",
        "--transaction-pool",
        "--refuse",
        "--allow",
        "--heartbeat-ms",
        "--log-format",
        "REDGE_GATEWAY_TOKENS",
        "--metrics-token",
        "REDGE_GATEWAY_METRICS_TOKEN",
        "SRH_TOKEN",
        "SRH_CONNECTION_STRING",
    ] {
        assert!(help.contains(option), "{option} missing from --help");
    }
}

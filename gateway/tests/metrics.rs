//! `GET /metrics`: scraped over HTTP and parsed with a Prometheus text-format parser, the counts match
//! the requests sent; the optional metrics token guards it and nothing else.

mod common;

use std::time::Duration;

use common::{Redis, TOKEN, command, gateway_with, post, sample, scrape};
use futures_util::StreamExt as _;
use redge_gateway::Config;
use serde_json::json;

#[tokio::test]
async fn the_counts_match_the_requests_sent() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.read_only_tokens = vec!["reader".into()];
    config.refuse = vec!["MY-SECRET-COMMAND".into()];
    config.pool_size = 3;
    let gw = gateway_with(config).await;
    let url = format!("{}/", gw.url);

    // Reach Redis: 5 SET, 3 path GET, the SET of "text", an INCR answered with an error, a pipeline
    // and FLUSHALL: 12 calls, 2 error replies (the INCR, and one entry of the pipeline).
    for i in 0..5 {
        assert_eq!(command(&gw, json!(["SET", "k", i])).await.status, 200);
    }
    for _ in 0..3 {
        let get = post(&format!("{}/get/k", gw.url), Some(TOKEN), false, "").await;
        assert_eq!(get.status, 200);
    }
    command(&gw, json!(["SET", "text", "abc"])).await;
    let incr = command(&gw, json!(["INCR", "text"])).await;
    assert_eq!(incr.status, 400);
    let batch = common::batch(&gw, "pipeline", json!([["GET", "k"], ["INCR", "text"]])).await;
    assert_eq!(batch.status, 200);
    assert_eq!(command(&gw, json!(["FLUSHALL"])).await.status, 200);
    // Refused before Redis: a built-in refusal, a write from a read-only token, a --refuse name.
    assert_eq!(command(&gw, json!(["MONITOR"])).await.status, 400);
    let write = post(&url, Some("reader"), false, r#"["DEL","k"]"#).await;
    assert_eq!(write.status, 400);
    let secret = command(&gw, json!(["MY-SECRET-COMMAND", "x"])).await;
    assert_eq!(secret.status, 400);
    // Refused by auth: counted under the route kind `other`.
    for _ in 0..2 {
        assert_eq!(post(&url, Some("wrong"), false, "[]").await.status, 401);
    }
    // An open SSE stream.
    let stream = reqwest::Client::new()
        .post(format!("{}/subscribe/news", gw.url))
        .bearer_auth(TOKEN)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut events = stream.bytes_stream();
    let first = events.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: subscribe,news,1"));

    let metrics = scrape(&gw.url).await;
    let requests = |route: &str, status: &str| {
        sample(
            &metrics,
            "redge_gateway_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    // 5 SET, the SET of "text", FLUSHALL: 7 commands answered 200.
    assert_eq!(requests("command", "200"), 7.0);
    // INCR's error, MONITOR, the read-only DEL, the --refuse name.
    assert_eq!(requests("command", "400"), 4.0);
    assert_eq!(requests("path", "200"), 3.0);
    assert_eq!(requests("pipeline", "200"), 1.0);
    assert_eq!(requests("other", "401"), 2.0);
    // The stream is counted once its response head is out.
    assert_eq!(requests("subscribe", "200"), 1.0);
    assert_eq!(requests("metrics", "200"), 0.0, "counted once answered");

    let calls = sample(&metrics, "redge_gateway_redis_calls_total", &[]);
    assert_eq!(calls, 12.0);
    let errors = |kind| {
        sample(
            &metrics,
            "redge_gateway_redis_errors_total",
            &[("kind", kind)],
        )
    };
    assert_eq!(errors("reply"), 2.0);
    assert_eq!(errors("unavailable"), 0.0);

    let refused = |command, reason| {
        sample(
            &metrics,
            "redge_gateway_refused_commands_total",
            &[("command", command), ("reason", reason)],
        )
    };
    assert_eq!(refused("MONITOR", "not_supported"), 1.0);
    assert_eq!(refused("DEL", "read_only"), 1.0);
    assert_eq!(refused("unknown", "not_supported"), 1.0);
    assert!(
        metrics
            .samples
            .iter()
            .all(|s| s.labels.values().all(|v| !v.contains("SECRET"))),
        "a user-chosen name reached a label"
    );

    assert_eq!(sample(&metrics, "redge_gateway_sse_streams", &[]), 1.0);
    assert_eq!(
        sample(&metrics, "redge_gateway_pool_shared_connections", &[]),
        3.0
    );
    assert_eq!(
        sample(&metrics, "redge_gateway_pool_shared_in_flight", &[]),
        0.0
    );
    // The scrape's own connection and the stream's, at least (reqwest may keep others alive).
    assert!(sample(&metrics, "redge_gateway_client_connections", &[]) >= 2.0);
    assert_eq!(
        sample(&metrics, "redge_gateway_requests_in_flight", &[]),
        0.0,
        "streams and the scrape hold no request slot"
    );

    // The latency histogram counts every command request, in cumulative buckets.
    let histogram = metrics
        .samples
        .iter()
        .find(|s| {
            s.metric == "redge_gateway_request_duration_seconds"
                && s.labels.get("route") == Some("command")
        })
        .expect("a histogram for command");
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {:?}", histogram.value);
    };
    let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    let infinite = buckets
        .iter()
        .find(|b| b.less_than == f64::INFINITY)
        .expect("a +Inf bucket");
    assert_eq!(infinite.count, 11.0);

    drop(events);
    // The scrape above is counted by the next one; the closed stream is noticed at its next write.
    let again = scrape(&gw.url).await;
    assert_eq!(
        sample(
            &again,
            "redge_gateway_requests_total",
            &[("route", "metrics"), ("status", "200")]
        ),
        1.0
    );
    let head = reqwest::Client::new()
        .head(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn the_metrics_token_guards_metrics_and_opens_nothing_else() {
    let redis = Redis::start();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.metrics_token = Some("scraper".into());
    let gw = gateway_with(config).await;
    let metrics_url = format!("{}/metrics", gw.url);
    let client = reqwest::Client::new();

    let open = client.get(&metrics_url).send().await.unwrap();
    assert_eq!(open.status(), 401);
    let gateway_token = client
        .get(&metrics_url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        gateway_token.status(),
        401,
        "the gateway's token is not a scraper's"
    );
    let scraper = client
        .get(&metrics_url)
        .bearer_auth("scraper")
        .send()
        .await
        .unwrap();
    assert_eq!(scraper.status(), 200);
    let text = scraper.text().await.unwrap();
    let parsed = common::parse_metrics(&text);
    assert_eq!(
        sample(
            &parsed,
            "redge_gateway_requests_total",
            &[("route", "metrics"), ("status", "401")]
        ),
        2.0
    );
    let query = client
        .get(format!("{metrics_url}?_token=scraper"))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);

    let command = post(
        &format!("{}/", gw.url),
        Some("scraper"),
        false,
        r#"["PING"]"#,
    )
    .await;
    assert_eq!(command.status, 401, "the scraper's token opens no command");
}

#[tokio::test]
async fn calls_that_find_redis_down_are_counted_as_unavailable() {
    let mut redis = Redis::start();
    let gw = gateway_with(Config::new(&redis.url(), TOKEN)).await;
    assert_eq!(command(&gw, json!(["PING"])).await.status, 200);
    redis.stop();
    assert_eq!(command(&gw, json!(["PING"])).await.status, 503);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let metrics = scrape(&gw.url).await;
    assert_eq!(
        sample(&metrics, "redge_gateway_redis_calls_total", &[]),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            "redge_gateway_redis_errors_total",
            &[("kind", "unavailable")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "redge_gateway_requests_total",
            &[("route", "command"), ("status", "503")]
        ),
        1.0
    );
}

//! SSE `/subscribe` and `/psubscribe` against a real redis-server.

mod common;

use std::time::Duration;

use common::{Events, Redis, TOKEN, command, gateway_with, numsub};
use futures_util::StreamExt as _;
use redge_gateway::Config;
use serde_json::json;

fn fast_heartbeat(redis: &Redis) -> Config {
    let mut config = Config::new(&redis.url(), TOKEN);
    config.heartbeat_ms = 100;
    config
}

#[tokio::test]
async fn subscribe_delivers_messages_and_heartbeats_then_releases_the_connection() {
    let redis = Redis::start();
    let gw = gateway_with(fast_heartbeat(&redis)).await;

    let (status, content_type, mut events) =
        Events::open(&format!("{}/subscribe/news%2Fdesk", gw.url)).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("text/event-stream"));
    events.until("data: subscribe,news/desk,1\n\n").await;
    assert_eq!(numsub(&redis, "news/desk").await, 1);

    let published = command(&gw, json!(["PUBLISH", "news/desk", "hello, world"])).await;
    assert_eq!(published.json, json!({ "result": 1 }));
    events
        .until("data: message,news/desk,hello, world\n\n")
        .await;
    events.until(": keepalive\n\n").await;

    // The client goes away: the gateway notices at the next heartbeat and closes its Redis connection.
    drop(events);
    let mut remaining = 1;
    for _ in 0..100 {
        remaining = numsub(&redis, "news/desk").await;
        if remaining == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(remaining, 0);
}

#[tokio::test]
async fn psubscribe_reports_pattern_and_channel() {
    let redis = Redis::start();
    let gw = gateway_with(fast_heartbeat(&redis)).await;

    let (status, _, mut events) = Events::open(&format!("{}/psubscribe/user:*", gw.url)).await;
    assert_eq!(status, 200);
    events.until("data: psubscribe,user:*,1\n\n").await;
    command(&gw, json!(["PUBLISH", "user:7", "line1\nline2"])).await;
    events
        .until("data: pmessage,user:*,user:7,line1\ndata: line2\n\n")
        .await;
}

#[tokio::test]
async fn streams_need_a_token_and_a_reachable_redis() {
    let mut redis = Redis::start();
    let gw = gateway_with(fast_heartbeat(&redis)).await;
    let unauthorized = reqwest::Client::new()
        .post(format!("{}/subscribe/x", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    redis.stop();
    let (status, _, _) = Events::open(&format!("{}/subscribe/x", gw.url)).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn the_stream_limit_answers_503() {
    let redis = Redis::start();
    let mut config = fast_heartbeat(&redis);
    config.max_streams = 1;
    let gw = gateway_with(config).await;
    let (first, _, mut events) = Events::open(&format!("{}/subscribe/a", gw.url)).await;
    assert_eq!(first, 200);
    events.until("data: subscribe,a,1").await;
    let (second, _, _) = Events::open(&format!("{}/subscribe/b", gw.url)).await;
    assert_eq!(second, 503);
}

#[tokio::test]
async fn shutdown_ends_open_streams_so_the_server_can_drain() {
    let redis = Redis::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/subscribe/ch", listener.local_addr().unwrap());
    let state = redge_gateway::AppState::from_config(&fast_heartbeat(&redis)).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(redge_gateway::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let (_, _, mut events) = Events::open(&url).await;
    events.until("data: subscribe,ch,1").await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server drained")
        .unwrap()
        .unwrap();
    // The stream ended cleanly: whatever is left, then the end.
    while let Ok(Some(Ok(_))) =
        tokio::time::timeout(Duration::from_secs(5), events.stream.next()).await
    {}
}

//! An SSE client that stops reading while messages keep being published: the gateway holds at most
//! `--stream-buffer-bytes` for it, then closes the stream and the connection, and gives the memory back.
//! Alone in its file: it measures the test process's peak memory, which other tests would disturb.

mod common;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use common::{Redis, TOKEN, direct, numsub};
use redge_gateway::{AppState, Config};

/// The peak resident memory of this process in KiB (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_stalled_reader_is_disconnected_and_its_memory_stays_bounded() {
    const LIMIT: usize = 1024 * 1024;
    const MESSAGE: usize = 64 * 1024;
    const MESSAGES: usize = 1600; // 100 MiB in all

    let redis = Redis::start();
    let mut publisher = direct(&redis).await;
    // Redis must not be the one to cut the subscriber off (its own pub/sub output limit).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 0 0 0")
        .query_async(&mut publisher)
        .await
        .unwrap();
    let mut config = Config::new(&redis.url(), TOKEN);
    config.stream_buffer_bytes = LIMIT;
    let state = AppState::from_config(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(redge_gateway::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    // Subscribes, reads the subscription event, then reads nothing more.
    let mut client = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let request = format!(
            "POST /subscribe/feed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Accept: text/event-stream\r\nContent-Length: 2\r\n\r\n[]"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("data: subscribe,feed,1") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the stream ended early");
            seen.extend_from_slice(&buf[..n]);
        }
        stream
    })
    .await
    .unwrap();
    assert_eq!(numsub(&redis, "feed").await, 1);

    let sampling = state.clone();
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most_seen = std::sync::Arc::clone(&most);
    let sampler = tokio::spawn(async move {
        loop {
            let now = sampling.buffered_stream_bytes();
            most_seen.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let before = peak_rss_kib();
    let payload = vec![b'm'; MESSAGE];
    let mut delivered = 0;
    for _ in 0..MESSAGES {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("feed")
            .arg(&payload)
            .query_async(&mut publisher)
            .await
            .unwrap();
        delivered += receivers as usize;
    }
    // The gateway gave up on the stream: Redis has no subscriber left.
    let mut subscribers = 1;
    for _ in 0..100 {
        subscribers = numsub(&redis, "feed").await;
        if subscribers == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(subscribers, 0, "the stalled stream is still subscribed");
    let grown_mib = (peak_rss_kib() - before) / 1024;
    sampler.abort();
    let most = most.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{delivered} of {MESSAGES} messages reached the gateway; at most {most} bytes queued; peak \
         memory grew by {grown_mib} MiB"
    );
    // The socket and the HTTP library's buffer absorb a few MiB before the queue fills.
    assert!(delivered * MESSAGE > 2 * LIMIT, "{delivered} messages");
    assert!(most > 0 && most <= LIMIT, "{most} bytes queued");
    assert_eq!(state.buffered_stream_bytes(), 0, "queued events were freed");
    assert!(
        grown_mib < 40,
        "peak memory grew by {grown_mib} MiB while {} MiB were published",
        MESSAGE * MESSAGES / (1024 * 1024)
    );

    // The client's connection was closed: reading on finds its end (after what was sent before).
    let ended = tokio::task::spawn_blocking(move || {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            match client.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    })
    .await
    .unwrap();
    assert!(ended, "the stalled client's connection is still open");
}

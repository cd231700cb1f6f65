//! Connections that never send a request, or send it a byte at a time, and floods of connections:
//! the header and idle timeouts close them, the connection cap refuses those beyond it at once, and a
//! valid client is served afterwards. Both ways of serving are checked: `serve` (in-process) and the
//! binary, whose acceptor spreads connections over threads.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Redis, TOKEN, gateway_with, sample, scrape, spawn_binary};
use redge_gateway::Config;

const PING: &str = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\nContent-Length: 8\r\n\r\n[\"PING\"]";

/// How long until the server closes `stream` (a read answers end of file or an error), or `None` if
/// it is still open after `patience`. Anything the server sends first is read past.
fn closed_after(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = patience.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// Sends one PING on `stream` and answers whether it got a 200.
fn ping_on(stream: &mut TcpStream) -> bool {
    if stream.write_all(PING.as_bytes()).is_err() {
        return false;
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"{\"result\":\"PONG\"}") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    answer.starts_with(b"HTTP/1.1 200 ")
}

/// With a 300 ms header timeout and a 900 ms idle timeout: a silent connection and one that dribbles
/// header lines are closed at the header timeout; a keep-alive connection may idle longer than the
/// header timeout, and is closed at the idle timeout.
fn timeouts_hold(addr: &str) {
    let header = Duration::from_millis(300);
    let patience = Duration::from_secs(3);

    let mut silent = TcpStream::connect(addr).unwrap();
    let after = closed_after(&mut silent, patience).expect("a silent connection was closed");
    assert!(after >= header - Duration::from_millis(50), "{after:?}");

    let mut dribbling = TcpStream::connect(addr).unwrap();
    let mut writer = dribbling.try_clone().unwrap();
    let dribble = std::thread::spawn(move || {
        let _ = writer.write_all(b"POST / HTTP/1.1\r\n");
        for i in 0..60 {
            std::thread::sleep(Duration::from_millis(50));
            if writer
                .write_all(format!("X-Line-{i}: v\r\n").as_bytes())
                .is_err()
            {
                break;
            }
        }
    });
    let after = closed_after(&mut dribbling, patience).expect("a dribbling connection was closed");
    assert!(after < Duration::from_millis(1500), "{after:?}");
    dribble.join().unwrap();

    let mut keep_alive = TcpStream::connect(addr).unwrap();
    assert!(ping_on(&mut keep_alive));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ping_on(&mut keep_alive),
        "closed while idle for less than the idle timeout"
    );
    let after = closed_after(&mut keep_alive, patience).expect("an idle connection was closed");
    assert!(
        after >= Duration::from_millis(700) && after < Duration::from_millis(2000),
        "{after:?}"
    );
}

/// With a cap of 10 connections: 10 silent ones are held, 20 more are closed at once, a valid client
/// is served once the silent ones have timed out.
fn cap_holds(addr: &str) {
    let held: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..20 {
        let mut refused = TcpStream::connect(addr).unwrap();
        let after = closed_after(&mut refused, Duration::from_millis(250))
            .expect("a connection beyond the cap was closed at once");
        assert!(after < Duration::from_millis(250), "{after:?}");
    }
    // The held ones time out (header timeout), and their slots are free again.
    std::thread::sleep(Duration::from_millis(600));
    drop(held);
    let mut valid = TcpStream::connect(addr).unwrap();
    assert!(
        ping_on(&mut valid),
        "a valid client was not served after the flood"
    );
}

fn limited(redis: &Redis) -> Config {
    let mut config = Config::new(&redis.url(), TOKEN);
    config.header_timeout_ms = 300;
    config.idle_timeout_ms = 900;
    config.max_connections = 10;
    config
}

#[tokio::test]
async fn silent_dribbling_and_idle_connections_are_closed_by_their_timeouts() {
    let redis = Redis::start();
    let gw = gateway_with(limited(&redis)).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || timeouts_hold(&addr))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_connection_flood_past_the_cap_is_refused_at_once_and_a_valid_client_is_served_afterwards()
 {
    let redis = Redis::start();
    let gw = gateway_with(limited(&redis)).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || cap_holds(&addr))
        .await
        .unwrap();
    refusals_are_counted(&gw.url).await;
}

/// The 20 connections [`cap_holds`] saw refused are in the metrics.
async fn refusals_are_counted(base: &str) {
    let metrics = scrape(base).await;
    assert_eq!(
        sample(&metrics, "redge_gateway_connections_refused_total", &[]),
        20.0
    );
}

#[tokio::test]
async fn the_binary_with_several_threads_holds_the_same_limits() {
    let redis = Redis::start();
    let (mut child, base) = spawn_binary(&[
        ("REDGE_REDIS_URL", &redis.url()),
        ("REDGE_GATEWAY_TOKENS", TOKEN),
        ("REDGE_GATEWAY_THREADS", "2"),
        ("REDGE_GATEWAY_HEADER_TIMEOUT_MS", "300"),
        ("REDGE_GATEWAY_IDLE_TIMEOUT_MS", "900"),
        ("REDGE_GATEWAY_MAX_CONNECTIONS", "10"),
    ])
    .await;
    let addr = base.trim_start_matches("http://").to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| {
            // The health check's connection may still be open in the binary: let it time out.
            std::thread::sleep(Duration::from_millis(1000));
            timeouts_hold(&addr);
            cap_holds(&addr);
        })
    })
    .await
    .unwrap();
    if outcome.is_ok() {
        refusals_are_counted(&base).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

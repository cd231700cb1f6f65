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

/// With a cap of 10 connections: 10 silent ones are held, 20 more are closed at once, and a valid
/// client is served once the silent ones have gone. The held ones must outlive the refusals however
/// slow the machine is, so this runs with a header timeout of several seconds; the held
/// ones are closed by the client, and their slots are free again once the gateway has seen that.
/// Answers how many connections the gateway refused.
fn cap_holds(addr: &str) -> u32 {
    let held: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..20 {
        let mut refused = TcpStream::connect(addr).unwrap();
        let after = closed_after(&mut refused, Duration::from_millis(250))
            .expect("a connection beyond the cap was closed at once");
        assert!(after < Duration::from_millis(250), "{after:?}");
    }
    drop(held);
    // The gateway frees a slot when it reads the end of a held connection: give it a moment, then a
    // valid client must be served (a refusal here closes at once, so a few tries cost little).
    for refused_again in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let mut valid = TcpStream::connect(addr).unwrap();
        if ping_on(&mut valid) {
            return 20 + refused_again;
        }
    }
    panic!("a valid client was not served after the flood");
}

/// A cap of 10 connections and the given header and idle timeouts.
fn limited(redis: &Redis, header_timeout_ms: u64, idle_timeout_ms: u64) -> Config {
    let mut config = Config::new(&redis.url(), TOKEN);
    config.header_timeout_ms = header_timeout_ms;
    config.idle_timeout_ms = idle_timeout_ms;
    config.max_connections = 10;
    config
}

#[tokio::test]
async fn silent_dribbling_and_idle_connections_are_closed_by_their_timeouts() {
    let redis = Redis::start();
    let gw = gateway_with(limited(&redis, 300, 900)).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || timeouts_hold(&addr))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_connection_flood_past_the_cap_is_refused_at_once_and_a_valid_client_is_served_afterwards()
 {
    let redis = Redis::start();
    let gw = gateway_with(limited(&redis, 5_000, 5_000)).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let refused = tokio::task::spawn_blocking(move || cap_holds(&addr))
        .await
        .unwrap();
    refusals_are_counted(&gw.url, refused).await;
}

/// The connections [`cap_holds`] saw refused are in the metrics.
async fn refusals_are_counted(base: &str, refused: u32) {
    let metrics = scrape(base).await;
    assert_eq!(
        sample(&metrics, "redge_gateway_connections_refused_total", &[]),
        f64::from(refused)
    );
}

/// Runs `check` on a blocking thread against the binary started with `envs` (two threads and a cap
/// of 10 connections), then `after` with its answer if it passed; the binary is stopped either way.
async fn with_binary<T, F, A>(envs: &[(&str, &str)], check: F, after: impl FnOnce(String, T) -> A)
where
    T: Send + 'static,
    F: FnOnce(&str) -> T + Send + std::panic::UnwindSafe + 'static,
    A: std::future::Future<Output = ()>,
{
    let redis = Redis::start();
    let url = redis.url();
    let mut all = vec![
        ("REDGE_REDIS_URL", url.as_str()),
        ("REDGE_GATEWAY_TOKENS", TOKEN),
        ("REDGE_GATEWAY_THREADS", "2"),
        ("REDGE_GATEWAY_MAX_CONNECTIONS", "10"),
    ];
    all.extend_from_slice(envs);
    let (mut child, base) = spawn_binary(&all).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(move || {
            // The health check's connection may still be open in the binary: let it go first.
            std::thread::sleep(Duration::from_millis(1000));
            check(&addr)
        })
    })
    .await
    .unwrap();
    let outcome = match outcome {
        Ok(answer) => {
            after(base, answer).await;
            Ok(())
        }
        Err(panic) => Err(panic),
    };
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn the_binary_with_several_threads_closes_by_the_same_timeouts() {
    with_binary(
        &[
            ("REDGE_GATEWAY_HEADER_TIMEOUT_MS", "300"),
            ("REDGE_GATEWAY_IDLE_TIMEOUT_MS", "900"),
        ],
        timeouts_hold,
        |_, ()| async {},
    )
    .await;
}

#[tokio::test]
async fn the_binary_with_several_threads_holds_the_same_cap() {
    with_binary(
        &[
            ("REDGE_GATEWAY_HEADER_TIMEOUT_MS", "5000"),
            ("REDGE_GATEWAY_IDLE_TIMEOUT_MS", "900"),
        ],
        cap_holds,
        |base, refused| async move { refusals_are_counted(&base, refused).await },
    )
    .await;
}

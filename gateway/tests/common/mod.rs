//! Test harness: a real redis-server on a free port in a temporary directory, and the gateway served
//! in-process on port 0.
#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod cluster;

use futures_util::StreamExt as _;
use redge_gateway::{AppState, Config};

pub const TOKEN: &str = "test-token";

/// A redis-server child process, killed on drop.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir,
        };
        // A port free a moment ago can be taken by another test before redis-server binds it: then try
        // another one, rather than talk to someone else's server.
        for _ in 0..5 {
            if redis.spawn() {
                return redis;
            }
            redis.stop();
            redis.port = free_port();
        }
        panic!("redis-server could not get a port of its own");
    }

    /// Starts redis-server on `self.port`; true once it answers there as itself (its `process_id`).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            // DEBUG SLEEP makes slow commands for the deadline and shutdown tests (loopback only).
            .args(["--enable-debug-command", "local", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: apt-get install redis-server");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let owned = loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break false;
            }
            if server_pid(self.port) == Some(pid) {
                break true;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        self.child = Some(child);
        owned
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port (an empty database: nothing is persisted).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server could not start again on its port"
        );
    }
}

/// The `process_id` of the Redis server answering on `port`, if one does.
fn server_pid(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.windows(11).any(|w| w == b"process_id:") || !reply.ends_with(b"\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    let line = text.lines().find_map(|l| l.strip_prefix("process_id:"))?;
    line.trim().parse().ok()
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The gateway, served on an ephemeral port until dropped.
pub struct Gateway {
    pub url: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub async fn gateway_with(config: Config) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::from_config(&config).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(redge_gateway::serve(listener, state, async {
        let _ = rx.await;
    }));
    Gateway { url, _shutdown: tx }
}

pub async fn gateway(redis: &Redis) -> Gateway {
    gateway_with(Config::new(&redis.url(), TOKEN)).await
}

/// A response: status, body as JSON, and the sync token header.
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    pub sync_token: Option<String>,
}

pub async fn post(
    url: &str,
    token: Option<&str>,
    base64: bool,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if base64 {
        request = request.header("Upstash-Encoding", "base64");
    }
    let response = request.send().await.expect("gateway reachable");
    let status = response.status().as_u16();
    let sync_token = response
        .headers()
        .get("upstash-sync-token")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("body is not JSON: {:?}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        json,
        sync_token,
    }
}

/// Sends one command as JSON with the test token and base64 replies.
pub async fn command(gw: &Gateway, args: serde_json::Value) -> Answer {
    post(&format!("{}/", gw.url), Some(TOKEN), true, args.to_string()).await
}

/// A raw response: status, headers and body bytes.
pub struct Raw {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "body is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends any request with the test token and the given extra headers.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Raw {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(TOKEN)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("gateway reachable");
    Raw {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

/// Posts a batch to `/pipeline` or `/multi-exec` with base64 replies.
pub async fn batch(gw: &Gateway, route: &str, commands: serde_json::Value) -> Answer {
    post(
        &format!("{}/{route}", gw.url),
        Some(TOKEN),
        true,
        commands.to_string(),
    )
    .await
}

/// Base64 of a string, as the gateway encodes values.
pub fn b64(text: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A direct redis-rs connection to the test server, bypassing the gateway.
pub async fn direct(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Subscribers of `channel`, as Redis counts them (`PUBSUB NUMSUB`).
pub async fn numsub(redis: &Redis, channel: &str) -> i64 {
    let mut conn = direct(redis).await;
    let reply: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    reply.1
}

/// Writes `request` as raw bytes on a fresh connection and reads until the server closes it (or two
/// seconds pass): for requests no HTTP client library would send.
pub async fn raw(url: &str, request: Vec<u8>) -> String {
    use std::io::{Read as _, Write as _};
    let addr = url.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("gateway reachable");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // The server may answer and close before it has read everything; that is not a failure here.
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap()
}

/// Starts the gateway binary on a free port with JSON logs on a pipe and the given environment;
/// answers the child and its base URL once `/healthz` answers.
pub async fn spawn_binary(envs: &[(&str, &str)]) -> (Child, String) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_redge-gateway"));
    // Only the variables given here configure it, whatever the environment of the test run holds.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("REDGE_") || name.starts_with("SRH_") {
            command.env_remove(&*name);
        }
    }
    let mut child = command
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .envs(envs.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the gateway did not come up");
}

/// Sends SIGTERM to a gateway started by [`spawn_binary`].
pub fn sigterm(child: &Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// Waits for a stopped gateway to exit successfully and answers everything it logged.
pub fn logs_of(mut child: Child) -> String {
    use std::io::Read as _;
    assert!(child.wait().unwrap().success());
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    logs
}

/// Scrapes `{base}/metrics` (without a token) and parses it with a Prometheus text-format parser.
pub async fn scrape(base: &str) -> prometheus_parse::Scrape {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    parse_metrics(&text)
}

/// Parses an exposition text.
pub fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("a valid Prometheus text exposition")
}

/// The value of the sample `name` whose labels include `labels`; 0 when there is none (series are
/// written once they count something). Panics if more than one sample matches.
pub fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name} is not a single number: {other:?}"),
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied().unwrap_or(0.0)
}

/// An open SSE stream from the gateway (opened with `POST`, as a browser's `fetch` would) and the
/// text read from it so far.
pub struct Events {
    pub stream: futures_util::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    pub text: String,
}

impl Events {
    pub async fn open(url: &str) -> (u16, Option<String>, Events) {
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(TOKEN)
            .header("Accept", "text/event-stream")
            .body("[]")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let events = Events {
            stream: response.bytes_stream().boxed(),
            text: String::new(),
        };
        (status, content_type, events)
    }

    /// Reads until `needle` has arrived (the test's own timeout bounds the wait).
    pub async fn until(&mut self, needle: &str) {
        while !self.text.contains(needle) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", self.text))
                .expect("stream ended")
                .unwrap();
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

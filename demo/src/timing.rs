//! What one request spent on Redis, and the `Server-Timing` header that reports it.
//!
//! Every request gets its own [`Meter`]; the Redis client of that request sends through [`Metered`], a
//! transport wrapper that counts each HTTP round trip and the time until its response arrived. Because
//! the wrapper sits under the client, it sees every round trip of the request: the shared batch, a
//! capability's own follow-up write, a retry, a NOSCRIPT repair.
//!
//! Work a request leaves to run after its response (`ctx.waitUntil`: a stale value's refresh, the
//! metrics flush) runs inside [`background`], which marks every round trip made while it is polled as
//! background: those never count on the critical path, even when one finishes before the response is
//! built. Such work is announced with [`Meter::schedule`] when it is started, with the round trips it
//! will make, so that the response can say so.
//!
//! # The header
//!
//! ```text
//! Server-Timing: redis;dur=3;desc="1 round trip", bg;desc="0 round trips", total;dur=4
//! ```
//!
//! - `redis`: the critical path. `dur` = milliseconds spent waiting for the Redis service's HTTP
//!   responses (summed over round trips), `desc` = `"<n> round trip"` or `"<n> round trips"` (`"0 round
//!   trips"` when the request needed no Redis at all). The count is in `desc` because that is the part
//!   browsers expose through `PerformanceServerTiming`.
//! - `bg`: the round trips this request scheduled to run after its response, in `desc` the same way.
//!   They have not happened yet when the header is written: the count is what was started (a refresh
//!   writes once after its origin answers, and not at all when the origin fails; a metrics flush sends
//!   one batch).
//! - `total`: milliseconds from the request entering the Worker to its response being built.
//! - Handlers may add entries of their own (for example `cache;desc="hit"`) between the two.
//!
//! Durations are whole milliseconds: the Workers clock (`Date.now()`) has millisecond resolution and
//! only advances while the Worker waits on I/O, so CPU time inside the Worker reads as 0 ms.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use redge::client::{HttpRequest, HttpResponse, Transport};

/// Round trips and Redis time of one request.
#[derive(Debug, Default)]
pub struct Meter {
    round_trips: Cell<u64>,
    redis_ms: Cell<u64>,
    failures: Cell<u64>,
    durations_ms: RefCell<Vec<u64>>,
    /// True while one of the request's background tasks is being polled.
    in_background: Cell<bool>,
    background_round_trips: Cell<u64>,
    scheduled: Cell<u64>,
}

impl Meter {
    /// A meter at zero, shared between the transport and the request.
    pub fn new() -> Rc<Meter> {
        Rc::new(Meter::default())
    }

    /// HTTP round trips to the Redis service so far, on the critical path (background work excluded).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }

    /// Milliseconds spent waiting on the Redis service so far.
    pub fn redis_ms(&self) -> u64 {
        self.redis_ms.get()
    }

    /// Round trips that got no HTTP response (transport error or timeout).
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }

    /// The duration of each round trip, in order.
    pub fn durations_ms(&self) -> Vec<u64> {
        self.durations_ms.borrow().clone()
    }

    /// Round trips made so far by this request's background tasks (see [`background`]).
    pub fn background_round_trips(&self) -> u64 {
        self.background_round_trips.get()
    }

    /// Round trips scheduled to run after the response (see [`Meter::schedule`]).
    pub fn scheduled(&self) -> u64 {
        self.scheduled.get()
    }

    /// Announces background work started by this request, and the round trips it will make.
    pub fn schedule(&self, round_trips: u64) {
        self.scheduled.set(self.scheduled.get() + round_trips);
    }

    fn record(&self, ms: u64, failed: bool) {
        if self.in_background.get() {
            self.background_round_trips
                .set(self.background_round_trips.get() + 1);
            return;
        }
        self.round_trips.set(self.round_trips.get() + 1);
        self.redis_ms.set(self.redis_ms.get().saturating_add(ms));
        self.failures.set(self.failures.get() + u64::from(failed));
        self.durations_ms.borrow_mut().push(ms);
    }
}

/// A transport that records every round trip of the transport it wraps into a [`Meter`].
#[derive(Debug)]
pub struct Metered<T> {
    inner: T,
    meter: Rc<Meter>,
}

impl<T: Transport> Metered<T> {
    /// Wraps `inner`, recording into `meter`.
    pub fn new(inner: T, meter: Rc<Meter>) -> Self {
        Metered { inner, meter }
    }
}

impl<T: Transport> Transport for Metered<T> {
    async fn send(&self, request: HttpRequest) -> redge::Result<HttpResponse> {
        let started = self.inner.now_ms();
        let result = self.inner.send(request).await;
        let ms = self.inner.now_ms().saturating_sub(started);
        self.meter.record(ms, result.is_err());
        result
    }

    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    async fn sleep(&self, ms: u32) {
        self.inner.sleep(ms).await;
    }
}

/// Runs `task` as background work of the request `meter` belongs to: every round trip recorded while
/// the task is polled counts as background (the Workers runtime is single-threaded, so nothing else
/// runs during a poll).
pub fn background<F: Future<Output = ()>>(meter: Rc<Meter>, task: F) -> impl Future<Output = ()> {
    let mut task = Box::pin(task);
    std::future::poll_fn(move |cx| {
        let outer = meter.in_background.replace(true);
        let poll = task.as_mut().poll(cx);
        meter.in_background.set(outer);
        poll
    })
}

/// One extra `Server-Timing` entry added by a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// A token (letters, digits, `-`, `_`, `.`); other characters are replaced by `-`.
    pub name: String,
    /// Milliseconds, if the entry measures time.
    pub dur_ms: Option<u64>,
    /// A short description; quotes and backslashes are escaped.
    pub desc: Option<String>,
}

fn count(round_trips: u64) -> String {
    let plural = if round_trips == 1 { "" } else { "s" };
    format!("\"{round_trips} round trip{plural}\"")
}

/// The `Server-Timing` header value (see the [module docs](self)): `round_trips` and `redis_ms` on the
/// critical path, `background` round trips scheduled after the response.
pub fn server_timing(
    round_trips: u64,
    redis_ms: u64,
    background: u64,
    extra: &[Entry],
    total_ms: u64,
) -> String {
    let mut parts = vec![
        format!("redis;dur={redis_ms};desc={}", count(round_trips)),
        format!("bg;desc={}", count(background)),
    ];
    for entry in extra {
        let mut part = token(&entry.name);
        if let Some(dur) = entry.dur_ms {
            part.push_str(&format!(";dur={dur}"));
        }
        if let Some(desc) = &entry.desc {
            part.push_str(&format!(";desc={}", quoted(desc)));
        }
        parts.push(part);
    }
    parts.push(format!("total;dur={total_ms}"));
    parts.join(", ")
}

fn token(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "app".into()
    } else {
        cleaned
    }
}

/// A quoted-string: printable ASCII only (header values must be), `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars().take(100) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use redge::Error;
    use redge::client::{Client, cmd};

    /// Answers PING after 7 ms of fake time; fails when the body mentions FAIL.
    struct Fake {
        now: Cell<u64>,
    }

    impl Transport for Fake {
        async fn send(&self, request: HttpRequest) -> redge::Result<HttpResponse> {
            self.now.set(self.now.get() + 7);
            if String::from_utf8_lossy(&request.body).contains("FAIL") {
                return Err(Error::Transport("refused".into()));
            }
            let body = if request.url.ends_with("/pipeline") {
                br#"[{"result":"UE9ORw=="},{"result":"UE9ORw=="}]"#.to_vec()
            } else {
                br#"{"result":"UE9ORw=="}"#.to_vec()
            };
            Ok(HttpResponse {
                status: 200,
                sync_token: None,
                body,
            })
        }

        fn now_ms(&self) -> u64 {
            self.now.get()
        }
    }

    /// A client over the fake transport, metered into `meter`.
    fn metered_client(meter: &Rc<Meter>) -> Client<Metered<Fake>> {
        let fake = Fake {
            now: Cell::new(1_000),
        };
        Client::with_transport(
            "https://r.example",
            "t",
            Metered::new(fake, Rc::clone(meter)),
        )
        .unwrap()
    }

    #[test]
    fn the_meter_sees_every_round_trip_of_the_client() {
        let meter = Meter::new();
        let client = metered_client(&meter);
        pollster::block_on(async {
            let batch = client.batch();
            let a = batch.add::<String>(cmd("PING"));
            let b = batch.add::<String>(cmd("PING"));
            batch.send().await.unwrap();
            assert_eq!(
                (a.take().unwrap(), b.take().unwrap()),
                ("PONG".into(), "PONG".into())
            );
            let _: String = client.query(&cmd("PING")).await.unwrap();
            assert!(
                client
                    .query::<String>(&cmd("SET").arg("FAIL").arg("x"))
                    .await
                    .is_err()
            );
        });
        assert_eq!(meter.round_trips(), 3);
        assert_eq!(meter.redis_ms(), 21);
        assert_eq!(meter.failures(), 1);
        assert_eq!(meter.durations_ms(), [7, 7, 7]);
        assert_eq!(meter.round_trips(), client.stats().round_trips);
    }

    #[test]
    fn background_round_trips_are_kept_off_the_critical_path() {
        let meter = Meter::new();
        let client = Rc::new(metered_client(&meter));
        pollster::block_on(async {
            let _: String = client.query(&cmd("PING")).await.unwrap();
            meter.schedule(2);
            let task_client = Rc::clone(&client);
            background(Rc::clone(&meter), async move {
                let _: String = task_client.query(&cmd("PING")).await.unwrap();
                let _: String = task_client.query(&cmd("PING")).await.unwrap();
            })
            .await;
            // Back on the request's own path.
            let _: String = client.query(&cmd("PING")).await.unwrap();
        });
        assert_eq!(meter.round_trips(), 2);
        assert_eq!(meter.redis_ms(), 14);
        assert_eq!(meter.background_round_trips(), 2);
        assert_eq!(meter.scheduled(), 2);
    }

    #[test]
    fn the_header_reports_round_trips_and_times() {
        assert_eq!(
            server_timing(1, 3, 0, &[], 4),
            "redis;dur=3;desc=\"1 round trip\", bg;desc=\"0 round trips\", total;dur=4"
        );
        assert_eq!(
            server_timing(0, 0, 1, &[], 0),
            "redis;dur=0;desc=\"0 round trips\", bg;desc=\"1 round trip\", total;dur=0"
        );
        let extra = [
            Entry {
                name: "cache".into(),
                dur_ms: None,
                desc: Some("hit \"fresh\" \\ é".into()),
            },
            Entry {
                name: "origin fetch".into(),
                dur_ms: Some(250),
                desc: None,
            },
        ];
        assert_eq!(
            server_timing(2, 9, 0, &extra, 260),
            "redis;dur=9;desc=\"2 round trips\", bg;desc=\"0 round trips\", cache;desc=\"hit \\\"fresh\\\" \\\\ ?\", origin-fetch;dur=250, total;dur=260"
        );
    }
}

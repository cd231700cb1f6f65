//! `/subscribe/<channel>` and `/psubscribe/<pattern>`: Server-Sent Events from Redis pub/sub.
//!
//! Each stream owns a pub/sub connection of its own. The stream ends, and its connection is closed, when
//! the client goes away (noticed at the latest by the next heartbeat write), when Redis drops the
//! connection (the client reconnects), or when the gateway shuts down.
//!
//! A task per stream ([`forward`]) takes every message from the pub/sub connection as it arrives and
//! queues its event for the response body. The Redis client library queues messages without limit,
//! so a client that stops reading would otherwise make the gateway hold every message published
//! meanwhile; here the queue holds at most `--stream-buffer-bytes` (or one event larger than that),
//! and past it the stream ends: the pub/sub connection is dropped, the client's connection is closed
//! (the response body is not even polled while the client does not read, so only closing the
//! connection ends it), and the queued events are freed.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use redis::Msg;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};

use super::command::rejected;
use super::path::percent_decode;
use crate::connection::{Activity, Conn};
use crate::error::GatewayError;
use crate::observe::{Logged, tag};
use crate::state::AppState;

/// `/subscribe/<channel>`.
pub async fn channel(State(state): State<AppState>, request: Request) -> Response {
    open(state, request, false).await
}

/// `/psubscribe/<pattern>`.
pub async fn pattern(State(state): State<AppState>, request: Request) -> Response {
    open(state, request, true).await
}

async fn open(state: AppState, request: Request, by_pattern: bool) -> Response {
    let route = if by_pattern {
        "psubscribe"
    } else {
        "subscribe"
    };
    // The client's connection, to close it when the client does not keep up (absent in tests that
    // call the router directly).
    let conn = request
        .extensions()
        .get::<ConnectInfo<Conn>>()
        .map(|ConnectInfo(Conn(activity))| Arc::clone(activity));
    match start(&state, request.uri(), by_pattern, conn).await {
        Ok(feed) => {
            let body = Body::from_stream(futures_util::stream::unfold(feed, next_event));
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Tells buffering proxies (nginx) to pass events on at once.
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            let logged = Logged {
                route,
                command: if by_pattern {
                    "PSUBSCRIBE"
                } else {
                    "SUBSCRIBE"
                },
                commands: 1,
            };
            tag(response, logged)
        }
        Err(e) => rejected(e, route),
    }
}

/// The state of one open stream, owned by its response body.
struct Feed {
    first: Option<Bytes>,
    events: mpsc::UnboundedReceiver<Bytes>,
    queue: Arc<Queue>,
    heartbeat: Interval,
    shutdown: watch::Receiver<bool>,
}

/// The bytes of events queued for one stream, also counted in the gateway-wide total.
struct Queue {
    bytes: AtomicUsize,
    total: Arc<AtomicUsize>,
    limit: usize,
}

impl Queue {
    /// Counts an event of `len` bytes in; `false` (and nothing counted) when it would take the queue
    /// past its limit. An event larger than the limit is let into an empty queue, so that every event
    /// can be delivered to a client that keeps up.
    fn push(&self, len: usize) -> bool {
        let queued = self.bytes.load(Ordering::Acquire);
        if queued > 0 && queued + len > self.limit {
            return false;
        }
        self.bytes.fetch_add(len, Ordering::AcqRel);
        self.total.fetch_add(len, Ordering::Relaxed);
        true
    }

    /// Counts an event of `len` bytes out.
    fn take(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::AcqRel);
        self.total.fetch_sub(len, Ordering::Relaxed);
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // The events still queued are freed with the channel.
        self.total
            .fetch_sub(*self.bytes.get_mut(), Ordering::Relaxed);
    }
}

async fn start(
    state: &AppState,
    uri: &Uri,
    by_pattern: bool,
    conn: Option<Arc<Activity>>,
) -> Result<Feed, GatewayError> {
    let prefix = if by_pattern {
        "/psubscribe/"
    } else {
        "/subscribe/"
    };
    let name = percent_decode(
        uri.path()
            .strip_prefix(prefix)
            .unwrap_or_default()
            .as_bytes(),
    );
    if name.is_empty() {
        return Err(GatewayError::NotFound);
    }
    let permit = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| GatewayError::Busy("streams"))?;
    let mut pubsub = state.backend.pubsub().await?;
    let subscribed = if by_pattern {
        pubsub.psubscribe(&name).await
    } else {
        pubsub.subscribe(&name).await
    };
    subscribed.map_err(|e| GatewayError::from_redis(&e))?;
    let kind = if by_pattern {
        "psubscribe"
    } else {
        "subscribe"
    };
    // One subscription per connection, so Redis's count is always 1.
    let first = event(&[kind.as_bytes(), &name, b"1"]);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + state.heartbeat,
        state.heartbeat,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let queue = Arc::new(Queue {
        bytes: AtomicUsize::new(0),
        total: Arc::clone(&state.stream_bytes),
        limit: state.stream_buffer_bytes,
    });
    let (sender, events) = mpsc::unbounded_channel();
    tokio::spawn(forward(
        pubsub.into_on_message(),
        sender,
        Arc::clone(&queue),
        conn,
        permit,
    ));
    Ok(Feed {
        first: Some(first),
        events,
        queue,
        heartbeat,
        shutdown: state.shutdown.subscribe(),
    })
}

/// Moves messages from the pub/sub connection to the stream's queue as they arrive, until the client
/// goes away (the body, and with it the receiver, is dropped), Redis drops the connection, or the
/// client falls `--stream-buffer-bytes` behind: then its connection is closed. Holds the stream's
/// slot (`--max-streams`) and its pub/sub connection until it returns.
async fn forward(
    mut messages: redis::aio::PubSubStream,
    events: mpsc::UnboundedSender<Bytes>,
    queue: Arc<Queue>,
    conn: Option<Arc<Activity>>,
    _permit: OwnedSemaphorePermit,
) {
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = events.closed() => None,
        };
        let Some(message) = message else {
            return;
        };
        let event = message_event(&message);
        let len = event.len();
        if !queue.push(len) {
            tracing::warn!(
                limit = queue.limit,
                "closing an SSE stream whose client does not read its events"
            );
            if let Some(conn) = conn {
                conn.abort();
            }
            return;
        }
        if events.send(event).is_err() {
            queue.take(len);
            return;
        }
    }
}

async fn next_event(mut feed: Feed) -> Option<(Result<Bytes, Infallible>, Feed)> {
    if let Some(first) = feed.first.take() {
        return Some((Ok(first), feed));
    }
    let chunk = tokio::select! {
        event = feed.events.recv() => {
            let event = event?;
            feed.queue.take(event.len());
            event
        }
        _ = feed.heartbeat.tick() => Bytes::from_static(b": keepalive\n\n"),
        _ = feed.shutdown.wait_for(|down| *down) => return None,
    };
    Some((Ok(chunk), feed))
}

fn message_event(message: &Msg) -> Bytes {
    let channel = message.get_channel::<Vec<u8>>().unwrap_or_default();
    let payload = message.get_payload_bytes();
    match message.get_pattern::<Option<Vec<u8>>>().ok().flatten() {
        Some(pattern) => event(&[b"pmessage", &pattern, &channel, payload]),
        None => event(&[b"message", &channel, payload]),
    }
}

/// `data: a,b,c` and a blank line. Bytes that are not UTF-8 become U+FFFD (SSE is text); a line break
/// inside a field continues on a new `data:` line, which an SSE client joins back with `\n`.
fn event(fields: &[&[u8]]) -> Bytes {
    let joined = fields.join(&b","[..]);
    let text = String::from_utf8_lossy(&joined);
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_its_limit_or_one_larger_event_and_gives_its_bytes_back() {
        let total = Arc::new(AtomicUsize::new(0));
        let queue = Queue {
            bytes: AtomicUsize::new(0),
            total: Arc::clone(&total),
            limit: 100,
        };
        assert!(queue.push(60) && queue.push(40));
        assert!(!queue.push(1), "full");
        queue.take(60);
        assert!(queue.push(50) && !queue.push(20));
        assert_eq!(total.load(Ordering::Relaxed), 90);
        queue.take(40);
        queue.take(50);
        assert!(queue.push(500), "one large event into an empty queue");
        assert!(!queue.push(1));
        drop(queue);
        assert_eq!(
            total.load(Ordering::Relaxed),
            0,
            "dropped events are counted out"
        );
    }

    #[test]
    fn events_are_sse_lines() {
        assert_eq!(
            event(&[b"message", b"ch", b"hi"]),
            "data: message,ch,hi\n\n"
        );
        assert_eq!(
            event(&[b"message", b"ch", b"a\nb"]),
            "data: message,ch,a\ndata: b\n\n"
        );
    }
}

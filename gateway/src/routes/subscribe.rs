//! `/subscribe/<channel>` and `/psubscribe/<pattern>`: Server-Sent Events from Redis pub/sub.
//!
//! Each stream owns a pub/sub connection of its own. The stream ends, and its connection is closed, when
//! the client goes away (noticed at the latest by the next heartbeat write), when Redis drops the
//! connection (the client reconnects), or when the gateway shuts down.

use std::convert::Infallible;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use redis::Msg;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Interval, MissedTickBehavior};

use super::command::rejected;
use super::path::percent_decode;
use crate::error::GatewayError;
use crate::observe::{Logged, tag};
use crate::policy::Access;
use crate::state::AppState;

/// `/subscribe/<channel>`.
pub async fn channel(
    State(state): State<AppState>,
    Extension(_access): Extension<Access>,
    uri: Uri,
) -> Response {
    open(state, uri, false).await
}

/// `/psubscribe/<pattern>`.
pub async fn pattern(
    State(state): State<AppState>,
    Extension(_access): Extension<Access>,
    uri: Uri,
) -> Response {
    open(state, uri, true).await
}

async fn open(state: AppState, uri: Uri, by_pattern: bool) -> Response {
    let route = if by_pattern {
        "psubscribe"
    } else {
        "subscribe"
    };
    match start(&state, &uri, by_pattern).await {
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

/// The state of one open stream.
struct Feed {
    first: Option<Bytes>,
    messages: redis::aio::PubSubStream,
    heartbeat: Interval,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

async fn start(state: &AppState, uri: &Uri, by_pattern: bool) -> Result<Feed, GatewayError> {
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
    Ok(Feed {
        first: Some(first),
        messages: pubsub.into_on_message(),
        heartbeat,
        shutdown: state.shutdown.subscribe(),
        _permit: permit,
    })
}

async fn next_event(mut feed: Feed) -> Option<(Result<Bytes, Infallible>, Feed)> {
    if let Some(first) = feed.first.take() {
        return Some((Ok(first), feed));
    }
    let chunk = tokio::select! {
        message = feed.messages.next() => message_event(&message?),
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

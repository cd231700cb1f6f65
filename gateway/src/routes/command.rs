//! `POST /`: one command.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use redge::client::protocol;

use crate::error::GatewayError;
use crate::reply::from_redis;
use crate::request::{check_allowed, parse_command};
use crate::state::AppState;

pub async fn single(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let bytes = read_body(body, state.max_body_bytes).await?;
    let args = parse_command(&bytes)?;
    check_allowed(&args, &state.refused)?;
    let value = run(&state, &args).await?;
    let reply = from_redis(value);
    tracing::debug!(command = %String::from_utf8_lossy(&args[0]), "ok");
    Ok(json(protocol::result_body(&reply, wants_base64(&headers))))
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, GatewayError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            GatewayError::TooLarge
        } else {
            GatewayError::BadRequest(format!("could not read the body: {e}"))
        }
    })
}

/// Runs one command on the shared connection, within the deadline.
pub async fn run(state: &AppState, args: &[Vec<u8>]) -> Result<redis::Value, GatewayError> {
    let mut command = redis::Cmd::new();
    for arg in args {
        command.arg(arg.as_slice());
    }
    let mut conn = state.redis.clone();
    match tokio::time::timeout(state.deadline, command.query_async(&mut conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(GatewayError::from_redis(&e)),
        Err(_) => Err(GatewayError::Unavailable(format!(
            "no answer within {} ms",
            state.deadline.as_millis()
        ))),
    }
}

/// `Upstash-Encoding: base64` asks for every string of the reply in base64.
pub fn wants_base64(headers: &HeaderMap) -> bool {
    headers
        .get("upstash-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"base64"))
}

pub fn json(body: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

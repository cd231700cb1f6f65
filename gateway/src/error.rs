//! Errors that end a request, each with its status and the `{"error": ...}` body the protocol asks for.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Missing or wrong token.
    #[error("Unauthorized")]
    Unauthorized,
    /// The request is malformed: bad JSON, wrong shape, bad argument, bad header combination.
    #[error("ERR {0}")]
    BadRequest(String),
    /// The command is not allowed over HTTP.
    #[error("ERR {0} is not supported over the HTTP protocol")]
    Refused(String),
    /// A read-only token asked for a command that may write; holds the lower-case command name.
    #[error("NOPERM this token is read-only and has no permissions to run the '{0}' command")]
    NoPerm(String),
    /// The body is larger than the configured limit.
    #[error("ERR max request size exceeded")]
    TooLarge,
    /// The body did not arrive in time (milliseconds allowed).
    #[error("ERR the request body did not arrive within {0} ms")]
    BodyTimeout(u128),
    /// No such route.
    #[error("ERR no such route")]
    NotFound,
    /// In cluster mode, a script or transaction whose keys hash to different slots; the text names
    /// two of them and how to fix it.
    #[error("CROSSSLOT {0}")]
    CrossSlot(String),
    /// Redis answered with an error reply; the text is Redis's, verbatim.
    #[error("{0}")]
    Redis(String),
    /// Redis could not be reached or did not answer in time.
    #[error("ERR Redis is unavailable: {0}")]
    Unavailable(String),
    /// Every request slot (or stream slot) is taken; the client should retry later.
    #[error("ERR the gateway is busy: too many {0} in flight, retry later")]
    Busy(&'static str),
}

impl GatewayError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::BadRequest(_)
            | GatewayError::Refused(_)
            | GatewayError::NoPerm(_)
            | GatewayError::CrossSlot(_)
            | GatewayError::Redis(_) => StatusCode::BAD_REQUEST,
            GatewayError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::Unavailable(_) | GatewayError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Maps a client-library error: Redis's own error replies keep their text verbatim
    /// (`CODE message`); everything else means Redis is unavailable.
    pub fn from_redis(e: &redis::RedisError) -> Self {
        match (e.code(), e.detail()) {
            (Some(code), Some(detail)) if !e.is_io_error() && !e.is_timeout() => {
                GatewayError::Redis(format!("{code} {detail}"))
            }
            (Some(code), None) if !e.is_io_error() && !e.is_timeout() => {
                GatewayError::Redis(code.to_owned())
            }
            _ => GatewayError::Unavailable(e.to_string()),
        }
    }

    /// A deadline passed without an answer from Redis.
    pub fn timeout(deadline: std::time::Duration) -> Self {
        GatewayError::Unavailable(format!("no answer within {} ms", deadline.as_millis()))
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = redge::client::protocol::error_body(&self.to_string());
        (
            self.status(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

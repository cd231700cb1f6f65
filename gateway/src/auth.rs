//! Bearer-token authentication, checked before the body is read.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::GatewayError;
use crate::state::AppState;

/// The token from `Authorization: Bearer <token>` or the `_token` query parameter.
fn presented(request: &Request) -> Option<&[u8]> {
    if let Some(value) = request.headers().get(AUTHORIZATION) {
        let value = value.as_bytes();
        return value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "));
    }
    request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("_token="))
            .map(str::as_bytes)
    })
}

/// Compares against every configured token in constant time (per token length).
fn accepted(state: &AppState, token: &[u8]) -> bool {
    state
        .tokens
        .iter()
        .fold(false, |ok, t| ok | bool::from(t.as_slice().ct_eq(token)))
}

/// Middleware: 401 unless the request carries a configured token.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match presented(&request) {
        Some(token) if accepted(&state, token) => next.run(request).await,
        _ => GatewayError::Unauthorized.into_response(),
    }
}

//! Bearer-token authentication, checked before the body is read, and the concurrency limit.

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::GatewayError;
use crate::policy::Access;
use crate::routes::path::percent_decode;
use crate::state::AppState;

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive and followed
/// by one or more spaces (RFC 9110, section 11), so `BEARER x` and `Bearer  x` are accepted as clients
/// send them.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(b"Bearer".len())?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") || !rest.starts_with(b" ") {
        return None;
    }
    Some(rest.trim_ascii_start())
}

/// The token from `Authorization: Bearer <token>` or the `_token` query parameter.
fn presented(request: &Request) -> Option<Cow<'_, [u8]>> {
    if let Some(value) = request.headers().get(AUTHORIZATION) {
        return bearer(value.as_bytes()).map(Cow::Borrowed);
    }
    request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("_token="))
            .map(|t| Cow::Owned(percent_decode(t.as_bytes())))
    })
}

/// Whether `token` is one of `tokens`, comparing each in constant time (per token length) and never
/// stopping early.
fn matches(tokens: &[Vec<u8>], token: &[u8]) -> bool {
    tokens
        .iter()
        .fold(false, |ok, t| ok | bool::from(t.as_slice().ct_eq(token)))
}

/// Whether the request presents `token` (as a bearer token or `_token`), compared in constant time.
pub fn presents(request: &Request, token: &[u8]) -> bool {
    presented(request).is_some_and(|t| bool::from(t.as_ref().ct_eq(token)))
}

/// The access the request's token grants, if any.
fn access(state: &AppState, request: &Request) -> Option<Access> {
    presented(request).and_then(|token| {
        let full = matches(&state.tokens, &token);
        let read_only = matches(&state.read_only_tokens, &token);
        match (full, read_only) {
            (true, _) => Some(Access::Full),
            (false, true) => Some(Access::ReadOnly),
            (false, false) => None,
        }
    })
}

/// Middleware for streams: 401 unless the request carries a configured token; records the token's
/// [`Access`] in the request's extensions for the handlers.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match access(&state, &request) {
        Some(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        None => GatewayError::Unauthorized.into_response(),
    }
}

/// Middleware for commands: the token as in [`require_token`], then at most `--max-concurrency`
/// requests at once; the next one gets 503 at once, so a slow Redis cannot pile up an unbounded queue
/// of requests inside the gateway. (One middleware rather than two: each layer costs an allocation
/// per request.)
pub async fn admit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(access) = access(&state, &request) else {
        return GatewayError::Unauthorized.into_response();
    };
    match state.requests.clone().try_acquire_owned() {
        Ok(_permit) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(_) => GatewayError::Busy("requests").into_response(),
    }
}

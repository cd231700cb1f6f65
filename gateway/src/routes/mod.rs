//! Route handlers.

pub mod command;
pub mod health;
pub mod metrics;
pub mod multi_exec;
pub mod path;
pub mod pipeline;
pub mod subscribe;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::GatewayError;

/// 404 for any route the protocol does not have.
pub async fn not_found() -> Response {
    GatewayError::NotFound.into_response()
}

/// 405 with an `Allow` header and a JSON body.
pub fn method_not_allowed(allow: &'static str) -> Response {
    let body = redge::client::protocol::error_body(&format!(
        "ERR method not allowed on this route; allowed: {allow}"
    ));
    let mut response = crate::format::json(StatusCode::METHOD_NOT_ALLOWED, body);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

//! Route handlers.

pub mod command;
pub mod health;

use axum::response::{IntoResponse, Response};

use crate::error::GatewayError;

/// 404 for any route the protocol does not have.
pub async fn not_found() -> Response {
    let mut response = GatewayError::BadRequest("no such route".into()).into_response();
    *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
    response
}

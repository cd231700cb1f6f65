//! `GET /metrics`: the counters of `metrics.rs` in the Prometheus text format.
//!
//! Open unless `--metrics-token` is set; then only `Authorization: Bearer <that token>` (compared in
//! constant time). The gateway's own tokens do not open it, and the metrics token opens nothing
//! else: a scraper's credentials then grant no access to Redis.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::presents;
use crate::error::GatewayError;
use crate::observe::{Logged, tag};
use crate::state::AppState;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let logged = Logged {
        route: "metrics",
        command: "-",
        commands: 0,
    };
    if let Some(token) = &state.metrics_token
        && !presents(&request, token)
    {
        return tag(GatewayError::Unauthorized.into_response(), logged);
    }
    let mut response = (StatusCode::OK, state.render_metrics()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    tag(response, logged)
}

//! `GET /healthz`: liveness and Redis reachability, without auth and without secrets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::format::json;
use crate::observe::{Logged, tag};
use crate::state::AppState;

pub async fn healthz(State(state): State<AppState>) -> Response {
    let up = state.backend.healthy().await;
    let (status, body) = if up {
        (StatusCode::OK, r#"{"status":"ok","redis":"up"}"#)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"degraded","redis":"down"}"#,
        )
    };
    let logged = Logged {
        route: "healthz",
        command: "PING",
        commands: 1,
    };
    tag(json(status, body.as_bytes().to_vec()), logged)
}

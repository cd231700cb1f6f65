//! `GET /healthz`: liveness and Redis reachability, without auth and without secrets.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut conn = state.redis.clone();
    let ping = tokio::time::timeout(
        state.deadline,
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    match ping {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "redis": "up" })),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "degraded", "redis": "down" })),
        ),
    }
}

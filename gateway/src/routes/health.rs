//! Probes for orchestrators, without auth and without secrets.
//!
//! - `/livez`: the process is up and serving HTTP. It never asks Redis, so a liveness probe on it does
//!   not restart the gateway while Redis is down (a restart would not bring Redis back; the gateway
//!   reconnects by itself once Redis returns).
//! - `/readyz`: requests can be served: Redis answers `PING` within [`READY_TIMEOUT`] (on a Redis
//!   Cluster: a node reports `cluster_state:ok` and every master answers), and shutdown has not begun
//!   (so a load balancer stops sending requests while the gateway drains). 503 with the reason
//!   otherwise.
//! - `/healthz`: the same Redis check as `/readyz` within the call deadline (`--deadline-ms`), with the
//!   body it has always had (`{"status":"ok","redis":"up"}`); kept for monitors written against it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::format::json;
use crate::observe::{Logged, tag};
use crate::state::AppState;

/// How long `/readyz` waits for `PING`: below the one-second default timeout of Kubernetes probes, and
/// ample for a Redis on the same network (or the call deadline, if that is shorter).
pub const READY_TIMEOUT: Duration = Duration::from_millis(500);

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

pub async fn livez() -> Response {
    let logged = Logged {
        route: "livez",
        command: "-",
        commands: 0,
    };
    tag(json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()), logged)
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let reason = if state.shutting_down() {
        Some("shutting down".to_owned())
    } else {
        let timeout = READY_TIMEOUT.min(state.backend.deadline());
        state
            .backend
            .ping(timeout)
            .await
            .err()
            .map(|e| format!("redis: {e}"))
    };
    let (status, body) = match reason {
        None => (StatusCode::OK, serde_json::json!({"status": "ready"})),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unready", "reason": reason}),
        ),
    };
    let logged = Logged {
        route: "readyz",
        command: "PING",
        commands: 1,
    };
    tag(json(status, body.to_string().into_bytes()), logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readyz_is_unready_once_shutdown_begins_without_asking_redis() {
        // Nothing listens on port 1: asking Redis would fail with a different reason.
        let config = crate::Config::new("redis://127.0.0.1:1", "t");
        let state = AppState::from_config(&config).unwrap();
        state.begin_shutdown();
        let response = readyz(State(state)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"status": "unready", "reason": "shutting down"})
        );
    }
}

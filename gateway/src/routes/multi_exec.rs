//! `POST /multi-exec`: `MULTI`, the commands, `EXEC`, on a connection no other request uses meanwhile.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::command::rejected;
use super::pipeline::{entries, prepare};
use crate::error::GatewayError;
use crate::exclusive::Transaction;
use crate::observe::{Logged, tag};
use crate::policy::Access;
use crate::state::AppState;

/// Committed: 200 with one entry per command (runtime errors are per-entry). Discarded because a command
/// was refused while queueing: 400 with Redis's single `EXECABORT` error.
pub async fn multi_exec(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let batch = match prepare(&state, access, &headers, body).await {
        Ok(batch) => batch,
        Err(e) => return rejected(e, "multi-exec"),
    };
    let logged = Logged {
        route: "multi-exec",
        command: "batch",
        commands: batch.commands.len(),
    };
    let response = match state.backend.transaction(&batch.commands).await {
        Ok(Transaction::Committed(values)) => batch.format.batch(entries(values, &batch.fixups)),
        Ok(Transaction::Discarded(text)) => batch.format.single(Err(GatewayError::Redis(text))),
        Err(e) => batch.format.single(Err(e)),
    };
    tag(response, logged)
}

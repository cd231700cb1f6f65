//! One log line per request: route kind, command name, status, latency. Never a token, a key, a value,
//! or the path of the path form (which holds all three). The same route kind, status and latency are
//! counted for `/metrics` (`metrics.rs`).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// What a handler tells the log about its request; put in the response's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Logged {
    /// `command`, `path`, `pipeline`, `multi-exec`, `subscribe`, `psubscribe`, `healthz`, `livez`,
    /// `readyz`, `metrics` (the route kinds of [`crate::metrics::ROUTES`]).
    pub route: &'static str,
    /// The command name if a table knows it (see [`crate::commands::loggable`]), or `batch` for batches.
    pub command: &'static str,
    /// Commands in a batch, 1 otherwise.
    pub commands: usize,
}

/// Adds `logged` to a response.
pub fn tag(mut response: Response, logged: Logged) -> Response {
    response.extensions_mut().insert(logged);
    response
}

/// Middleware around every request: marks its connection busy until the response is sent
/// ([`crate::connection::track`]), adds a fresh `upstash-sync-token` to the response, and logs and
/// counts the request once it is answered.
pub async fn frame(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let busy = crate::connection::track(&request);
    let started = Instant::now();
    let method = request.method().clone();
    let mut response = next.run(request).await;
    state.add_sync_token(&mut response);
    let logged = response
        .extensions()
        .get::<Logged>()
        .copied()
        .unwrap_or(Logged {
            route: "-",
            command: "-",
            commands: 0,
        });
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    state.metrics.request(logged.route, status, latency_us);
    if status >= 500 {
        tracing::warn!(%method, route = logged.route, command = logged.command, commands = logged.commands, status, latency_us, "request");
    } else {
        tracing::info!(%method, route = logged.route, command = logged.command, commands = logged.commands, status, latency_us, "request");
    }
    match busy {
        Some(busy) => busy.until_sent(response),
        None => response,
    }
}

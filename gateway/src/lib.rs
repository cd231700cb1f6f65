//! `redge-gateway` as a library: [`app`] builds the router, [`serve`] runs it on a listener until a
//! shutdown future completes, so tests bind port 0 and stop the server when they are done.

mod auth;
mod config;
mod error;
mod reply;
mod request;
mod routes;
mod state;

use std::future::Future;

use axum::Router;
use axum::routing::{get, post};

pub use config::{Config, LogFormat};
pub use error::GatewayError;
pub use state::AppState;

/// The router: `POST /` runs one command; `GET /healthz` reports liveness without auth.
pub fn app(state: AppState) -> Router {
    let authed = Router::new()
        .route("/", post(routes::command::single))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(authed)
        .route("/healthz", get(routes::health::healthz))
        .fallback(routes::not_found)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            state::add_sync_token,
        ))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes; requests in flight are finished first.
///
/// # Errors
/// An I/O error of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "redge-gateway listening");
    }
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

//! `redge-gateway` as a library: [`app`] builds the router, [`serve`] runs it on a listener until a
//! shutdown future completes, so tests bind port 0 and stop the server when they are done.

mod auth;
mod backend;
mod commands;
mod config;
mod error;
mod format;
mod observe;
mod policy;
mod reply;
mod request;
mod routes;
mod scripts;
mod state;
#[cfg(test)]
mod wire_tests;

use std::future::Future;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodFilter, get, on, post};
use axum::serve::ListenerExt as _;

pub use config::{Config, LogFormat};
pub use error::GatewayError;
pub use state::AppState;

use routes::method_not_allowed;

/// The router.
///
/// | Route | Methods |
/// |---|---|
/// | `/` | POST: one JSON command |
/// | `/pipeline`, `/multi-exec` | POST: a JSON array of commands |
/// | `/subscribe/<channel>`, `/psubscribe/<pattern>` | GET, POST: an SSE stream |
/// | `/healthz` | GET, HEAD: liveness, no auth |
/// | `/<cmd>/<arg>...` | GET, HEAD, POST, PUT: the path form |
///
/// Any other method gets 405 with `Allow`. Every response carries a fresh `upstash-sync-token`.
pub fn app(state: AppState) -> Router {
    let path_methods = MethodFilter::GET
        .or(MethodFilter::HEAD)
        .or(MethodFilter::POST)
        .or(MethodFilter::PUT);
    let commands = Router::new()
        .route(
            "/",
            post(routes::command::single).fallback(|| async { method_not_allowed("POST") }),
        )
        .route(
            "/pipeline",
            post(routes::pipeline::pipeline).fallback(|| async { method_not_allowed("POST") }),
        )
        .route(
            "/multi-exec",
            post(routes::multi_exec::multi_exec).fallback(|| async { method_not_allowed("POST") }),
        )
        .route(
            "/{*path}",
            on(path_methods, routes::path::path_form)
                .fallback(|| async { method_not_allowed("GET, HEAD, POST, PUT") }),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::admit));
    let streams = Router::new()
        .route(
            "/subscribe/{*channel}",
            get(routes::subscribe::channel)
                .post(routes::subscribe::channel)
                .fallback(|| async { method_not_allowed("GET, POST") }),
        )
        .route(
            "/psubscribe/{*pattern}",
            get(routes::subscribe::pattern)
                .post(routes::subscribe::pattern)
                .fallback(|| async { method_not_allowed("GET, POST") }),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .merge(commands)
        .merge(streams)
        .route(
            "/healthz",
            get(routes::health::healthz).fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
        .fallback(routes::not_found)
        .layer(from_fn_with_state(state.clone(), observe::frame))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes. Then SSE streams end, new connections are
/// refused, and requests in flight are finished before this returns.
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
    let draining = state.clone();
    let shutdown = async move {
        shutdown.await;
        draining.begin_shutdown();
    };
    // Replies are written whole; Nagle's algorithm would only delay them.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
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

//! `redge-gateway` as a library: [`app`] builds the router, [`serve`] runs it on a listener until a
//! shutdown future completes, so tests bind port 0 and stop the server when they are done. [`run`] is
//! what the binary does: [`serve`] on one single-threaded runtime per thread, fed by one acceptor.

mod auth;
mod backend;
mod cluster;
mod commands;
mod config;
mod connection;
mod error;
mod exclusive;
mod format;
mod metrics;
mod observe;
mod policy;
mod reply;
mod request;
mod routes;
mod scripts;
mod slots;
mod spread;
mod state;
#[cfg(test)]
mod wire_tests;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodFilter, get, on, post};
use axum::serve::ListenerExt as _;

pub use config::{Config, LogFormat};
pub use error::GatewayError;
pub use state::AppState;

use connection::Guarded;
use routes::method_not_allowed;

/// The router.
///
/// | Route | Methods |
/// |---|---|
/// | `/` | POST: one JSON command |
/// | `/pipeline`, `/multi-exec` | POST: a JSON array of commands |
/// | `/subscribe/<channel>`, `/psubscribe/<pattern>` | GET, POST: an SSE stream |
/// | `/livez` | GET, HEAD: the process is up (never asks Redis), no auth |
/// | `/readyz`, `/healthz` | GET, HEAD: Redis answers `PING` (a cluster: every slot served, every master answers), no auth |
/// | `/metrics` | GET, HEAD: Prometheus text format; `--metrics-token` if set |
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
        .route(
            "/livez",
            get(routes::health::livez).fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
        .route(
            "/readyz",
            get(routes::health::readyz).fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
        .route(
            "/metrics",
            get(routes::metrics::metrics).fallback(|| async { method_not_allowed("GET, HEAD") }),
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
    // Replies are written whole; Nagle's algorithm would only delay them.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let listener = Guarded::new(
        listener,
        state.timeouts,
        Some(state.max_connections),
        Arc::clone(&state.metrics),
    );
    serve_quietly(listener, state, shutdown).await
}

/// [`serve`] on any listener, without the log line (each thread of [`run`] serves; [`run`] logs
/// once).
async fn serve_quietly<L>(
    listener: Guarded<L>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    L::Io: Unpin,
{
    let draining = state.clone();
    let shutdown = async move {
        shutdown.await;
        draining.begin_shutdown();
    };
    // Each request carries its connection ([`connection::Conn`]), for the connection's timeouts and
    // for handlers that must close it.
    let service = app(state).into_make_service_with_connect_info::<connection::Conn>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves [`app`] with `config` on `listener` from `config.threads` threads, each with a
/// single-threaded runtime of its own and its own pool of Redis connections, until `shutdown`
/// completes; then every thread drains as [`serve`] does, and this returns once all have finished.
/// Blocks the calling thread.
///
/// The calling thread accepts every connection and hands it to the server thread that holds the
/// fewest open ones (see `spread.rs`), so that a few long-lived keep-alive connections are shared
/// evenly rather than by whichever thread woke first.
///
/// # Errors
/// An invalid setting (the message names it), a runtime or thread that could not be started, or a
/// listener that failed (the first such error; the other threads are then shut down too).
pub fn run(
    listener: std::net::TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The connection managers start a helper task when created: inside a runtime.
    let state = {
        let _entered = runtime.enter();
        AppState::from_config(config).map_err(std::io::Error::other)?
    };
    // Validated by `from_config`: at least one.
    let threads = config.threads;
    let max_connections = state.max_connections;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, threads, "redge-gateway listening");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (done, mut finished) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<()>>();
    let tick = timer_tick(config.deadline().min(config.body_timeout()));
    let mut handles = Vec::with_capacity(threads);
    let mut outlets = Vec::with_capacity(threads);
    for index in 0..threads {
        let (outlet, listener) = spread::channel(local);
        outlets.push(outlet);
        let state = state.clone();
        let mut stopped = stopped.clone();
        let done = done.clone();
        let handle = std::thread::Builder::new()
            .name(format!("gateway-{index}"))
            .spawn(move || {
                backend::set_shard(index);
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            // Detached: it runs until this thread's runtime is dropped.
                            tokio::spawn(keep_timer_armed(tick));
                            let listener = listener.tap_io(|tcp| {
                                let _ = tcp.tcp().set_nodelay(true);
                            });
                            // Capped by the acceptor, over all threads.
                            let metrics = Arc::clone(&state.metrics);
                            let listener = Guarded::new(listener, state.timeouts, None, metrics);
                            serve_quietly(listener, state, async move {
                                let _ = stopped.wait_for(|stop| *stop).await;
                            })
                            .await
                        })
                    });
                let _ = done.send(result);
            })?;
        handles.push(handle);
    }
    drop(done);
    let refusals = connection::Refusals::new(Arc::clone(&state.metrics));
    let early = runtime.block_on(async {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => return Some(Err(error)),
        };
        tokio::select! {
            () = shutdown => None,
            first = finished.recv() => first,
            stopped = accept_all(&listener, &outlets, max_connections, refusals) => Some(stopped),
        }
    });
    drop(outlets);
    state.begin_shutdown();
    stop.send_replace(true);
    let mut result = early.unwrap_or(Ok(()));
    for handle in handles {
        if handle.join().is_err() && result.is_ok() {
            result = Err(std::io::Error::other("a server thread panicked"));
        }
    }
    while let Ok(outcome) = finished.try_recv() {
        if result.is_ok() {
            result = outcome;
        }
    }
    result
}

/// How often [`keep_timer_armed`] wakes: no later than the shortest per-request timer, at most once
/// a second, and no more often than every 10 ms.
fn timer_tick(shortest_timer: std::time::Duration) -> std::time::Duration {
    shortest_timer.clamp(
        std::time::Duration::from_millis(10),
        std::time::Duration::from_secs(1),
    )
}

/// Keeps one timer of this thread's runtime due at least every `tick`.
///
/// Every request arms a deadline timer. A runtime that went idle with no timer at all (between two
/// requests of a lone keep-alive connection) treats the first new timer as the earliest ever and
/// wakes its own event loop to re-plan, which costs an eventfd write and an extra `epoll_wait` on
/// every request (seen with strace at concurrency 1). With this timer due sooner than any request's
/// deadline, a new deadline never moves the next wake-up earlier, so registering it is free.
async fn keep_timer_armed(tick: std::time::Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
    }
}

/// Accepts connections and hands each to a server thread, until none is left to take them. Past
/// `max_connections` open ones (over all threads), a new connection is closed at once.
async fn accept_all(
    listener: &tokio::net::TcpListener,
    outlets: &[spread::Outlet],
    max_connections: usize,
    refusals: connection::Refusals,
) -> std::io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) if spread::open(outlets) >= max_connections => {
                refusals.note(max_connections);
                drop(stream);
            }
            Ok((stream, _)) => match stream.into_std() {
                Ok(stream) => {
                    if !spread::hand_out(outlets, stream) {
                        return Err(std::io::Error::other("every server thread has stopped"));
                    }
                }
                Err(error) => tracing::warn!(%error, "an accepted connection was dropped"),
            },
            // Out of file descriptors, a connection reset before it was accepted ...: the listener
            // itself is fine, so wait a moment instead of spinning on the error.
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::timer_tick;
    use std::time::Duration;

    #[test]
    fn the_tick_is_due_before_the_shortest_request_timer_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(timer_tick(ms(5_000)), ms(1_000), "at most once a second");
        assert_eq!(timer_tick(ms(250)), ms(250), "no later than the deadline");
        assert_eq!(timer_tick(ms(1)), ms(10), "never a busy loop");
    }
}

//! The demo Worker: one router, thin handlers, and what every response carries.
//!
//! - [`routes`]: every path in one table, and the pure matcher (404 and 405 as problems).
//! - [`route_limits`]: which rate-limit policy guards each route group (`RATELIMIT_ROUTES`).
//! - [`client_ip`]: which header to believe for the client's address, and its rate-limit key.
//! - [`config`]: vars and secrets, validated once per isolate with one error listing every problem.
//! - [`context`]: the per-request context and the one-round-trip pipeline (shared batch) that
//!   middleware and routes add their Redis reads to; how a capability plugs in.
//! - [`cors`]: allowed origins, preflight, credentials only for allowed origins, `Vary: Origin`.
//! - [`timing`]: the metered transport and the `Server-Timing` header (Redis round trips and time).
//! - [`metrics`]: the per-isolate registry and the Prometheus text format (`GET /api/metrics`).
//! - [`tags`]: the lookup demo's tags, the only ones that can be invalidated.
//! - [`problem`]: every error as RFC 9457 problem details.
//! - [`reply`]: responses built in Rust and handed to the runtime in one piece.
//! - `runtime`: what the handlers need from the runtime (headers, `waitUntil`, the log, timers), one
//!   small trait; `dispatch` (wasm only) implements it over the runtime's request and context.
//!
//! Static files in `www/` are served by the Workers assets layer before this code runs; requests under
//! `/api/` come straight here without a file lookup (`run_worker_first` in wrangler.toml), other paths
//! only when they match no file. Everything but `dispatch` (the runtime's request in, its response out)
//! compiles natively too, where the handlers run with the middleware in unit tests.
// Natively nothing calls into the crate but its tests.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod client_ip;
pub mod config;
pub mod cors;
pub mod metrics;
pub mod problem;
pub mod reply;
pub mod route_limits;
pub mod routes;
pub mod tags;
pub mod timing;

mod context;
#[cfg(target_arch = "wasm32")]
mod dispatch;
mod handlers;
mod runtime;
mod state;

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    req: web_sys::Request,
    env: worker::Env,
    ctx: worker::Context,
) -> worker::Result<web_sys::Response> {
    Ok(dispatch::handle(req, env, ctx).await)
}

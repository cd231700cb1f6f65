//! The demo Worker: `#[event(fetch)]` builds the configuration from the Worker's env, builds the router and
//! runs it. Handlers are thin; logic that needs tests lives in the library.
//!
//! Static files in `www/` are served by the Workers assets layer before this code runs; the Worker only
//! sees `/api/*` and paths that match no file.

mod config;
mod health;
mod problem;

use worker::{Context, Env, Request, Response, Router, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Router::new()
        .get_async("/api/health", |_req, ctx| async move {
            health::handle(&ctx.env).await
        })
        .or_else_any_method_async("/*path", |req, _ctx| async move {
            problem::not_found(req.path())
        })
        .run(req, env)
        .await
}

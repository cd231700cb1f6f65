//! The demo Worker: `#[event(fetch)]` builds the configuration from the Worker's env, builds the router and
//! runs it. Handlers are thin; logic that needs tests lives in the library.
//!
//! Static files in `www/` are served by the Workers assets layer before this code runs; the Worker only
//! sees `/api/*` and paths that match no file.

mod config;
mod handlers;
mod health;
mod problem;

use worker::{Context, Env, Request, Response, Router, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Router::new()
        .get_async("/api/health", |_req, ctx| async move {
            health::handle(&ctx.env).await
        })
        .get("/api/ratelimit", |_req, ctx| {
            handlers::ratelimit::list(&ctx.env)
        })
        .post_async("/api/ratelimit/:policy", |req, ctx| async move {
            let policy = ctx.param("policy").cloned().unwrap_or_default();
            handlers::ratelimit::decide(req, &ctx.env, &policy, false).await
        })
        .get_async("/api/ratelimit/:policy", |req, ctx| async move {
            let policy = ctx.param("policy").cloned().unwrap_or_default();
            handlers::ratelimit::decide(req, &ctx.env, &policy, true).await
        })
        .delete_async("/api/ratelimit/:policy", |req, ctx| async move {
            let policy = ctx.param("policy").cloned().unwrap_or_default();
            handlers::ratelimit::reset(req, &ctx.env, &policy).await
        })
        .or_else_any_method_async("/*path", |req, _ctx| async move {
            problem::not_found(req.path())
        })
        .run(req, env)
        .await
}

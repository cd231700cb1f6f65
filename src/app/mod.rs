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
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    // The context rides along as router data: the cache refreshes stale values through `wait_until`.
    Router::with_data(ctx)
        .get_async("/api/health", |_req, ctx| async move {
            health::handle(&ctx.env).await
        })
        .get_async("/api/lookup/:id", |_req, ctx| async move {
            let id = ctx.param("id").cloned().unwrap_or_default();
            handlers::cache::get(&ctx.env, ctx.data, &id).await
        })
        .delete_async("/api/lookup/*path", |_req, ctx| async move {
            let path = ctx.param("path").cloned().unwrap_or_default();
            handlers::cache::delete(&ctx.env, &path).await
        })
        .get_async("/api/cache/metrics", |_req, _ctx| async move {
            handlers::cache::metrics()
        })
        .or_else_any_method_async("/*path", |req, _ctx| async move {
            problem::not_found(req.path())
        })
        .run(req, env)
        .await
}

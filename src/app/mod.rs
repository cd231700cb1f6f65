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

use crate::session::Revoke;
use handlers::session;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Router::new()
        .get_async("/api/health", |_req, ctx| async move {
            health::handle(&ctx.env).await
        })
        .post_async("/api/session", |req, ctx| session::sign_in(req, ctx.env))
        .get_async("/api/session", |req, ctx| session::current(req, ctx.env))
        .patch_async("/api/session", |req, ctx| session::update(req, ctx.env))
        .delete_async("/api/session", |req, ctx| async move {
            session::revoke(req, ctx.env, Revoke::Current).await
        })
        .get_async("/api/sessions", |req, ctx| session::list(req, ctx.env))
        .delete_async("/api/sessions", |req, ctx| async move {
            session::revoke(req, ctx.env, Revoke::All).await
        })
        .delete_async("/api/sessions/:id", |req, ctx| async move {
            let id = ctx.param("id").cloned().unwrap_or_default();
            session::revoke(req, ctx.env, Revoke::One(&id)).await
        })
        .or_else_any_method_async("/*path", |req, _ctx| async move {
            problem::not_found(req.path())
        })
        .run(req, env)
        .await
}

//! `GET /api/health`: is the Redis service reachable, and how long does a PING take?

use serde_json::json;
use worker::{Env, Response};

use super::{config, problem};
use crate::client::cmd;
use crate::clock::{Clock, SystemClock};

pub async fn handle(env: &Env) -> worker::Result<Response> {
    let client = match config::client(env) {
        Ok(client) => client,
        Err(message) => return problem::problem(500, "Misconfigured", &message),
    };
    let started = SystemClock.now_ms();
    let result = client.query::<String>(&cmd("PING")).await;
    let latency_ms = SystemClock.now_ms().saturating_sub(started);
    let (status, body) = match result {
        Ok(_) => (
            200,
            json!({ "status": "ok", "redis": { "ok": true, "latency_ms": latency_ms } }),
        ),
        Err(e) => (
            503,
            json!({ "status": "unavailable", "redis": { "ok": false, "error": e.to_string() } }),
        ),
    };
    let mut response = Response::from_json(&body)?.with_status(status);
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(response)
}

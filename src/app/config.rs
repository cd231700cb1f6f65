//! Configuration from the Worker's vars and secrets, validated with one clear error.

use worker::Env;

use crate::client::{Client, FetchTransport, TOKEN_VAR, URL_VAR};

/// Reads a var or secret, treating an absent binding as missing.
fn read(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// The Redis client configured by `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN`.
///
/// # Errors
/// One message that lists every missing or invalid value.
pub fn client(env: &Env) -> Result<Client<FetchTransport>, String> {
    let url = read(env, URL_VAR);
    let token = read(env, TOKEN_VAR);
    let mut missing = Vec::new();
    if url.is_none() {
        missing.push(URL_VAR);
    }
    if token.is_none() {
        missing.push(TOKEN_VAR);
    }
    if !missing.is_empty() {
        return Err(format!(
            "missing configuration: {} (set with `wrangler secret put` or in .dev.vars)",
            missing.join(", ")
        ));
    }
    Client::new(&url.unwrap_or_default(), &token.unwrap_or_default()).map_err(|e| e.to_string())
}

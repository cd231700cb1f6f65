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

/// Rate-limit settings from `RATELIMIT_POLICIES` (JSON, see `redge::ratelimit::config`; the demo's
/// policies when absent), `RATELIMIT_FAILURE` (`open`, `closed`, `local`; default `local`),
/// `RATELIMIT_TIMEOUT_MS` (default 200), `RATELIMIT_PREFIX` and `RATELIMIT_LEGACY_HEADERS` (`true` adds
/// `X-RateLimit-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Whether to send the legacy `X-RateLimit-*` headers.
    pub legacy_headers: bool,
}

/// Builds the rate limiter from the Worker's vars.
///
/// # Errors
/// One message naming the var and what is wrong with it.
pub fn ratelimit(env: &Env) -> Result<(crate::ratelimit::RateLimiter, RateLimitConfig), String> {
    use crate::ratelimit::{FailurePolicy, RateLimiter, config};
    let policies = match read(env, "RATELIMIT_POLICIES").filter(|t| !t.trim().is_empty()) {
        Some(text) => {
            config::parse_policies(&text).map_err(|e| format!("RATELIMIT_POLICIES: {e}"))?
        }
        None => config::default_policies(),
    };
    let failure = match read(env, "RATELIMIT_FAILURE") {
        Some(name) => FailurePolicy::parse(&name).ok_or_else(|| {
            format!("RATELIMIT_FAILURE must be open, closed or local, got {name:?}")
        })?,
        None => FailurePolicy::default(),
    };
    let timeout_ms = match read(env, "RATELIMIT_TIMEOUT_MS") {
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|ms| (1..=30_000).contains(ms))
            .ok_or_else(|| format!("RATELIMIT_TIMEOUT_MS must be 1 to 30000 ms, got {text:?}"))?,
        None => crate::ratelimit::DEFAULT_TIMEOUT_MS,
    };
    let legacy_headers = read(env, "RATELIMIT_LEGACY_HEADERS").is_some_and(|v| v.trim() == "true");
    let prefix =
        read(env, "RATELIMIT_PREFIX").unwrap_or_else(|| crate::ratelimit::DEFAULT_PREFIX.into());
    let limiter = RateLimiter::new(policies)
        .map_err(|e| e.to_string())?
        .prefix(prefix)
        .failure_policy(failure)
        .with_timeout_ms(timeout_ms);
    Ok((limiter, RateLimitConfig { legacy_headers }))
}

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

/// How `GET /api/lookup/{id}` behaves: the demo origin and the cache policy, from wrangler vars.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupConfig {
    /// `DEMO_ORIGIN_LATENCY_MS` (default 300): how long the demo origin takes to answer.
    pub origin_latency_ms: u32,
    /// `DEMO_ORIGIN_FAILURE_RATE` (default 0, between 0 and 1): the share of demo origin calls that fail.
    pub origin_failure_rate: f64,
    /// `ORIGIN_URL` (optional): a real upstream; `GET <ORIGIN_URL>/<id>` answers 200 with JSON, or 404.
    pub origin_url: Option<String>,
    /// `CACHE_TTL_MS` (default 30 000), `CACHE_GRACE_MS` (default 300 000), `CACHE_NEGATIVE_TTL_MS`
    /// (default 10 000), `CACHE_DEADLINE_MS` (default 150), `CACHE_MEMORY_TTL_MS` (default 0: off).
    pub policy: crate::cache::Policy,
}

/// Reads a number var; absent means `default`.
fn number<T: std::str::FromStr>(
    env: &Env,
    name: &str,
    default: T,
    problems: &mut Vec<String>,
) -> T {
    match read(env, name) {
        None => default,
        Some(text) => text.trim().parse().unwrap_or_else(|_| {
            problems.push(format!("{name} must be a number, got {text:?}"));
            default
        }),
    }
}

/// The lookup demo's configuration.
///
/// # Errors
/// One message that lists every invalid value.
pub fn lookup(env: &Env) -> Result<LookupConfig, String> {
    let mut problems = Vec::new();
    let origin_latency_ms = number(env, "DEMO_ORIGIN_LATENCY_MS", 300u32, &mut problems);
    let origin_failure_rate = number(env, "DEMO_ORIGIN_FAILURE_RATE", 0.0f64, &mut problems);
    if !(0.0..=1.0).contains(&origin_failure_rate) {
        // The text as given: formatting an f64 would link the float printer (16 KB of wasm) for one message.
        let given = read(env, "DEMO_ORIGIN_FAILURE_RATE").unwrap_or_default();
        problems.push(format!(
            "DEMO_ORIGIN_FAILURE_RATE must be between 0 and 1, got {given:?}"
        ));
    }
    let origin_url = read(env, "ORIGIN_URL").filter(|u| !u.trim().is_empty());
    if let Some(url) = &origin_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        problems.push(format!("ORIGIN_URL must be an http(s) URL, got {url:?}"));
    }
    let policy = crate::cache::Policy::new("lookup")
        .ttl_ms(number(env, "CACHE_TTL_MS", 30_000u64, &mut problems))
        .grace_ms(number(env, "CACHE_GRACE_MS", 300_000u64, &mut problems))
        .negative_ttl_ms(number(
            env,
            "CACHE_NEGATIVE_TTL_MS",
            10_000u64,
            &mut problems,
        ))
        .deadline_ms(number(env, "CACHE_DEADLINE_MS", 150u32, &mut problems))
        .memory_ttl_ms(number(env, "CACHE_MEMORY_TTL_MS", 0u64, &mut problems));
    if !problems.is_empty() {
        return Err(format!("invalid configuration: {}", problems.join("; ")));
    }
    Ok(LookupConfig {
        origin_latency_ms,
        origin_failure_rate,
        origin_url: origin_url.map(|u| u.trim().trim_end_matches('/').to_owned()),
        policy,
    })
}

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

/// Session settings from the Worker's vars:
/// - `SESSION_COOKIE_INSECURE` = `"true"`: development cookies (no `__Host-`, no `Secure`) so that a
///   browser keeps them over `http://127.0.0.1`. Honoured only on plain-HTTP loopback requests, and must
///   never be set in production;
/// - `SESSION_ALLOWED_ORIGINS`: comma-separated origins allowed to change sessions besides the Worker's
///   own (for a page served elsewhere);
/// - `SESSION_IDLE_S`, `SESSION_ABSOLUTE_S`: lifetimes in seconds (defaults 1800 and 43200).
pub struct SessionSettings {
    /// Store configuration, cookie included.
    pub config: crate::session::SessionConfig,
    /// Whether development cookies were asked for.
    pub insecure_cookie: bool,
    /// Extra allowed origins.
    pub allowed_origins: Vec<String>,
}

/// Reads [`SessionSettings`].
///
/// # Errors
/// One message naming the invalid value.
pub fn session(env: &Env) -> Result<SessionSettings, String> {
    use crate::session::{Lifetimes, SessionConfig};
    let seconds = |name: &str, default_ms: u64| -> Result<u64, String> {
        match read(env, name) {
            None => Ok(default_ms),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map(|s| s.saturating_mul(1000))
                .map_err(|_| format!("{name} must be a whole number of seconds, got {text:?}")),
        }
    };
    let defaults = Lifetimes::default();
    let lifetimes = Lifetimes::new(
        seconds("SESSION_IDLE_S", defaults.idle_ms())?,
        seconds("SESSION_ABSOLUTE_S", defaults.absolute_ms())?,
    )
    .map_err(|e| e.to_string())?;
    let insecure_cookie = read(env, "SESSION_COOKIE_INSECURE")
        .is_some_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
    let allowed_origins = read(env, "SESSION_ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(SessionSettings {
        config: SessionConfig {
            lifetimes,
            ..SessionConfig::default()
        },
        insecure_cookie,
        allowed_origins,
    })
}

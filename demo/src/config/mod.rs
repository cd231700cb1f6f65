//! Configuration from the Worker's vars and secrets, read and validated once per isolate.
//!
//! | Variable | Required | Meaning |
//! |---|---|---|
//! | `UPSTASH_REDIS_REST_URL` | yes | base URL of the HTTP Redis service (a secret or a var) |
//! | `UPSTASH_REDIS_REST_TOKEN` | yes | its token (a secret) |
//! | `REDIS_TIMEOUT_MS` | no | deadline of one Redis call, retries included; 1..=30000, default 1000 |
//! | `CORS_ALLOWED_ORIGINS` | no | comma-separated origins (`https://app.example.com`) that may call the API from a browser, with credentials; parsed as [`redge::origin::Origin`]s, so CORS and the session check compare them one way; `*` is refused because allowed origins receive credentials, so a wildcard would let any site act as the visitor |
//! | `METRICS_TOKEN` | no | when set, `GET /api/metrics` requires `Authorization: Bearer <token>` |
//! | `METRICS_FLUSH_MS` | no | how often an isolate adds what its counters gained to the deployment's totals in Redis, in the background: 0 (off: each isolate reports its own) or 1000..=3600000, default 10000 |
//! | `METRICS_KEY` | no | the Redis hash with the deployment's totals, default `redge:metrics` |
//! | `SESSION_COOKIE_INSECURE` | no | `true`: session cookies without `__Host-` and `Secure`, honoured only on plain-HTTP loopback requests (local development; never in production) |
//! | `SESSION_ALLOWED_ORIGINS` | no | comma-separated origins, besides the Worker's own and `CORS_ALLOWED_ORIGINS`, allowed to change sessions |
//! | `DEMO_ORIGIN_LATENCY_MS` | no | latency of the lookup demo's origin, 0..=60000, default 300 |
//! | `DEMO_ORIGIN_FAILURE_RATE` | no | share of demo origin calls that fail, 0 to 1, default 0 |
//! | `ORIGIN_URL` | no | a real upstream for lookups instead of the demo: `GET <ORIGIN_URL>/<id>` answers JSON or 404 |
//! | `CACHE_TTL_MS`, `CACHE_GRACE_MS`, `CACHE_NEGATIVE_TTL_MS`, `CACHE_DEADLINE_MS`, `CACHE_MEMORY_TTL_MS` | no | the lookup cache policy: 30000, 300000, 10000, 150, 0 (memory tier off) |
//! | `CACHE_COLO_TTL_MS` | no | the colo tier (the location's Cache API) for lookups: 0 (off, the default) to 300000; an invalidation is seen by colo readers within this time |
//! | `RATELIMIT_POLICIES` | no | JSON array of policies (`[{"name":"api","algorithm":"gcra","limit":100,"period":"1m","burst":20}]`, see `redge::ratelimit::config`); the demo's policies when unset |
//! | `RATELIMIT_FAILURE` | no | `open`, `closed` or `local` (a per-isolate limiter): what a check answers when Redis fails or is slow; default `local` |
//! | `RATELIMIT_TIMEOUT_MS` | no | deadline of a rate-limit check, 1..=30000, default 200 |
//! | `RATELIMIT_PREFIX` | no | prefix of the rate-limit keys, default `redge:rl` |
//! | `RATELIMIT_LEGACY_HEADERS` | no | `true` adds `X-RateLimit-Limit/Remaining/Reset` |
//! | `RATELIMIT_ROUTES` | no | JSON object from route group (`ops`, `session`, `lookup`, `ratelimit`, `dashboard`) to the policy its routes spend from per client (`null`: none); default: every group spends from `api`, added when `RATELIMIT_POLICIES` has none; see [`route_limits`](super::route_limits) |
//! | `TRUSTED_CLIENT_IP_HEADER` | no | the header with the client's address for the route limits: unset (`CF-Connecting-IP` on requests through Cloudflare only), a proxy's header such as `x-forwarded-for`, or `none`; see [`client_ip`](super::client_ip) |
//! | `SESSION_IDLE_S`, `SESSION_ABSOLUTE_S` | no | session idle timeout and absolute lifetime in seconds (1800 and 43200) |
//! | `SESSION_CACHE_MS` | no | how long an isolate serves a session it read from Redis without asking again, 0 (off, the default) to 60000 |
//!
//! [`Config::from_vars`] is pure: it takes a lookup function, so every rule is tested natively. One
//! reader (`reader.rs`) collects every problem before failing, so one deploy shows every missing or
//! invalid value at once; each capability reads its own settings in its own file (`cors.rs`,
//! `session.rs`, `lookup.rs`, `ratelimit.rs`, `metrics.rs`, `redis.rs`).

use std::fmt;

mod cors;
mod lookup;
mod metrics;
mod ratelimit;
mod reader;
mod redis;
mod session;
#[cfg(test)]
mod tests;

pub use cors::{CORS_VAR, CorsSettings};
pub use lookup::{LookupSettings, ORIGIN_URL_VAR};
pub use metrics::{
    DEFAULT_METRICS_FLUSH_MS, DEFAULT_METRICS_KEY, METRICS_FLUSH_VAR, METRICS_KEY_VAR,
    METRICS_TOKEN_VAR, MetricsSettings,
};
pub use ratelimit::{
    FAILURE_VAR, LEASES_VAR, LEGACY_HEADERS_VAR, POLICIES_VAR, ROUTES_VAR, RateLimitSettings,
};
pub use redis::TIMEOUT_VAR;
pub use session::{
    SESSION_ABSOLUTE_VAR, SESSION_CACHE_VAR, SESSION_IDLE_VAR, SESSION_INSECURE_VAR,
    SESSION_ORIGINS_VAR, SessionSettings,
};

use reader::Reader;
use redge::client::URL_VAR;
use redis::RedisSettings;

/// The variables that hold URLs: a problem with one of them is logged with the URL redacted.
pub const URL_VARS: [&str; 2] = [URL_VAR, ORIGIN_URL_VAR];

/// The validated configuration. Its `Debug` shows no token.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// Base URL of the HTTP Redis service.
    pub redis_url: String,
    /// Its token.
    pub redis_token: String,
    /// Deadline of one Redis call in milliseconds.
    pub redis_timeout_ms: u32,
    /// Which browser origins may call the API.
    pub cors: CorsSettings,
    /// Token required by `GET /api/metrics`, if any.
    pub metrics_token: Option<String>,
    /// How the isolates add their counters up in Redis.
    pub metrics: MetricsSettings,
    /// Session store and cookie settings.
    pub session: SessionSettings,
    /// The lookup demo: its origin and cache policy.
    pub lookup: LookupSettings,
    /// Rate limiting.
    pub ratelimit: RateLimitSettings,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |set: bool| if set { "<redacted>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("redis_url", &self.redis_url)
            .field("redis_token", &redacted(!self.redis_token.is_empty()))
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("cors", &self.cors)
            .field("metrics_token", &redacted(self.metrics_token.is_some()))
            .field("metrics", &self.metrics)
            .field("session", &self.session)
            .field("lookup", &self.lookup)
            .field("ratelimit", &self.ratelimit)
            .finish()
    }
}

/// Every missing or invalid value, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `(variable, what is wrong)`, in the order of the table above.
    pub problems: Vec<(&'static str, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the Worker is misconfigured ({n} problem{}): ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, (_, message)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(message)?;
        }
        f.write_str(
            ". Set secrets with `wrangler secret put NAME`, vars in wrangler.toml [vars], or both in .dev.vars locally.",
        )
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads every variable through `get` (an absent or blank value is unset) and validates them all.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every missing or invalid variable.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut reader = Reader::new(&get);
        // Read in the order of the table above, which is the order problems are listed in.
        let redis = RedisSettings::read(&mut reader);
        let cors = CorsSettings::read(&mut reader);
        let metrics_token = metrics::read_token(&mut reader);
        let metrics = MetricsSettings::read(&mut reader);
        let session = SessionSettings::read(&mut reader, &cors.allowed_origins);
        let lookup = LookupSettings::read(&mut reader);
        let ratelimit = RateLimitSettings::read(&mut reader);
        reader.finish()?;
        Ok(Config {
            redis_url: redis.url,
            redis_token: redis.token,
            redis_timeout_ms: redis.timeout_ms,
            cors,
            metrics_token,
            metrics,
            session,
            lookup,
            ratelimit,
        })
    }
}

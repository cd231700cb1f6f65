//! Configuration from the Worker's vars and secrets, read and validated once per isolate.
//!
//! | Variable | Required | Meaning |
//! |---|---|---|
//! | `UPSTASH_REDIS_REST_URL` | yes | base URL of the HTTP Redis service (a secret or a var) |
//! | `UPSTASH_REDIS_REST_TOKEN` | yes | its token (a secret) |
//! | `REDIS_TIMEOUT_MS` | no | deadline of one Redis call, retries included; 1..=30000, default 1000 |
//! | `CORS_ALLOWED_ORIGINS` | no | comma-separated origins (`https://app.example.com`) that may call the API from a browser, with credentials; parsed as [`Origin`]s, so CORS and the session check compare them one way; `*` is refused because allowed origins receive credentials, so a wildcard would let any site act as the visitor |
//! | `METRICS_TOKEN` | no | when set, `GET /api/metrics` requires `Authorization: Bearer <token>` |
//! | `METRICS_FLUSH_MS` | no | how often an isolate adds what its counters gained to the deployment's totals in Redis, in the background: 0 (off: each isolate reports its own) or 1000..=3600000, default 10000 |
//! | `METRICS_KEY` | no | the Redis hash with the deployment's totals, default `redge:metrics` |
//! | `SESSION_COOKIE_INSECURE` | no | `true`: session cookies without `__Host-` and `Secure`, honoured only on plain-HTTP loopback requests (local development; never in production) |
//! | `SESSION_ALLOWED_ORIGINS` | no | comma-separated origins, besides the Worker's own and `CORS_ALLOWED_ORIGINS`, allowed to change sessions |
//! | `DEMO_ORIGIN_LATENCY_MS` | no | latency of the lookup demo's origin, 0..=60000, default 300 |
//! | `DEMO_ORIGIN_FAILURE_RATE` | no | share of demo origin calls that fail, 0 to 1, default 0 |
//! | `ORIGIN_URL` | no | a real upstream for lookups instead of the demo: `GET <ORIGIN_URL>/<id>` answers JSON or 404 |
//! | `CACHE_TTL_MS`, `CACHE_GRACE_MS`, `CACHE_NEGATIVE_TTL_MS`, `CACHE_DEADLINE_MS`, `CACHE_MEMORY_TTL_MS` | no | the lookup cache policy: 30000, 300000, 10000, 150, 0 (memory tier off) |
//! | `RATELIMIT_POLICIES` | no | JSON array of policies (`[{"name":"api","algorithm":"gcra","limit":100,"period":"1m","burst":20}]`, see `redge::ratelimit::config`); the demo's policies when unset |
//! | `RATELIMIT_FAILURE` | no | `open`, `closed` or `local` (a per-isolate limiter): what a check answers when Redis fails or is slow; default `local` |
//! | `RATELIMIT_TIMEOUT_MS` | no | deadline of a rate-limit check, 1..=30000, default 200 |
//! | `RATELIMIT_PREFIX` | no | prefix of the rate-limit keys, default `redge:rl` |
//! | `RATELIMIT_LEGACY_HEADERS` | no | `true` adds `X-RateLimit-Limit/Remaining/Reset` |
//! | `RATELIMIT_ROUTES` | no | JSON object from route group (`ops`, `session`, `lookup`, `ratelimit`, `dashboard`) to the policy its routes spend from per client (`null`: none); default: every group spends from `api`, added when `RATELIMIT_POLICIES` has none; see [`route_limits`](super::route_limits) |
//! | `TRUSTED_CLIENT_IP_HEADER` | no | the header with the client's address for the route limits: unset (`CF-Connecting-IP` on requests through Cloudflare only), a proxy's header such as `x-forwarded-for`, or `none`; see [`client_ip`](super::client_ip) |
//! | `SESSION_IDLE_S`, `SESSION_ABSOLUTE_S` | no | session idle timeout and absolute lifetime in seconds (1800 and 43200) |
//!
//! [`Config::from_vars`] is pure: it takes a lookup function, so every rule is tested natively. Every
//! problem is collected before failing, so one deploy shows every missing or invalid value at once.

use std::fmt;

use super::client_ip::{TRUSTED_HEADER_VAR, Trust};
use super::route_limits::{DEFAULT_ROUTE_POLICY, RouteLimits};
use redge::cache::Policy;
use redge::client::url::check_http_url;
use redge::client::{
    Client, DEFAULT_TIMEOUT_MS, HttpRequest, HttpResponse, TOKEN_VAR, Transport, URL_VAR,
};
use redge::origin::Origin;
use redge::ratelimit::{FailurePolicy, Policy as RatePolicy};
use redge::session::{Lifetimes, SessionConfig};

/// Name of the variable with the Redis deadline.
pub const TIMEOUT_VAR: &str = "REDIS_TIMEOUT_MS";
/// Name of the variable with the CORS origins.
pub const CORS_VAR: &str = "CORS_ALLOWED_ORIGINS";
/// Name of the variable with the metrics token.
pub const METRICS_TOKEN_VAR: &str = "METRICS_TOKEN";
/// Name of the variable that allows development session cookies.
pub const SESSION_INSECURE_VAR: &str = "SESSION_COOKIE_INSECURE";
/// Name of the variable with the extra origins allowed to change sessions.
pub const SESSION_ORIGINS_VAR: &str = "SESSION_ALLOWED_ORIGINS";
/// Name of the variable with the session idle timeout.
pub const SESSION_IDLE_VAR: &str = "SESSION_IDLE_S";
/// Name of the variable with the session absolute lifetime.
pub const SESSION_ABSOLUTE_VAR: &str = "SESSION_ABSOLUTE_S";
/// Name of the variable with the metrics flush interval.
pub const METRICS_FLUSH_VAR: &str = "METRICS_FLUSH_MS";
/// Name of the variable with the metrics hash's key.
pub const METRICS_KEY_VAR: &str = "METRICS_KEY";
/// The default metrics flush interval: at most one background round trip per isolate per 10 s.
pub const DEFAULT_METRICS_FLUSH_MS: u32 = 10_000;
/// The default key of the deployment's metrics hash.
pub const DEFAULT_METRICS_KEY: &str = "redge:metrics";
/// Name of the variable with a real upstream for lookups.
pub const ORIGIN_URL_VAR: &str = "ORIGIN_URL";
/// The variables that hold URLs: a problem with one of them is logged with the URL redacted.
pub const URL_VARS: [&str; 2] = [URL_VAR, ORIGIN_URL_VAR];

/// The longest Redis deadline accepted: a Worker request should not hang on Redis for longer.
const MAX_TIMEOUT_MS: u32 = 30_000;

/// The validated configuration. Its `Debug` shows no token.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// Base URL of the HTTP Redis service.
    pub redis_url: String,
    /// Its token.
    pub redis_token: String,
    /// Deadline of one Redis call in milliseconds.
    pub redis_timeout_ms: u32,
    /// Origins allowed to call the API from a browser.
    pub cors_origins: Vec<Origin>,
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
            .field("cors_origins", &self.cors_origins)
            .field("metrics_token", &redacted(self.metrics_token.is_some()))
            .field("metrics", &self.metrics)
            .field("session", &self.session)
            .field("lookup", &self.lookup)
            .field("ratelimit", &self.ratelimit)
            .finish()
    }
}

/// Metrics for the whole deployment: each isolate adds its counters to one Redis hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// How often an isolate sends what its counters gained, in the background (0: never; then
    /// `GET /api/metrics` shows the isolate's own counters only).
    pub flush_ms: u32,
    /// The Redis hash that holds the totals.
    pub key: String,
}

/// Rate-limit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// The policies, by name.
    pub policies: Vec<RatePolicy>,
    /// What a check answers when Redis fails or is too slow.
    pub failure: FailurePolicy,
    /// Deadline of a check.
    pub timeout_ms: u32,
    /// Prefix of the keys.
    pub prefix: String,
    /// Whether to send `X-RateLimit-*` too.
    pub legacy_headers: bool,
    /// The policy that guards each route group.
    pub routes: RouteLimits,
    /// Which header carries the client's address (the key of the route limits).
    pub client_ip: Trust,
}

/// How `GET /api/lookup/{id}` behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupSettings {
    /// How long the demo origin takes to answer.
    pub origin_latency_ms: u32,
    /// The share of demo origin calls that fail (0 to 1).
    pub origin_failure_rate: f64,
    /// A real upstream (no trailing slash), instead of the demo origin.
    pub origin_url: Option<String>,
    /// The cache policy.
    pub policy: Policy,
}

/// Session settings: the store's configuration and who may change sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Store configuration, cookie included (development cookies are switched on per request, only for
    /// plain-HTTP loopback requests, when [`SessionSettings::insecure_cookie`] is set).
    pub store: SessionConfig,
    /// Whether development cookies were asked for.
    pub insecure_cookie: bool,
    /// Origins allowed to change sessions besides the Worker's own.
    pub allowed_origins: Vec<Origin>,
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
        let read = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut problems: Vec<(&'static str, String)> = Vec::new();

        // Each checked on its own with the client's rules (the other one replaced by a valid
        // placeholder), so a bad URL is reported even when the token is missing too.
        let url = read(URL_VAR);
        match &url {
            None => problems.push((URL_VAR, format!("{URL_VAR} is missing"))),
            Some(url) => {
                if let Err(e) = Client::with_transport(url, "placeholder", Unused) {
                    problems.push((URL_VAR, e.to_string()));
                }
            }
        }
        let token = read(TOKEN_VAR);
        match &token {
            None => problems.push((TOKEN_VAR, format!("{TOKEN_VAR} is missing"))),
            Some(token) => {
                if let Err(e) = Client::with_transport("https://placeholder.invalid", token, Unused)
                {
                    problems.push((TOKEN_VAR, e.to_string()));
                }
            }
        }

        let redis_timeout_ms = match read(TIMEOUT_VAR) {
            None => DEFAULT_TIMEOUT_MS,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => ms,
                _ => {
                    problems.push((
                        TIMEOUT_VAR,
                        format!(
                            "{TIMEOUT_VAR} must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}, got {:?}",
                            shorten(&text)
                        ),
                    ));
                    DEFAULT_TIMEOUT_MS
                }
            },
        };

        let mut cors_origins = Vec::new();
        if let Some(list) = read(CORS_VAR) {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match Origin::parse(item) {
                    Ok(origin) => {
                        if !cors_origins.contains(&origin) {
                            cors_origins.push(origin);
                        }
                    }
                    Err(why) => problems.push((CORS_VAR, format!("{CORS_VAR}: {why}"))),
                }
            }
        }

        let metrics_token = read(METRICS_TOKEN_VAR).map(|t| t.trim().to_owned());
        if let Some(t) = &metrics_token
            && !t.bytes().all(|b| b.is_ascii_graphic())
        {
            problems.push((
                METRICS_TOKEN_VAR,
                format!("{METRICS_TOKEN_VAR} must be printable ASCII without spaces"),
            ));
        }

        let metrics = MetricsSettings {
            flush_ms: number(
                &read,
                METRICS_FLUSH_VAR,
                DEFAULT_METRICS_FLUSH_MS,
                |ms| *ms == 0 || (1_000..=3_600_000).contains(ms),
                "0 (off) or a whole number of milliseconds from 1000 to 3600000",
                &mut problems,
            ),
            key: read(METRICS_KEY_VAR)
                .map_or_else(|| DEFAULT_METRICS_KEY.to_owned(), |k| k.trim().to_owned()),
        };
        let session = session_settings(&read, &cors_origins, &mut problems);
        let lookup = lookup_settings(&read, &mut problems);
        let ratelimit = ratelimit_settings(&read, &mut problems);

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            redis_url: url.unwrap_or_default(),
            redis_token: token.unwrap_or_default(),
            redis_timeout_ms,
            cors_origins,
            metrics_token,
            metrics,
            session,
            lookup,
            ratelimit,
        })
    }

    /// Reads the Worker's env (vars first, then secrets).
    #[cfg(target_arch = "wasm32")]
    pub fn from_env(env: &worker::Env) -> Result<Config, ConfigError> {
        Config::from_vars(|name| {
            env.var(name)
                .map(|v| v.to_string())
                .or_else(|_| env.secret(name).map(|v| v.to_string()))
                .ok()
        })
    }
}

/// The session settings; their problems join the others.
fn session_settings(
    read: &impl Fn(&str) -> Option<String>,
    cors_origins: &[Origin],
    problems: &mut Vec<(&'static str, String)>,
) -> SessionSettings {
    let defaults = Lifetimes::default();
    let mut seconds = |name: &'static str, default_ms: u64| match read(name) {
        None => default_ms,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(s) if s > 0 => s.saturating_mul(1000),
            _ => {
                problems.push((
                    name,
                    format!(
                        "{name} must be a positive whole number of seconds, got {:?}",
                        shorten(&text)
                    ),
                ));
                default_ms
            }
        },
    };
    let idle = seconds(SESSION_IDLE_VAR, defaults.idle_ms());
    let absolute = seconds(SESSION_ABSOLUTE_VAR, defaults.absolute_ms());
    let lifetimes = Lifetimes::new(idle, absolute).unwrap_or_else(|e| {
        problems.push((SESSION_IDLE_VAR, format!("{SESSION_IDLE_VAR}: {e}")));
        defaults
    });
    let insecure_cookie = match read(SESSION_INSECURE_VAR) {
        None => false,
        Some(text) => match text.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                problems.push((
                    SESSION_INSECURE_VAR,
                    format!(
                        "{SESSION_INSECURE_VAR} must be true or false, got {:?}",
                        shorten(&text)
                    ),
                ));
                false
            }
        },
    };
    let mut allowed_origins = cors_origins.to_vec();
    if let Some(list) = read(SESSION_ORIGINS_VAR) {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match Origin::parse(item) {
                Ok(origin) if !allowed_origins.contains(&origin) => allowed_origins.push(origin),
                Ok(_) => {}
                Err(why) => {
                    problems.push((SESSION_ORIGINS_VAR, format!("{SESSION_ORIGINS_VAR}: {why}")))
                }
            }
        }
    }
    SessionSettings {
        store: SessionConfig {
            lifetimes,
            ..SessionConfig::default()
        },
        insecure_cookie,
        allowed_origins,
    }
}

/// A number within `range`, or `default` when unset; a problem otherwise.
fn number<N>(
    read: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: N,
    valid: impl Fn(&N) -> bool,
    expected: &str,
    problems: &mut Vec<(&'static str, String)>,
) -> N
where
    N: std::str::FromStr,
{
    let Some(text) = read(name) else {
        return default;
    };
    match text.trim().parse::<N>() {
        Ok(n) if valid(&n) => n,
        _ => {
            problems.push((
                name,
                format!("{name} must be {expected}, got {:?}", shorten(&text)),
            ));
            default
        }
    }
}

/// The lookup demo's settings; their problems join the others.
fn lookup_settings(
    read: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<(&'static str, String)>,
) -> LookupSettings {
    const MS: &str = "a whole number of milliseconds";
    let origin_latency_ms = number(
        read,
        "DEMO_ORIGIN_LATENCY_MS",
        300u32,
        |n| *n <= 60_000,
        "a whole number of milliseconds up to 60000",
        problems,
    );
    let origin_failure_rate = number(
        read,
        "DEMO_ORIGIN_FAILURE_RATE",
        0.0f64,
        |r| (0.0..=1.0).contains(r),
        "a number from 0 to 1",
        problems,
    );
    let origin_url = read(ORIGIN_URL_VAR).and_then(|url| {
        check_http_url(ORIGIN_URL_VAR, &url)
            .map_err(|why| problems.push((ORIGIN_URL_VAR, why)))
            .ok()
    });
    let policy = Policy::new("lookup")
        .ttl_ms(number(
            read,
            "CACHE_TTL_MS",
            30_000u64,
            |n| *n > 0,
            "a positive whole number of milliseconds",
            problems,
        ))
        .grace_ms(number(
            read,
            "CACHE_GRACE_MS",
            300_000u64,
            |_| true,
            MS,
            problems,
        ))
        .negative_ttl_ms(number(
            read,
            "CACHE_NEGATIVE_TTL_MS",
            10_000u64,
            |_| true,
            MS,
            problems,
        ))
        .deadline_ms(number(
            read,
            "CACHE_DEADLINE_MS",
            150u32,
            |n| (1..=30_000).contains(n),
            "a whole number of milliseconds from 1 to 30000",
            problems,
        ))
        .memory_ttl_ms(number(
            read,
            "CACHE_MEMORY_TTL_MS",
            0u64,
            |_| true,
            MS,
            problems,
        ));
    LookupSettings {
        origin_latency_ms,
        origin_failure_rate,
        origin_url,
        policy,
    }
}

/// The rate-limit settings; their problems join the others.
fn ratelimit_settings(
    read: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<(&'static str, String)>,
) -> RateLimitSettings {
    use redge::ratelimit::{DEFAULT_PREFIX, DEFAULT_TIMEOUT_MS, config};
    const POLICIES: &str = "RATELIMIT_POLICIES";
    const FAILURE: &str = "RATELIMIT_FAILURE";
    const LEGACY: &str = "RATELIMIT_LEGACY_HEADERS";
    const ROUTES: &str = "RATELIMIT_ROUTES";
    let mut policies = match read(POLICIES) {
        None => config::default_policies(),
        Some(text) => config::parse_policies(&text).unwrap_or_else(|e| {
            problems.push((POLICIES, format!("{POLICIES}: {e}")));
            config::default_policies()
        }),
    };
    let failure = match read(FAILURE) {
        None => FailurePolicy::default(),
        Some(name) => FailurePolicy::parse(&name).unwrap_or_else(|| {
            problems.push((
                FAILURE,
                format!(
                    "{FAILURE} must be open, closed or local, got {:?}",
                    shorten(&name)
                ),
            ));
            FailurePolicy::default()
        }),
    };
    let timeout_ms = number(
        read,
        "RATELIMIT_TIMEOUT_MS",
        DEFAULT_TIMEOUT_MS,
        |ms| (1..=MAX_TIMEOUT_MS).contains(ms),
        "a whole number of milliseconds from 1 to 30000",
        problems,
    );
    let legacy_headers = match read(LEGACY).as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            problems.push((
                LEGACY,
                format!("{LEGACY} must be true or false, got {:?}", shorten(other)),
            ));
            false
        }
    };
    let prefix =
        read("RATELIMIT_PREFIX").map_or_else(|| DEFAULT_PREFIX.to_owned(), |p| p.trim().to_owned());
    let routes = match read(ROUTES) {
        None => {
            // The default routes spend from `api`: policies configured without one get the default.
            if !policies.iter().any(|p| p.name == DEFAULT_ROUTE_POLICY) {
                policies.push(config::default_route_policy());
            }
            RouteLimits::default_for(&policies)
        }
        Some(text) => RouteLimits::parse(&text, &policies),
    }
    .unwrap_or_else(|e| {
        problems.push((ROUTES, e));
        RouteLimits::default()
    });
    let client_ip = read(TRUSTED_HEADER_VAR).map_or_else(Trust::default, |text| {
        Trust::parse(&text).unwrap_or_else(|e| {
            problems.push((TRUSTED_HEADER_VAR, e));
            Trust::default()
        })
    });
    RateLimitSettings {
        policies,
        failure,
        timeout_ms,
        prefix,
        legacy_headers,
        routes,
        client_ip,
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

/// A transport that is never used: it lets [`Config::from_vars`] run the client's URL and token checks
/// without a runtime.
struct Unused;

impl Transport for Unused {
    async fn send(&self, _request: HttpRequest) -> redge::Result<HttpResponse> {
        Err(redge::Error::Transport(
            "configuration check only; nothing is sent".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn shown(origins: &[Origin]) -> Vec<String> {
        origins.iter().map(Origin::to_string).collect()
    }

    const GOOD: &[(&str, &str)] = &[
        (URL_VAR, "https://eu1.example.io/"),
        (TOKEN_VAR, "secret-token"),
    ];

    #[test]
    fn the_minimal_configuration_takes_defaults() {
        let config = Config::from_vars(vars(GOOD)).unwrap();
        assert_eq!(config.redis_url, "https://eu1.example.io/");
        assert_eq!(config.redis_timeout_ms, DEFAULT_TIMEOUT_MS);
        assert!(config.cors_origins.is_empty());
        assert_eq!(config.metrics_token, None);
    }

    #[test]
    fn every_problem_is_listed_in_one_error() {
        let err = Config::from_vars(vars(&[
            (TOKEN_VAR, "  "),
            (TIMEOUT_VAR, "0"),
            (
                CORS_VAR,
                "https://ok.example, *, ftp://x.example, https://a.example/path",
            ),
            (METRICS_TOKEN_VAR, "has space"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                URL_VAR,
                TOKEN_VAR,
                TIMEOUT_VAR,
                CORS_VAR,
                CORS_VAR,
                CORS_VAR,
                METRICS_TOKEN_VAR
            ]
        );
        let text = err.to_string();
        assert!(
            text.starts_with("the Worker is misconfigured (7 problems): "),
            "{text}"
        );
        for name in [URL_VAR, TOKEN_VAR, TIMEOUT_VAR, CORS_VAR, METRICS_TOKEN_VAR] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        assert!(text.contains("wrangler secret put"), "{text}");
    }

    #[test]
    fn the_url_and_token_get_the_clients_checks() {
        let err =
            Config::from_vars(vars(&[(URL_VAR, "eu1.example.io"), (TOKEN_VAR, "ok")])).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].0, URL_VAR);
        let err =
            Config::from_vars(vars(&[(URL_VAR, "https://x.io"), (TOKEN_VAR, "a b")])).unwrap_err();
        assert_eq!(err.problems[0].0, TOKEN_VAR);
        // Both wrong at once: both reported.
        let err = Config::from_vars(vars(&[(URL_VAR, "ftp://x.io")])).unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [URL_VAR, TOKEN_VAR]);
        assert!(err.problems[0].1.contains("http"), "{:?}", err.problems);
    }

    #[test]
    fn timeouts_are_bounded() {
        for (text, ok) in [
            ("1", true),
            ("30000", true),
            ("30001", false),
            ("-5", false),
            ("1.5", false),
            ("soon", false),
        ] {
            let mut pairs = GOOD.to_vec();
            pairs.push((TIMEOUT_VAR, text));
            assert_eq!(Config::from_vars(vars(&pairs)).is_ok(), ok, "{text}");
        }
    }

    #[test]
    fn origins_are_normalised_and_deduplicated() {
        let mut pairs = GOOD.to_vec();
        pairs.push((
            CORS_VAR,
            " https://App.Example.com/ ,http://localhost:8787,,https://app.example.com,http://[::1]:3000",
        ));
        let config = Config::from_vars(vars(&pairs)).unwrap();
        assert_eq!(
            shown(&config.cors_origins),
            [
                "https://app.example.com",
                "http://localhost:8787",
                "http://[::1]:3000"
            ]
        );
    }

    #[test]
    fn session_settings_are_validated_with_the_rest() {
        let mut pairs = GOOD.to_vec();
        pairs.extend([
            (CORS_VAR, "https://app.example"),
            (SESSION_ORIGINS_VAR, "https://admin.example"),
            (SESSION_INSECURE_VAR, "true"),
            (SESSION_IDLE_VAR, "600"),
        ]);
        let config = Config::from_vars(vars(&pairs)).unwrap();
        assert!(config.session.insecure_cookie);
        assert_eq!(
            shown(&config.session.allowed_origins),
            ["https://app.example", "https://admin.example"]
        );
        assert_eq!(config.session.store.lifetimes.idle_ms(), 600_000);

        let err = Config::from_vars(vars(&[
            (URL_VAR, "https://x.io"),
            (TOKEN_VAR, "t"),
            (SESSION_IDLE_VAR, "soon"),
            (SESSION_ABSOLUTE_VAR, "0"),
            (SESSION_INSECURE_VAR, "maybe"),
            (SESSION_ORIGINS_VAR, "*"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                SESSION_IDLE_VAR,
                SESSION_ABSOLUTE_VAR,
                SESSION_INSECURE_VAR,
                SESSION_ORIGINS_VAR
            ]
        );
    }

    #[test]
    fn lookup_settings_are_validated_with_the_rest() {
        let mut pairs = GOOD.to_vec();
        pairs.extend([
            ("DEMO_ORIGIN_LATENCY_MS", "25"),
            ("ORIGIN_URL", "https://origin.example/items/"),
        ]);
        let config = Config::from_vars(vars(&pairs)).unwrap();
        assert_eq!(config.lookup.origin_latency_ms, 25);
        assert_eq!(
            config.lookup.origin_url.as_deref(),
            Some("https://origin.example/items")
        );

        let mut pairs = GOOD.to_vec();
        pairs.extend([
            ("DEMO_ORIGIN_FAILURE_RATE", "1.5"),
            ("ORIGIN_URL", "ftp://x"),
            ("CACHE_TTL_MS", "0"),
            ("CACHE_DEADLINE_MS", "fast"),
        ]);
        let err = Config::from_vars(vars(&pairs)).unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "DEMO_ORIGIN_FAILURE_RATE",
                "ORIGIN_URL",
                "CACHE_TTL_MS",
                "CACHE_DEADLINE_MS"
            ]
        );
    }

    #[test]
    fn ratelimit_settings_are_validated_with_the_rest() {
        let config = Config::from_vars(vars(GOOD)).unwrap();
        assert_eq!(
            config.ratelimit.policies.len(),
            6,
            "the demo's policies and `api`"
        );
        assert_eq!(
            config
                .ratelimit
                .routes
                .policy_for(super::super::routes::Group::Lookup),
            Some("api")
        );
        assert_eq!(config.ratelimit.timeout_ms, 200);

        let mut pairs = GOOD.to_vec();
        pairs.extend([
            ("RATELIMIT_POLICIES", "{not json"),
            ("RATELIMIT_FAILURE", "sometimes"),
            ("RATELIMIT_TIMEOUT_MS", "0"),
            ("RATELIMIT_LEGACY_HEADERS", "yes please"),
            ("RATELIMIT_ROUTES", r#"{"lookup": "missing"}"#),
            (TRUSTED_HEADER_VAR, "x forwarded for"),
        ]);
        let err = Config::from_vars(vars(&pairs)).unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "RATELIMIT_POLICIES",
                "RATELIMIT_FAILURE",
                "RATELIMIT_TIMEOUT_MS",
                "RATELIMIT_LEGACY_HEADERS",
                "RATELIMIT_ROUTES",
                TRUSTED_HEADER_VAR
            ]
        );
    }

    #[test]
    fn policies_without_api_get_the_default_route_policy_unless_routes_are_set() {
        let custom = r#"[{"name": "uploads", "limit": 3, "period_s": 60}]"#;
        let mut pairs = GOOD.to_vec();
        pairs.push(("RATELIMIT_POLICIES", custom));
        let config = Config::from_vars(vars(&pairs)).unwrap();
        let names: Vec<&str> = config
            .ratelimit
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["uploads", "api"]);
        assert_eq!(
            config
                .ratelimit
                .routes
                .policy_for(super::super::routes::Group::Session),
            Some("api")
        );

        pairs.push(("RATELIMIT_ROUTES", r#"{"session": "uploads"}"#));
        let config = Config::from_vars(vars(&pairs)).unwrap();
        assert_eq!(
            config.ratelimit.policies.len(),
            1,
            "nothing added when the routes are set"
        );
        assert_eq!(
            config
                .ratelimit
                .routes
                .policy_for(super::super::routes::Group::Lookup),
            None
        );
    }

    #[test]
    fn bad_origins_are_explained() {
        for bad in [
            "*",
            "null",
            "app.example.com",
            "https://",
            "https://*.example.com",
            "https://a.example/x",
            "https://a.example?x",
            "https://a.example:0",
            "https://a.example:99999",
            "https://a.example:port",
            "https://user@a.example",
            "https://a_b.example",
            "https://[::1",
            "https://[::1]x",
        ] {
            let mut pairs = GOOD.to_vec();
            pairs.push((CORS_VAR, bad));
            let err = Config::from_vars(vars(&pairs)).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{bad}: {err}");
            assert_eq!(err.problems[0].0, CORS_VAR);
            assert!(err.problems[0].1.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn a_credential_in_a_url_variable_is_named_but_never_repeated() {
        const PASSWORD: &str = "AZx9-pa55word";
        let cases = [
            (
                URL_VAR,
                format!("redis://default:{PASSWORD}@eu1.example.io:6379"),
            ),
            (
                URL_VAR,
                format!("https://default:{PASSWORD}@eu1.example.io"),
            ),
            (
                ORIGIN_URL_VAR,
                format!("https://api:{PASSWORD}@origin.example/items"),
            ),
            (
                ORIGIN_URL_VAR,
                format!("rediss://:{PASSWORD}@origin.example:6380"),
            ),
        ];
        for (var, url) in cases {
            let mut pairs = GOOD.to_vec();
            pairs.retain(|(name, _)| *name != var);
            pairs.push((var, url.as_str()));
            let err = Config::from_vars(vars(&pairs)).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{err}");
            assert_eq!(err.problems[0].0, var);
            let text = err.to_string();
            assert!(text.contains(var), "{text}");
            assert!(!text.contains(PASSWORD), "{text}");
            assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
        }
    }

    #[test]
    fn debug_shows_no_token() {
        let mut pairs = GOOD.to_vec();
        pairs.push((METRICS_TOKEN_VAR, "metrics-SECRET"));
        let config = Config::from_vars(vars(&pairs)).unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("eu1.example.io"), "{shown}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(!shown.contains("metrics-SECRET"), "{shown}");
    }
}

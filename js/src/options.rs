//! The options objects JavaScript passes in, and their validation into redge's own types. Pure: the same
//! structs are read with serde-wasm-bindgen in JavaScript and with serde_json in the native tests.
//!
//! Every struct refuses unknown fields, so a typo (`timeout` for `timeoutMs`) is an error that names the
//! field instead of a silent default.

use serde::Deserialize;

use redge::cache::{CacheOptions as RedgeCacheOptions, Policy};
use redge::client::Options;
use redge::ratelimit::{Algorithm, FailurePolicy, Policy as RatePolicy, Quota};
use redge::session::{CookieConfig, Lifetimes, SessionConfig};

/// The longest deadline a client accepts, in ms: longer than any edge request should wait for Redis.
pub const MAX_TIMEOUT_MS: u32 = 60_000;

/// `new Client({ url, token, timeoutMs, retries, retryWrites })`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientOptions {
    /// The service's base URL.
    pub url: String,
    /// Its bearer token.
    pub token: String,
    /// See [`ClientTuning::timeout_ms`].
    pub timeout_ms: Option<u32>,
    /// See [`ClientTuning::retries`].
    pub retries: Option<u8>,
    /// See [`ClientTuning::retry_writes`].
    pub retry_writes: Option<bool>,
}

impl ClientOptions {
    /// The options besides the URL and token.
    pub fn tuning(&self) -> ClientTuning {
        ClientTuning {
            timeout_ms: self.timeout_ms,
            retries: self.retries,
            retry_writes: self.retry_writes,
        }
    }
}

/// The options `Client.fromEnv(env, options)` takes besides the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTuning {
    /// Deadline of one call, retries included (default 1000).
    pub timeout_ms: Option<u32>,
    /// Retries of failed reads, 0 to 2 (default 2).
    pub retries: Option<u8>,
    /// Also retry writes whose response was lost (default false).
    pub retry_writes: Option<bool>,
}

impl ClientTuning {
    /// The client options.
    ///
    /// # Errors
    /// A message naming the out-of-range option.
    pub fn options(&self) -> Result<Options, String> {
        let mut options = Options::default();
        if let Some(ms) = self.timeout_ms {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(format!(
                    "timeoutMs must be 1 to {MAX_TIMEOUT_MS} (milliseconds), got {ms}"
                ));
            }
            options.timeout_ms = ms;
        }
        if let Some(retries) = self.retries {
            if retries > redge::client::MAX_RETRIES {
                return Err(format!(
                    "retries must be 0 to {}, got {retries}",
                    redge::client::MAX_RETRIES
                ));
            }
            options.retries = retries;
        }
        options.retry_writes = self.retry_writes.unwrap_or(false);
        Ok(options)
    }
}

/// One rate-limit policy: `{ name, algorithm, limit, periodMs, burst }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyOptions {
    /// 1 to 64 of `a-z 0-9 _ -`.
    pub name: String,
    /// See [`QuotaOptions::algorithm`].
    pub algorithm: Option<String>,
    /// See [`QuotaOptions::limit`].
    pub limit: Option<u64>,
    /// See [`QuotaOptions::period_ms`].
    pub period_ms: Option<u64>,
    /// See [`QuotaOptions::burst`].
    pub burst: Option<u64>,
}

impl PolicyOptions {
    fn quota(&self) -> QuotaOptions {
        QuotaOptions {
            algorithm: self.algorithm.clone(),
            limit: self.limit,
            period_ms: self.period_ms,
            burst: self.burst,
        }
    }
}

/// A quota: `{ algorithm, limit, periodMs, burst }`.
#[derive(Debug, Default)]
pub struct QuotaOptions {
    /// `gcra` (default), `slidingWindow`, `fixedWindow` or `tokenBucket`.
    pub algorithm: Option<String>,
    /// Requests per period.
    pub limit: Option<u64>,
    /// The period in ms.
    pub period_ms: Option<u64>,
    /// Requests allowed at once (GCRA and token bucket; default `limit`).
    pub burst: Option<u64>,
}

/// `new RateLimiter(client, options)`: either `policies`, or one policy's quota at the top level.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimiterOptions {
    /// Several named policies; `limit(id)` checks all of them in one round trip.
    pub policies: Option<Vec<PolicyOptions>>,
    /// One policy (named `default`): its algorithm.
    pub algorithm: Option<String>,
    /// One policy: requests per period.
    pub limit: Option<u64>,
    /// One policy: the period in ms.
    pub period_ms: Option<u64>,
    /// One policy: requests allowed at once.
    pub burst: Option<u64>,
    /// Key prefix (default `redge:rl`).
    pub prefix: Option<String>,
    /// `local` (default), `open` or `closed`: what a check answers when Redis fails.
    pub failure: Option<String>,
    /// How long a check waits for Redis before the failure policy decides (default 200).
    pub timeout_ms: Option<u32>,
    /// Also produce `X-RateLimit-Limit`, `-Remaining` and `-Reset` headers.
    pub legacy_headers: Option<bool>,
}

/// A validated limiter configuration.
#[derive(Debug)]
pub struct LimiterConfig {
    /// The policies, in order.
    pub policies: Vec<RatePolicy>,
    /// Key prefix.
    pub prefix: Option<String>,
    /// Failure policy.
    pub failure: FailurePolicy,
    /// Check deadline.
    pub timeout_ms: Option<u32>,
    /// Legacy headers.
    pub legacy_headers: bool,
}

/// Turns camelCase algorithm names into the crate's snake-case ones (`slidingWindow` -> `sliding_window`).
fn algorithm(name: &str) -> Option<Algorithm> {
    let mut snake = String::with_capacity(name.len() + 2);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    Algorithm::parse(&snake)
}

impl QuotaOptions {
    fn is_empty(&self) -> bool {
        self.algorithm.is_none()
            && self.limit.is_none()
            && self.period_ms.is_none()
            && self.burst.is_none()
    }

    fn policy(&self, name: &str) -> Result<RatePolicy, String> {
        let at = format!("policy {name:?}");
        let algorithm = match self.algorithm.as_deref() {
            None => Algorithm::Gcra,
            Some(a) => algorithm(a).ok_or_else(|| {
                format!("{at}: unknown algorithm {a:?}; use gcra, slidingWindow, fixedWindow or tokenBucket")
            })?,
        };
        let (Some(limit), Some(period_ms)) = (self.limit, self.period_ms) else {
            return Err(format!(
                "{at}: give limit and periodMs, for example {{ limit: 10, periodMs: 60000 }}"
            ));
        };
        if limit == 0 || period_ms == 0 || self.burst == Some(0) {
            return Err(format!(
                "{at}: limit, periodMs and burst must be at least 1"
            ));
        }
        let quota = Quota::new(limit, period_ms).burst(self.burst.unwrap_or(limit));
        quota.validate().map_err(|e| format!("{at}: {e}"))?;
        Ok(RatePolicy::new(name, algorithm, quota))
    }
}

impl LimiterOptions {
    /// The validated configuration.
    ///
    /// # Errors
    /// A message naming the policy and what is wrong with it.
    pub fn validate(self) -> Result<LimiterConfig, String> {
        let quota = QuotaOptions {
            algorithm: self.algorithm,
            limit: self.limit,
            period_ms: self.period_ms,
            burst: self.burst,
        };
        let policies = match (self.policies, quota.is_empty()) {
            (Some(_), false) => {
                return Err(
                    "give either policies: [...] or one policy's limit and periodMs, not both"
                        .into(),
                );
            }
            (Some(list), true) => {
                if list.is_empty() {
                    return Err("policies is empty: give at least one".into());
                }
                let mut out: Vec<RatePolicy> = Vec::with_capacity(list.len());
                for p in &list {
                    if !redge::ratelimit::is_policy_name(&p.name) {
                        return Err(format!(
                            "policy name {:?} must be 1 to 64 of a-z, 0-9, _ and -",
                            p.name
                        ));
                    }
                    if out.iter().any(|o| o.name == p.name) {
                        return Err(format!("policy {:?} is defined twice", p.name));
                    }
                    out.push(p.quota().policy(&p.name)?);
                }
                out
            }
            (None, _) => vec![quota.policy("default")?],
        };
        let failure = match self.failure.as_deref() {
            None => FailurePolicy::default(),
            Some(f) => FailurePolicy::parse(f).ok_or_else(|| {
                format!("failure must be \"local\", \"open\" or \"closed\", got {f:?}")
            })?,
        };
        if let Some(ms) = self.timeout_ms
            && (ms == 0 || ms > MAX_TIMEOUT_MS)
        {
            return Err(format!("timeoutMs must be 1 to {MAX_TIMEOUT_MS}, got {ms}"));
        }
        Ok(LimiterConfig {
            policies,
            prefix: self.prefix,
            failure,
            timeout_ms: self.timeout_ms,
            legacy_headers: self.legacy_headers.unwrap_or(false),
        })
    }
}

/// `limiter.limit(id, { cost, policies })`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitOptions {
    /// What the request costs (default 1; 0 peeks).
    pub cost: Option<u32>,
    /// Which of the limiter's policies to check (default all).
    pub policies: Option<Vec<String>>,
}

/// `limiter.reset(id, { policies })` and `limiter.peek(id, { policies })`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySelection {
    /// Which of the limiter's policies (default all).
    pub policies: Option<Vec<String>>,
}

/// `new SessionStore(client, options)`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionOptions {
    /// Idle timeout in ms (default 30 minutes).
    pub idle_ms: Option<u64>,
    /// Absolute lifetime in ms (default 12 hours).
    pub absolute_ms: Option<u64>,
    /// Key prefix (default `redge:session`).
    pub prefix: Option<String>,
    /// Cookie name without the `__Host-` prefix (default `redge_session`).
    pub cookie_name: Option<String>,
    /// Plain-HTTP development: no `__Host-` prefix and no `Secure`. Never in production.
    pub insecure_dev: Option<bool>,
    /// The largest session data, as JSON bytes (default 16 KiB).
    pub max_data_bytes: Option<usize>,
}

impl SessionOptions {
    /// The session configuration.
    ///
    /// # Errors
    /// A message for impossible lifetimes or a bad cookie name.
    pub fn config(self) -> Result<SessionConfig, String> {
        let defaults = Lifetimes::default();
        let lifetimes = Lifetimes::new(
            self.idle_ms.unwrap_or(defaults.idle_ms()),
            self.absolute_ms.unwrap_or(defaults.absolute_ms()),
        )
        .map_err(|e| e.to_string())?;
        let mut config = SessionConfig {
            lifetimes,
            ..SessionConfig::default()
        };
        if let Some(prefix) = self.prefix {
            if prefix.is_empty() {
                return Err("prefix must not be empty".into());
            }
            config.prefix = prefix;
        }
        if let Some(name) = self.cookie_name {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(format!(
                    "cookieName must be 1 to 64 of A-Z, a-z, 0-9, _ and -, got {name:?}"
                ));
            }
            config.cookie = CookieConfig {
                name,
                ..config.cookie
            };
        }
        config.cookie.insecure_dev = self.insecure_dev.unwrap_or(false);
        if let Some(max) = self.max_data_bytes {
            if max == 0 || max > 1 << 20 {
                return Err(format!("maxDataBytes must be 1 to 1048576, got {max}"));
            }
            config.max_data_bytes = max;
        }
        Ok(config)
    }
}

/// `store.signIn(user, { data, replacing })`'s options besides `data`, which is read separately as JSON
/// (any value `JSON.stringify` accepts).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInOptions {
    /// The token of the session this sign-in replaces (rotation).
    pub replacing: Option<String>,
}

/// `store.update(token, data, { expectedVersion })`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOptions {
    /// Compare-and-set: write only if the session is still at this version.
    pub expected_version: Option<u64>,
}

/// `new Cache(client, options)`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheOptions {
    /// Prefix of every key (default `cache`).
    pub namespace: Option<String>,
    /// Most entries in this isolate's memory tier (default 1000).
    pub memory_entries: Option<usize>,
    /// Most payload bytes in the memory tier (default 8 MiB).
    pub memory_bytes: Option<usize>,
}

impl CacheOptions {
    /// redge's cache options.
    ///
    /// # Errors
    /// A message for an empty namespace.
    pub fn options(self) -> Result<RedgeCacheOptions, String> {
        let mut options = RedgeCacheOptions::default();
        if let Some(ns) = self.namespace {
            redge::cache::keys::validate("namespace", &ns)?;
            options.namespace = ns;
        }
        if let Some(n) = self.memory_entries {
            options.memory_entries = n;
        }
        if let Some(n) = self.memory_bytes {
            options.memory_bytes = n;
        }
        Ok(options)
    }
}

/// A lookup's policy: `{ group, ttlMs, graceMs, negativeTtlMs, maxValueBytes, deadlineMs, leaseMs,
/// leaseWaitMs, memoryTtlMs }`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyInput {
    /// The key group, a label for metrics (default `default`).
    pub group: Option<String>,
    /// Fresh time (default 60000).
    pub ttl_ms: Option<u64>,
    /// Stale-while-revalidate window after the fresh time (default 0).
    pub grace_ms: Option<u64>,
    /// How long "not found" is remembered (default 0: never).
    pub negative_ttl_ms: Option<u64>,
    /// Bigger values are returned but not written (default 1 MiB).
    pub max_value_bytes: Option<usize>,
    /// Deadline of the cache's own round trips (default 150).
    pub deadline_ms: Option<u32>,
    /// A distributed lease on misses, for this long.
    pub lease_ms: Option<u64>,
    /// How long a lookup that lost the lease waits for the winner (default 300).
    pub lease_wait_ms: Option<u64>,
    /// Keep fresh values in this isolate's memory for this long (default 0: off).
    pub memory_ttl_ms: Option<u64>,
}

impl PolicyInput {
    /// redge's policy.
    ///
    /// # Errors
    /// A message for a zero TTL or deadline.
    pub fn policy(self) -> Result<Policy, String> {
        let mut policy = Policy::new(self.group.unwrap_or_else(|| "default".into()));
        if policy.group.is_empty() || policy.group.len() > 64 {
            return Err("group must be 1 to 64 characters".into());
        }
        if let Some(ms) = self.ttl_ms {
            if ms == 0 {
                return Err("ttlMs must be at least 1".into());
            }
            policy = policy.ttl_ms(ms);
        }
        if let Some(ms) = self.deadline_ms {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(format!(
                    "deadlineMs must be 1 to {MAX_TIMEOUT_MS}, got {ms}"
                ));
            }
            policy = policy.deadline_ms(ms);
        }
        if let Some(ms) = self.lease_ms {
            if ms == 0 {
                return Err("leaseMs must be at least 1".into());
            }
            policy = policy.lease_ms(ms);
        }
        if let Some(bytes) = self.max_value_bytes {
            if bytes > redge::cache::policy::MAX_VALUE_BYTES_LIMIT {
                return Err(format!(
                    "maxValueBytes must be at most {}, got {bytes}",
                    redge::cache::policy::MAX_VALUE_BYTES_LIMIT
                ));
            }
            policy = policy.max_value_bytes(bytes);
        }
        policy.grace_ms = self.grace_ms.unwrap_or(policy.grace_ms);
        policy.negative_ttl_ms = self.negative_ttl_ms.unwrap_or(policy.negative_ttl_ms);
        policy.lease_wait_ms = self.lease_wait_ms.unwrap_or(policy.lease_wait_ms);
        policy.memory_ttl_ms = self.memory_ttl_ms.unwrap_or(policy.memory_ttl_ms);
        Ok(policy)
    }
}

/// A tagged cache key: `{ key, tags }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaggedKey {
    /// The key.
    pub key: String,
    /// Tags that `invalidateTag` reaches.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn client_options_read_camel_case_and_refuse_typos() {
        let o: ClientOptions =
            parse(r#"{"url":"http://x","token":"t","timeoutMs":300,"retries":0}"#).unwrap();
        let options = o.tuning().options().unwrap();
        assert_eq!((options.timeout_ms, options.retries), (300, 0));
        assert!(
            parse::<ClientOptions>(r#"{"url":"http://x","token":"t","timeout":3}"#)
                .unwrap_err()
                .contains("timeout")
        );
        assert!(
            parse::<ClientOptions>(r#"{"token":"t"}"#)
                .unwrap_err()
                .contains("url")
        );
        let bad = ClientTuning {
            timeout_ms: Some(0),
            ..Default::default()
        };
        assert!(bad.options().unwrap_err().contains("timeoutMs"));
        let bad = ClientTuning {
            retries: Some(9),
            ..Default::default()
        };
        assert!(bad.options().unwrap_err().contains("retries"));
    }

    #[test]
    fn a_limiter_takes_one_quota_or_a_list_of_policies() {
        let one: LimiterOptions = parse(r#"{"limit":10,"periodMs":60000}"#).unwrap();
        let c = one.validate().unwrap();
        assert_eq!(c.policies.len(), 1);
        assert_eq!(c.policies[0].name, "default");
        assert_eq!(c.policies[0].quota.limit(), 10);

        let many: LimiterOptions = parse(
            r#"{"policies":[{"name":"burst","limit":5,"periodMs":10000},
                {"name":"daily","algorithm":"slidingWindow","limit":1000,"periodMs":86400000},
                {"name":"up","algorithm":"tokenBucket","limit":10,"periodMs":60000,"burst":3}],
               "failure":"open","legacyHeaders":true}"#,
        )
        .unwrap();
        let c = many.validate().unwrap();
        assert_eq!(c.policies[1].algorithm, Algorithm::SlidingWindow);
        assert_eq!(c.policies[2].quota.burst_size(), 3);
        assert_eq!(c.failure, FailurePolicy::Open);
        assert!(c.legacy_headers);
    }

    #[test]
    fn bad_limiter_options_say_what_is_wrong() {
        for (json, expected) in [
            (r#"{}"#, "limit and periodMs"),
            (r#"{"limit":10}"#, "periodMs"),
            (r#"{"policies":[]}"#, "empty"),
            (
                r#"{"policies":[{"name":"a","limit":1,"periodMs":1}],"limit":3}"#,
                "not both",
            ),
            (
                r#"{"policies":[{"name":"A","limit":1,"periodMs":1}]}"#,
                "a-z",
            ),
            (
                r#"{"policies":[{"name":"a","limit":1,"periodMs":1},{"name":"a","limit":1,"periodMs":1}]}"#,
                "twice",
            ),
            (r#"{"limit":1,"periodMs":1,"algorithm":"leaky"}"#, "leaky"),
            (r#"{"limit":0,"periodMs":1}"#, "at least 1"),
            (r#"{"limit":1000000000,"periodMs":100000000}"#, "too large"),
            (r#"{"limit":1,"periodMs":1,"failure":"maybe"}"#, "failure"),
            (r#"{"limit":1,"periodMs":1,"timeoutMs":0}"#, "timeoutMs"),
        ] {
            let e = parse::<LimiterOptions>(json)
                .and_then(LimiterOptions::validate)
                .unwrap_err();
            assert!(e.contains(expected), "{json}: {e}");
        }
        assert!(parse::<LimiterOptions>(r#"{"limit":1,"periodMs":1,"period":3}"#).is_err());
    }

    #[test]
    fn algorithms_accept_camel_and_snake_case() {
        assert_eq!(algorithm("slidingWindow"), Some(Algorithm::SlidingWindow));
        assert_eq!(algorithm("fixed_window"), Some(Algorithm::FixedWindow));
        assert_eq!(algorithm("token-bucket"), Some(Algorithm::TokenBucket));
        assert_eq!(algorithm("gcra"), Some(Algorithm::Gcra));
        assert_eq!(algorithm("GCRA"), None, "an upper-case G becomes _g");
    }

    #[test]
    fn session_options_validate_lifetimes_and_cookie_names() {
        let c =
            parse::<SessionOptions>(r#"{"idleMs":60000,"absoluteMs":120000,"insecureDev":true}"#)
                .unwrap()
                .config()
                .unwrap();
        assert_eq!(c.lifetimes.idle_ms(), 60_000);
        assert_eq!(c.cookie.cookie_name(), "redge_session");
        for (json, expected) in [
            (r#"{"idleMs":10}"#, "idle"),
            (r#"{"idleMs":60000,"absoluteMs":1000}"#, "absolute"),
            (r#"{"cookieName":"a b"}"#, "cookieName"),
            (r#"{"maxDataBytes":0}"#, "maxDataBytes"),
            (r#"{"prefix":""}"#, "prefix"),
        ] {
            let e = parse::<SessionOptions>(json)
                .and_then(SessionOptions::config)
                .unwrap_err();
            assert!(e.contains(expected), "{json}: {e}");
        }
    }

    #[test]
    fn cache_policies_read_every_field() {
        let p = parse::<PolicyInput>(
            r#"{"group":"items","ttlMs":30000,"graceMs":60000,"negativeTtlMs":5000,"memoryTtlMs":1000,"deadlineMs":100}"#,
        )
        .unwrap()
        .policy()
        .unwrap();
        assert_eq!(p.group, "items");
        assert_eq!(p.physical_ttl_ms(), 90_000);
        assert_eq!(
            (p.negative_ttl_ms, p.memory_ttl_ms, p.deadline_ms),
            (5_000, 1_000, 100)
        );
        assert_eq!(
            parse::<PolicyInput>("{}").unwrap().policy().unwrap(),
            Policy::new("default")
        );
        for (json, expected) in [
            (r#"{"ttlMs":0}"#, "ttlMs"),
            (r#"{"deadlineMs":0}"#, "deadlineMs"),
            (r#"{"group":""}"#, "group"),
            (r#"{"maxValueBytes":100000000}"#, "maxValueBytes"),
        ] {
            let e = parse::<PolicyInput>(json)
                .and_then(PolicyInput::policy)
                .unwrap_err();
            assert!(e.contains(expected), "{json}: {e}");
        }
        assert!(parse::<PolicyInput>(r#"{"ttl":1}"#).is_err());
    }
}

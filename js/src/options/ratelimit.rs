//! `RateLimiter` options: one quota or named policies, and the per-call options.

use serde::Deserialize;

use redge::ratelimit::{Algorithm, FailurePolicy, Policy as RatePolicy, Quota};

use super::MAX_TIMEOUT_MS;

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
    /// `gcra` (default), `slidingWindow`, `fixedWindow`, `tokenBucket` or `slidingLog`.
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
                format!("{at}: unknown algorithm {a:?}; use gcra, slidingWindow, fixedWindow, tokenBucket or slidingLog")
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
        algorithm
            .validate(&quota)
            .map_err(|e| format!("{at}: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
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
        assert_eq!(algorithm("slidingLog"), Some(Algorithm::SlidingLog));
        assert_eq!(algorithm("fixed_window"), Some(Algorithm::FixedWindow));
        assert_eq!(algorithm("token-bucket"), Some(Algorithm::TokenBucket));
        assert_eq!(algorithm("gcra"), Some(Algorithm::Gcra));
        assert_eq!(algorithm("GCRA"), None, "an upper-case G becomes _g");
    }
}

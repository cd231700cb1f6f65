//! `RateLimiter` options: one quota or named policies, and the per-call options.
//!
//! A policy is the library's [`PolicySpec`], the object the Worker's `RATELIMIT_POLICIES` lists too, so
//! both accept the same spellings (`periodMs` or `period_ms`, `period: "1m"`, `slidingWindow` or
//! `sliding_window`) and refuse the same mistakes with the same words.

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use redge::ratelimit::config::{PolicySpec, policies_from_specs};
use redge::ratelimit::lease::{LeaseConfig, leaseable};
use redge::ratelimit::{FailurePolicy, Policy as RatePolicy};

use super::MAX_TIMEOUT_MS;

/// `new RateLimiter(client, options)`: either `policies`, or one policy's quota at the top level.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimiterOptions {
    /// Several named policies; `limit(id)` checks all of them in one round trip.
    pub policies: Option<Vec<PolicySpec>>,
    /// One policy (named `default`): its algorithm.
    pub algorithm: Option<String>,
    /// One policy: requests per period.
    pub limit: Option<u64>,
    /// One policy: the period as a duration (`"1m"`, `"10 s"`), instead of `periodMs`.
    pub period: Option<String>,
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
    /// Decide hot identifiers of fixed-window policies from leased quota: `true`, or the settings.
    pub leases: Option<LeaseSetting>,
}

/// `leases`: `true` (the defaults), `false` (off), or an object of the settings to change
/// (`hotAfter`, `maxPercent`, `renewEveryMs`, `maxSkewMs`, `timeoutMs`; snake case too), each checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSetting(pub Option<LeaseConfig>);

impl<'de> Deserialize<'de> for LeaseSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LeaseVisitor)
    }
}

/// The settings `leases` may name, for messages.
const LEASE_FIELDS: &str = "`hotAfter`, `maxPercent`, `renewEveryMs`, `maxSkewMs`, `timeoutMs`";

struct LeaseVisitor;

impl<'de> Visitor<'de> for LeaseVisitor {
    type Value = LeaseSetting;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leases: true, false, or an object of {LEASE_FIELDS}")
    }

    fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<LeaseSetting, E> {
        Ok(LeaseSetting(on.then(LeaseConfig::default)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeaseSetting, A::Error> {
        let mut config = LeaseConfig::default();
        while let Some(key) = map.next_key::<String>()? {
            let bad = |e: A::Error| A::Error::custom(format!("leases.{key}: {e}"));
            match key.as_str() {
                "hotAfter" | "hot_after" => config.hot_after = map.next_value().map_err(bad)?,
                "maxPercent" | "max_percent" => {
                    config.max_percent = map.next_value().map_err(bad)?
                }
                "renewEveryMs" | "renew_every_ms" => {
                    config.renew_every_ms = map.next_value().map_err(bad)?;
                }
                "maxSkewMs" | "max_skew_ms" => {
                    config.max_skew_ms = map.next_value().map_err(bad)?
                }
                "timeoutMs" | "timeout_ms" => config.timeout_ms = map.next_value().map_err(bad)?,
                other => {
                    let other: String = other.chars().take(80).collect();
                    return Err(A::Error::custom(format!(
                        "leases: unknown field `{other}`, expected one of {LEASE_FIELDS}"
                    )));
                }
            }
        }
        config.validate().map_err(A::Error::custom)?;
        Ok(LeaseSetting(Some(config)))
    }
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
    /// Leasing, when on.
    pub leases: Option<LeaseConfig>,
}

impl LimiterOptions {
    /// The validated configuration.
    ///
    /// # Errors
    /// A message naming the policy and what is wrong with it.
    pub fn validate(self) -> Result<LimiterConfig, String> {
        let one = PolicySpec {
            name: "default".into(),
            algorithm: self.algorithm,
            limit: self.limit,
            period: self.period,
            period_ms: self.period_ms,
            period_s: None,
            burst: self.burst,
        };
        let quota_given = one
            != PolicySpec {
                name: one.name.clone(),
                ..PolicySpec::default()
            };
        let policies = match self.policies {
            Some(_) if quota_given => {
                return Err(
                    "give either policies: [...] or one policy's limit and period, not both".into(),
                );
            }
            Some(list) => policies_from_specs(&list)?,
            None => vec![
                one.policy()
                    .map_err(|e| format!("policy \"default\": {e}"))?,
            ],
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
        let leases = self.leases.and_then(|l| l.0);
        if leases.is_some() && !policies.iter().any(|p| leaseable(p.algorithm)) {
            return Err(
                "leases apply to fixedWindow policies only, and this limiter has none: \
                 use a fixedWindow policy for the hot route, or leave leases out"
                    .into(),
            );
        }
        Ok(LimiterConfig {
            policies,
            prefix: self.prefix,
            failure,
            timeout_ms: self.timeout_ms,
            legacy_headers: self.legacy_headers.unwrap_or(false),
            leases,
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
    use redge::ratelimit::Algorithm;

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
            (r#"{}"#, "limit and a period"),
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
    fn leases_are_true_false_or_checked_settings_for_fixed_windows() {
        let window = r#""limit":1000,"periodMs":60000,"algorithm":"fixedWindow""#;
        let read = |leases: &str| {
            parse::<LimiterOptions>(&format!("{{{window},\"leases\":{leases}}}"))
                .and_then(LimiterOptions::validate)
                .map(|c| c.leases)
        };
        assert_eq!(read("true"), Ok(Some(LeaseConfig::default())));
        assert_eq!(read("false"), Ok(None));
        let tuned = read(r#"{"hotAfter":5,"maxPercent":20,"renew_every_ms":500}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (tuned.hot_after, tuned.max_percent, tuned.renew_every_ms),
            (5, 20, 500)
        );
        assert_eq!(tuned.timeout_ms, LeaseConfig::default().timeout_ms);
        for (leases, expected) in [
            (r#"{"hotAfer":5}"#, "unknown field `hotAfer`"),
            (r#"{"maxPercent":0}"#, "max_percent"),
            (r#"{"maxPercent":300}"#, "leases.maxPercent"),
            (r#"{"hotAfter":0}"#, "at least 1"),
            (r#""on""#, "true, false, or an object"),
        ] {
            let e = read(leases).unwrap_err();
            assert!(e.contains(expected), "{leases}: {e}");
        }
        let gcra = parse::<LimiterOptions>(r#"{"limit":10,"periodMs":1000,"leases":true}"#)
            .and_then(LimiterOptions::validate)
            .unwrap_err();
        assert!(gcra.contains("fixedWindow"), "{gcra}");
    }

    /// The forms the READMEs and the example Worker show (`60_000` is JavaScript for 60000), and the
    /// Worker's spelling of the same policies.
    #[test]
    fn documented_and_worker_spellings_are_accepted() {
        for json in [
            r#"{"limit":60,"periodMs":60000}"#,
            r#"{"limit":60,"period":"1m"}"#,
            r#"{"limit":60,"period":"60 s"}"#,
            r#"{"limit":60,"periodMs":60000,"algorithm":"slidingWindow","prefix":"example:rl"}"#,
            r#"{"policies":[{"name":"default","limit":60,"periodMs":60000}]}"#,
            r#"{"policies":[{"name":"default","limit":60,"period_ms":60000}]}"#,
            r#"{"policies":[{"name":"default","limit":60,"period_s":60,"algorithm":"gcra"}]}"#,
            r#"{"policies":[{"name":"default","limit":60,"period":"1m"}]}"#,
        ] {
            let c = parse::<LimiterOptions>(json)
                .and_then(LimiterOptions::validate)
                .unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(c.policies[0].name, "default", "{json}");
            assert_eq!(c.policies[0].quota.limit(), 60, "{json}");
            assert_eq!(c.policies[0].quota.period_ms(), 60_000, "{json}");
        }
        for (json, expected) in [
            (r#"{"limit":1,"period":"1 min"}"#, "not a duration"),
            (r#"{"limit":1,"period":"1m","periodMs":60000}"#, "once"),
            (
                r#"{"policies":[{"name":"a","limit":1,"period":"1m"}],"period":"1m"}"#,
                "not both",
            ),
        ] {
            let e = parse::<LimiterOptions>(json)
                .and_then(LimiterOptions::validate)
                .unwrap_err();
            assert!(e.contains(expected), "{json}: {e}");
        }
    }
}

//! Policies from configuration: one spec and one parser for a Worker variable (`RATELIMIT_POLICIES`)
//! and the npm package's `RateLimiter` options, so a policy written for one means the same in the other.
//!
//! A policy is an object ([`PolicySpec`]); a list of them is a JSON array:
//!
//! ```json
//! [{"name": "burst", "algorithm": "gcra", "limit": 5, "period": "10 s"},
//!  {"name": "api", "algorithm": "sliding_window", "limit": 100, "period_ms": 60000},
//!  {"name": "uploads", "algorithm": "tokenBucket", "limit": 10, "periodMs": 60000, "burst": 3}]
//! ```
//!
//! - `algorithm` defaults to `gcra`, in snake case or camelCase (see [`Algorithm::parse`]);
//! - `burst` defaults to `limit`;
//! - the period is given once: `period`, a duration as `@upstash/ratelimit` users write it (`"1m"`,
//!   `"10 s"`, `"500 ms"`, `"1 h"`, `"1 d"`; see [`parse_duration`]), or `period_ms` (also spelled
//!   `periodMs`, the JavaScript way), or `period_s`.

use serde::Deserialize;

pub use super::duration::parse_duration;
use super::{Algorithm, Policy, Quota, is_policy_name};

/// One policy as configuration writes it (see the [module docs](self)). Unknown fields are refused, so
/// a misspelt field is an error rather than a silent default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// 1 to 64 of `a-z 0-9 _ -`.
    pub name: String,
    /// `gcra` (default), `sliding_window`, `fixed_window`, `token_bucket` or `sliding_log`, or their
    /// camelCase spellings.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Requests per period.
    #[serde(default)]
    pub limit: Option<u64>,
    /// The period as a duration: `"1m"`, `"10 s"`, `"500 ms"`.
    #[serde(default)]
    pub period: Option<String>,
    /// The period in milliseconds.
    #[serde(default, alias = "periodMs")]
    pub period_ms: Option<u64>,
    /// The period in seconds.
    #[serde(default)]
    pub period_s: Option<u64>,
    /// Requests allowed at once (GCRA and token bucket); default `limit`.
    #[serde(default)]
    pub burst: Option<u64>,
}

/// How a missing or doubled period is explained, with every spelling accepted.
const PERIOD_FORMS: &str =
    "period (a duration such as \"1m\" or \"10 s\"), periodMs (period_ms) or period_s";

impl PolicySpec {
    /// The policy this spec describes.
    ///
    /// # Errors
    /// A message saying what is wrong (without the policy's name: callers say which policy it is).
    pub fn policy(&self) -> Result<Policy, String> {
        if !is_policy_name(&self.name) {
            return Err("the name must be 1 to 64 of a-z, 0-9, _ and -".into());
        }
        let algorithm = match self.algorithm.as_deref() {
            None => Algorithm::Gcra,
            Some(name) => Algorithm::parse(name).ok_or_else(|| {
                format!(
                    "unknown algorithm {name:?}: gcra, sliding_window, fixed_window, token_bucket or \
                     sliding_log (or camelCase, such as slidingWindow)"
                )
            })?,
        };
        let period_ms = match (&self.period, self.period_ms, self.period_s) {
            (Some(text), None, None) => parse_duration(text).map_err(|e| format!("period: {e}"))?,
            (None, Some(ms), None) => ms,
            (None, None, Some(s)) => s.saturating_mul(1_000),
            (None, None, None) => {
                return Err(format!(
                    "give limit and a period: {PERIOD_FORMS}; for example {{\"limit\": 10, \"period\": \"1m\"}}"
                ));
            }
            _ => return Err(format!("give the period once, as one of {PERIOD_FORMS}")),
        };
        let Some(limit) = self.limit else {
            return Err("give limit and a period: limit is the requests allowed per period".into());
        };
        if limit == 0 || period_ms == 0 || self.burst == Some(0) {
            return Err("limit, period and burst must be at least 1".into());
        }
        let quota = Quota::new(limit, period_ms).burst(self.burst.unwrap_or(limit));
        algorithm.validate(&quota).map_err(|e| e.to_string())?;
        Ok(Policy::new(self.name.clone(), algorithm, quota))
    }
}

/// The policies of a list of specs, in order.
///
/// # Errors
/// A message naming the first entry that is wrong (by position and name) and what is wrong with it,
/// or saying that the list is empty.
pub fn policies_from_specs(specs: &[PolicySpec]) -> Result<Vec<Policy>, String> {
    if specs.is_empty() {
        return Err("the list of rate-limit policies is empty: give at least one".into());
    }
    let mut policies: Vec<Policy> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("rate-limit policy #{i} ({:?})", spec.name);
        if policies.iter().any(|p| p.name == spec.name) {
            return Err(format!("{at}: defined twice"));
        }
        policies.push(spec.policy().map_err(|e| format!("{at}: {e}"))?);
    }
    Ok(policies)
}

/// The demo's policies when none are configured.
pub fn default_policies() -> Vec<Policy> {
    vec![
        Policy::new("burst", Algorithm::Gcra, Quota::new(5, 10_000)),
        Policy::new("sliding", Algorithm::SlidingWindow, Quota::new(20, 60_000)),
        Policy::new("fixed", Algorithm::FixedWindow, Quota::new(10, 60_000)),
        Policy::new(
            "bucket",
            Algorithm::TokenBucket,
            Quota::new(10, 60_000).burst(3),
        ),
        Policy::new("log", Algorithm::SlidingLog, Quota::new(20, 60_000)),
        default_route_policy(),
    ]
}

/// `api`: what the Worker's routes spend from by default, per client IP (GCRA, 1000 a minute, burst
/// 200): generous enough for a person (and a test suite) clicking through the demo, tight enough to stop
/// a script.
pub fn default_route_policy() -> Policy {
    Policy::new("api", Algorithm::Gcra, Quota::new(1_000, 60_000).burst(200))
}

/// Parses policies from a JSON array of [`PolicySpec`]s (see the module docs).
///
/// # Errors
/// A message naming the entry and what is wrong with it.
pub fn parse_policies(text: &str) -> Result<Vec<Policy>, String> {
    let specs: Vec<PolicySpec> = serde_json::from_str(text)
        .map_err(|e| format!("rate-limit policies must be a JSON array of policy objects: {e}"))?;
    policies_from_specs(&specs)
}

/// The cost of a request from an optional JSON body `{"cost": n}`: 1 when the body is empty or has no
/// `cost`; `n` must be a whole number from 0 (a peek) to 4294967295.
///
/// # Errors
/// A message saying what the body should look like.
pub fn cost_from_body(body: &str) -> Result<u32, String> {
    if body.trim().is_empty() {
        return Ok(1);
    }
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| format!("the body must be JSON such as {{\"cost\": 2}}: {e}"))?;
    let object = value
        .as_object()
        .ok_or("the body must be a JSON object such as {\"cost\": 2}")?;
    match object.get("cost") {
        None => Ok(1),
        Some(cost) => cost
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("cost must be a whole number from 0 to 4294967295, got {cost}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_from_bodies() {
        assert_eq!(cost_from_body(""), Ok(1));
        assert_eq!(cost_from_body("{}"), Ok(1));
        assert_eq!(cost_from_body(r#"{"cost":3}"#), Ok(3));
        assert_eq!(cost_from_body(r#"{"cost":0}"#), Ok(0));
        for bad in [
            "x",
            "[1]",
            r#"{"cost":-1}"#,
            r#"{"cost":1.5}"#,
            r#"{"cost":"2"}"#,
            r#"{"cost":1e20}"#,
        ] {
            assert!(cost_from_body(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_the_documented_form() {
        let p = parse_policies(
            r#"[{"name":"burst","limit":5,"period_s":10},
                {"name":"up","algorithm":"token-bucket","limit":10,"period_ms":60000,"burst":3}]"#,
        )
        .unwrap();
        assert_eq!(
            p[0],
            Policy::new("burst", Algorithm::Gcra, Quota::new(5, 10_000))
        );
        assert_eq!(p[1].algorithm, Algorithm::TokenBucket);
        assert_eq!(p[1].quota.burst_size(), 3);
    }

    #[test]
    fn every_spelling_of_a_period_means_the_same() {
        let expected = Policy::new("api", Algorithm::Gcra, Quota::new(100, 60_000).burst(20));
        for period in [
            r#""period":"1m""#,
            r#""period":"1 m""#,
            r#""period":"60s""#,
            r#""period":"60 s""#,
            r#""period":"60000 ms""#,
            r#""period":"1.0 m""#,
            r#""period_ms":60000"#,
            r#""periodMs":60000"#,
            r#""period_s":60"#,
        ] {
            let text =
                format!(r#"[{{"name":"api","algorithm":"gcra","limit":100,{period},"burst":20}}]"#);
            assert_eq!(parse_policies(&text), Ok(vec![expected.clone()]), "{text}");
        }
        for (period, ms) in [
            ("10 s", 10_000),
            ("10s", 10_000),
            ("500 ms", 500),
            ("1 h", 3_600_000),
            ("1 d", 86_400_000),
        ] {
            let text = format!(r#"[{{"name":"a","limit":1,"period":"{period}"}}]"#);
            assert_eq!(
                parse_policies(&text).unwrap()[0].quota.period_ms(),
                ms,
                "{period}"
            );
        }
    }

    #[test]
    fn algorithms_take_either_spelling() {
        let p = parse_policies(
            r#"[{"name":"a","algorithm":"slidingWindow","limit":1,"period":"1s"},
                {"name":"b","algorithm":"sliding_window","limit":1,"period":"1s"}]"#,
        )
        .unwrap();
        assert_eq!(p[0].algorithm, Algorithm::SlidingWindow);
        assert_eq!(p[1].algorithm, Algorithm::SlidingWindow);
    }

    /// The example of the module docs, and every policy list the README shows.
    #[test]
    fn documented_examples_parse() {
        let module_example = r#"[{"name": "burst", "algorithm": "gcra", "limit": 5, "period": "10 s"},
 {"name": "api", "algorithm": "sliding_window", "limit": 100, "period_ms": 60000},
 {"name": "uploads", "algorithm": "tokenBucket", "limit": 10, "periodMs": 60000, "burst": 3}]"#;
        let p = parse_policies(module_example).unwrap();
        assert_eq!(p[0].quota.period_ms(), 10_000);
        assert_eq!(p[2].algorithm, Algorithm::TokenBucket);
        assert_eq!(p[2].quota.burst_size(), 3);

        let readme = include_str!("../../README.md");
        let examples: Vec<&str> = readme
            .split('`')
            .filter(|span| span.starts_with(r#"[{"name""#))
            .collect();
        assert!(!examples.is_empty(), "the README shows a policy list");
        for example in examples {
            assert!(parse_policies(example).is_ok(), "{example}");
        }
    }

    #[test]
    fn bad_configurations_say_what_is_wrong() {
        for (text, expected) in [
            ("{}", "JSON array"),
            ("[]", "empty"),
            (r#"[{"name":"A","limit":1,"period_s":1}]"#, "name"),
            (r#"[{"name":"a","limit":1}]"#, "period"),
            (
                r#"[{"name":"a","limit":1,"period_s":1,"period_ms":1}]"#,
                "period",
            ),
            (r#"[{"name":"a","limit":0,"period_s":1}]"#, "at least 1"),
            (
                r#"[{"name":"a","limit":1,"period_s":1,"algorithm":"leaky"}]"#,
                "leaky",
            ),
            (
                r#"[{"name":"a","limit":1,"period_s":1},{"name":"a","limit":1,"period_s":1}]"#,
                "twice",
            ),
            (
                r#"[{"name":"a","limit":1000000000,"period_s":100000}]"#,
                "too large",
            ),
            (
                r#"[{"name":"a","limit":10001,"period_s":60,"algorithm":"sliding_log"}]"#,
                "at most 10000",
            ),
            (
                r#"[{"name":"a","limit":1,"period_s":1,"extra":1}]"#,
                "extra",
            ),
            (r#"[{"name":"a","period":"1m"}]"#, "limit"),
            (
                r#"[{"name":"a","limit":1,"period":"1 min"}]"#,
                "not a duration",
            ),
            (r#"[{"name":"a","limit":1,"period":"0 s"}]"#, "1 ms"),
            (r#"[{"name":"a","limit":1,"period":60}]"#, "invalid type"),
            (
                r#"[{"name":"a","limit":1,"period":"1m","periodMs":60000}]"#,
                "once",
            ),
        ] {
            let e = parse_policies(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn defaults_are_valid_and_include_burst() {
        let p = default_policies();
        assert!(
            p.iter()
                .all(|p| p.algorithm.validate(&p.quota).is_ok() && is_policy_name(&p.name))
        );
        assert_eq!(p[0].name, "burst");
    }
}

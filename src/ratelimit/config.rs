//! Policies from configuration text (a Worker var such as `RATELIMIT_POLICIES`), validated with one
//! clear message.
//!
//! The text is a JSON array of objects:
//!
//! ```json
//! [{"name": "burst", "algorithm": "gcra", "limit": 5, "period_s": 10},
//!  {"name": "api", "algorithm": "sliding_window", "limit": 100, "period_ms": 60000},
//!  {"name": "uploads", "algorithm": "token_bucket", "limit": 10, "period_s": 60, "burst": 3}]
//! ```
//!
//! `algorithm` defaults to `gcra`, `burst` to `limit`; the period is given as `period_ms` or `period_s`.

use serde::Deserialize;

use super::{Algorithm, Policy, Quota, is_policy_name};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    algorithm: Option<String>,
    limit: u64,
    #[serde(default)]
    period_ms: Option<u64>,
    #[serde(default)]
    period_s: Option<u64>,
    #[serde(default)]
    burst: Option<u64>,
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

/// Parses policies from JSON (see the module docs).
///
/// # Errors
/// A message naming the entry and what is wrong with it.
pub fn parse_policies(text: &str) -> Result<Vec<Policy>, String> {
    let entries: Vec<Entry> = serde_json::from_str(text)
        .map_err(|e| format!("rate-limit policies must be a JSON array of policy objects: {e}"))?;
    if entries.is_empty() {
        return Err("rate-limit policies: the list is empty".into());
    }
    let mut policies: Vec<Policy> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("rate-limit policy #{i} ({:?})", entry.name);
        if !is_policy_name(&entry.name) {
            return Err(format!(
                "{at}: the name must be 1 to 64 of a-z, 0-9, _ and -"
            ));
        }
        if policies.iter().any(|p| p.name == entry.name) {
            return Err(format!("{at}: defined twice"));
        }
        let algorithm = match entry.algorithm.as_deref() {
            None => Algorithm::Gcra,
            Some(name) => Algorithm::parse(name).ok_or_else(|| {
                format!("{at}: unknown algorithm {name:?} (gcra, sliding_window, fixed_window, token_bucket, sliding_log)")
            })?,
        };
        let period_ms = match (entry.period_ms, entry.period_s) {
            (Some(ms), None) => ms,
            (None, Some(s)) => s.saturating_mul(1_000),
            _ => return Err(format!("{at}: give exactly one of period_ms and period_s")),
        };
        if entry.limit == 0 || period_ms == 0 || entry.burst == Some(0) {
            return Err(format!("{at}: limit, period and burst must be at least 1"));
        }
        let quota = Quota::new(entry.limit, period_ms).burst(entry.burst.unwrap_or(entry.limit));
        algorithm
            .validate(&quota)
            .map_err(|e| format!("{at}: {e}"))?;
        policies.push(Policy::new(entry.name, algorithm, quota));
    }
    Ok(policies)
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

//! HTTP headers for a [`Decision`], following draft-ietf-httpapi-ratelimit-headers (versions -10 and
//! -11): a list with one item per policy checked, each a quoted policy name with parameters.
//!
//! ```text
//! RateLimit-Policy: "burst";q=5;w=10, "daily";q=1000;w=86400
//! RateLimit: "burst";r=0;t=7, "daily";r=994;t=86400
//! Retry-After: 3                       (only when the request was refused; whole seconds, rounded up)
//! X-RateLimit-Limit: 5                 (optional legacy headers, for the deciding policy;
//! X-RateLimit-Remaining: 0              Reset is in seconds from now, as in the drafts)
//! X-RateLimit-Reset: 7
//! ```
//!
//! `q` is the limit and `w` the period in seconds (rounded up). `r` is what is left and `t` the
//! seconds until the budget is full again (rounded up). Policy names are restricted to `a-z 0-9 _ -`
//! (see [`super::key::is_policy_name`]), so they are valid structured-field strings as they are.

use super::decision::Decision;

/// `RateLimit-Policy`.
pub const POLICY: &str = "RateLimit-Policy";
/// `RateLimit`.
pub const RATELIMIT: &str = "RateLimit";
/// `Retry-After`.
pub const RETRY_AFTER: &str = "Retry-After";

fn seconds_up(ms: u64) -> u64 {
    ms.div_ceil(1_000)
}

/// The `RateLimit-Policy` value.
pub fn policy_value(decision: &Decision) -> String {
    decision
        .policies
        .iter()
        .map(|p| {
            format!(
                "\"{}\";q={};w={}",
                p.policy,
                p.limit,
                seconds_up(p.period_ms).max(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `RateLimit` value.
pub fn ratelimit_value(decision: &Decision) -> String {
    decision
        .policies
        .iter()
        .map(|p| {
            format!(
                "\"{}\";r={};t={}",
                p.policy,
                p.remaining,
                seconds_up(p.reset_ms)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `Retry-After` value (whole seconds, rounded up, at least 1) when the request was refused.
pub fn retry_after_value(decision: &Decision) -> Option<String> {
    (!decision.allowed).then(|| seconds_up(decision.retry_after_ms).max(1).to_string())
}

/// Every header for the decision, with the legacy `X-RateLimit-*` trio when `legacy` is set.
pub fn headers(decision: &Decision, legacy: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(6);
    if !decision.policies.is_empty() {
        out.push((POLICY, policy_value(decision)));
        out.push((RATELIMIT, ratelimit_value(decision)));
    }
    if let Some(retry) = retry_after_value(decision) {
        out.push((RETRY_AFTER, retry));
    }
    if legacy {
        out.push(("X-RateLimit-Limit", decision.limit.to_string()));
        out.push(("X-RateLimit-Remaining", decision.remaining.to_string()));
        out.push(("X-RateLimit-Reset", decision.reset_s().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{PolicyStatus, Reason};

    fn status(
        name: &str,
        limit: u64,
        period_ms: u64,
        remaining: u64,
        reset_ms: u64,
    ) -> PolicyStatus {
        PolicyStatus {
            policy: name.into(),
            limit,
            period_ms,
            allowed: remaining > 0,
            remaining,
            reset_ms,
            retry_after_ms: if remaining > 0 { 0 } else { 2_001 },
        }
    }

    #[test]
    fn one_policy() {
        let d = Decision::from_statuses(
            vec![status("default", 100, 60_000, 50, 30_000)],
            Reason::WithinLimit,
        );
        assert_eq!(
            headers(&d, false),
            vec![
                (POLICY, "\"default\";q=100;w=60".to_owned()),
                (RATELIMIT, "\"default\";r=50;t=30".to_owned()),
            ]
        );
    }

    #[test]
    fn several_policies_refused_with_legacy_headers() {
        let d = Decision::from_statuses(
            vec![
                status("burst", 5, 10_000, 0, 6_500),
                status("daily", 1_000, 86_400_000, 994, 86_399_001),
            ],
            Reason::LimitExceeded,
        );
        let h = headers(&d, true);
        assert_eq!(h[0].1, "\"burst\";q=5;w=10, \"daily\";q=1000;w=86400");
        assert_eq!(h[1].1, "\"burst\";r=0;t=7, \"daily\";r=994;t=86400");
        assert_eq!(
            h[2],
            (RETRY_AFTER, "3".to_owned()),
            "2001 ms rounds up to 3 s"
        );
        assert_eq!(h[3], ("X-RateLimit-Limit", "5".to_owned()));
        assert_eq!(h[4], ("X-RateLimit-Remaining", "0".to_owned()));
        assert_eq!(h[5], ("X-RateLimit-Reset", "7".to_owned()));
    }

    #[test]
    fn retry_after_is_at_least_one_second_and_sub_second_periods_round_up() {
        let mut d = Decision::from_statuses(vec![status("x", 3, 250, 0, 1)], Reason::LimitExceeded);
        d.retry_after_ms = 1;
        assert_eq!(retry_after_value(&d).as_deref(), Some("1"));
        assert_eq!(policy_value(&d), "\"x\";q=3;w=1");
        d.retry_after_ms = 3_000;
        assert_eq!(
            retry_after_value(&d).as_deref(),
            Some("3"),
            "exact seconds stay"
        );
        d.allowed = true;
        assert_eq!(retry_after_value(&d), None);
    }
}

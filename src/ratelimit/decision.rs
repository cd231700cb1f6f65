//! A [`Decision`]: whether a request passes, and everything a client needs to know about its budget.

/// Why a decision came out the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Redis was asked and every policy had budget.
    WithinLimit,
    /// Redis was asked and a policy had no budget left for this cost.
    LimitExceeded,
    /// The identifier is known (in this isolate) to be blocked until a later time: Redis was not asked.
    BlockedLocally,
    /// Redis failed or timed out, and the failure policy lets requests through.
    FailOpen,
    /// Redis failed or timed out, and the failure policy refuses requests.
    FailClosed,
    /// Redis failed or timed out, and this isolate's own limiter decided.
    LocalFallback,
    /// Units this isolate leased from Redis earlier (counted there already) paid for the request:
    /// Redis was not asked. `remaining` is an estimate (see leasing in the module docs).
    Leased,
}

impl Reason {
    /// The snake-case name used in JSON: `within_limit`, `limit_exceeded`, `blocked_locally`,
    /// `fail_open`, `fail_closed`, `local_fallback`, `leased`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::WithinLimit => "within_limit",
            Reason::LimitExceeded => "limit_exceeded",
            Reason::BlockedLocally => "blocked_locally",
            Reason::FailOpen => "fail_open",
            Reason::FailClosed => "fail_closed",
            Reason::LocalFallback => "local_fallback",
            Reason::Leased => "leased",
        }
    }

    /// Whether Redis did not take part in the decision.
    pub fn is_degraded(self) -> bool {
        matches!(
            self,
            Reason::FailOpen | Reason::FailClosed | Reason::LocalFallback
        )
    }
}

/// One policy's budget as seen by one decision (what the `RateLimit` headers list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatus {
    /// The policy's name.
    pub policy: String,
    /// Requests per window.
    pub limit: u64,
    /// The window in milliseconds.
    pub period_ms: u64,
    /// Whether this policy alone would let the request pass.
    pub allowed: bool,
    /// Requests of cost 1 still allowed now.
    pub remaining: u64,
    /// Milliseconds until this policy's budget is full again.
    pub reset_ms: u64,
    /// Milliseconds until this policy lets the request pass (0 when it does).
    pub retry_after_ms: u64,
}

/// The outcome of a check. A denial is a `Decision`, not an error.
///
/// When several policies were checked, the top-level fields come from the one that decided: the
/// rejecting policy with the longest wait, or, when all allowed, the one with the least remaining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request passes (and, for a charge, was charged by every policy).
    pub allowed: bool,
    /// The deciding policy's requests per window.
    pub limit: u64,
    /// Requests of cost 1 still allowed by the deciding policy.
    pub remaining: u64,
    /// Milliseconds until the deciding policy's budget is full again.
    pub reset_ms: u64,
    /// Exact milliseconds until this request would pass (0 when allowed).
    pub retry_after_ms: u64,
    /// The deciding policy's name.
    pub policy: String,
    /// Why.
    pub reason: Reason,
    /// Every policy checked, in the order given.
    pub policies: Vec<PolicyStatus>,
}

impl Decision {
    /// Seconds until the budget is full again, rounded up.
    pub fn reset_s(&self) -> u64 {
        self.reset_ms.div_ceil(1_000)
    }

    /// Builds the decision from every policy's status (at least one) and the reason.
    pub(crate) fn from_statuses(policies: Vec<PolicyStatus>, reason: Reason) -> Decision {
        let allowed = policies.iter().all(|p| p.allowed);
        let deciding = if allowed {
            policies.iter().min_by_key(|p| p.remaining)
        } else {
            // The longest wait; the first one on ties (max_by_key would pick the last).
            policies
                .iter()
                .filter(|p| !p.allowed)
                .fold(None::<&PolicyStatus>, |best, p| match best {
                    Some(b) if b.retry_after_ms >= p.retry_after_ms => Some(b),
                    _ => Some(p),
                })
        };
        let d = deciding.cloned().unwrap_or(PolicyStatus {
            policy: String::new(),
            limit: 0,
            period_ms: 0,
            allowed,
            remaining: 0,
            reset_ms: 0,
            retry_after_ms: 0,
        });
        Decision {
            allowed,
            limit: d.limit,
            remaining: d.remaining,
            reset_ms: d.reset_ms,
            retry_after_ms: if allowed { 0 } else { d.retry_after_ms },
            policy: d.policy,
            reason,
            policies,
        }
    }
}

/// The JSON form: `{"allowed","limit","remaining","reset_s","reset_ms","retry_after_ms","policy","reason"}`.
impl serde::Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Decision", 8)?;
        s.serialize_field("allowed", &self.allowed)?;
        s.serialize_field("limit", &self.limit)?;
        s.serialize_field("remaining", &self.remaining)?;
        s.serialize_field("reset_s", &self.reset_s())?;
        s.serialize_field("reset_ms", &self.reset_ms)?;
        s.serialize_field("retry_after_ms", &self.retry_after_ms)?;
        s.serialize_field("policy", &self.policy)?;
        s.serialize_field("reason", self.reason.name())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form() {
        let d = Decision::from_statuses(vec![status("a", false, 0, 1_200)], Reason::LimitExceeded);
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"allowed": false, "limit": 10, "remaining": 0, "reset_s": 2, "reset_ms": 1500,
                "retry_after_ms": 1200, "policy": "a", "reason": "limit_exceeded"})
        );
    }

    fn status(name: &str, allowed: bool, remaining: u64, retry: u64) -> PolicyStatus {
        PolicyStatus {
            policy: name.into(),
            limit: 10,
            period_ms: 1_000,
            allowed,
            remaining,
            reset_ms: 1_500,
            retry_after_ms: retry,
        }
    }

    #[test]
    fn the_most_restrictive_policy_decides() {
        let d = Decision::from_statuses(
            vec![status("a", true, 5, 0), status("b", true, 2, 0)],
            Reason::WithinLimit,
        );
        assert!(d.allowed);
        assert_eq!((d.policy.as_str(), d.remaining, d.reset_s()), ("b", 2, 2));
        let d = Decision::from_statuses(
            vec![
                status("a", true, 5, 0),
                status("b", false, 0, 300),
                status("c", false, 0, 900),
                status("d", false, 0, 900),
            ],
            Reason::LimitExceeded,
        );
        assert!(!d.allowed);
        assert_eq!((d.policy.as_str(), d.retry_after_ms), ("c", 900));
    }
}

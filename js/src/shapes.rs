//! What JavaScript gets back: plain objects with camelCase fields and numbers (never `BigInt`: every
//! count and timestamp here is far below 2^53). Pure: built from redge's types and tested natively.

use std::collections::BTreeMap;

use serde::Serialize;

use redge::cache::{BreakerState, Cached, GroupMetrics, Lookup, Status, Updated};
use redge::client::Json;
use redge::ratelimit::{Decision, PolicyStatus, Reason, headers};
use redge::session::{Issued, Loaded, Revoked, Session, SessionSummary, Update};

/// A rate-limit decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionShape {
    /// Whether the request passes (and was charged).
    pub allowed: bool,
    /// The deciding policy's requests per period.
    pub limit: f64,
    /// Requests of cost 1 still allowed by the deciding policy.
    pub remaining: f64,
    /// When the deciding policy's budget is full again: Unix time in ms.
    pub reset: f64,
    /// Milliseconds until this request would pass (0 when allowed).
    pub retry_after: f64,
    /// Why: `withinLimit`, `limitExceeded`, `blockedLocally`, `failOpen`, `failClosed`, `localFallback`.
    pub reason: &'static str,
    /// The deciding policy's name.
    pub policy: String,
    /// Every policy checked.
    pub policies: Vec<PolicyShape>,
    /// `RateLimit-Policy`, `RateLimit` and (when refused) `Retry-After`, for a `Response`.
    pub headers: BTreeMap<&'static str, String>,
}

/// One policy's part of a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyShape {
    /// The policy's name.
    pub policy: String,
    /// Requests per period.
    pub limit: f64,
    /// The period in ms.
    pub period_ms: f64,
    /// Whether this policy alone lets the request pass.
    pub allowed: bool,
    /// Requests of cost 1 still allowed.
    pub remaining: f64,
    /// When this policy's budget is full again (Unix ms).
    pub reset: f64,
    /// Milliseconds until this policy lets the request pass.
    pub retry_after: f64,
}

/// The camelCase name of a reason.
pub fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::WithinLimit => "withinLimit",
        Reason::LimitExceeded => "limitExceeded",
        Reason::BlockedLocally => "blockedLocally",
        Reason::FailOpen => "failOpen",
        Reason::FailClosed => "failClosed",
        Reason::LocalFallback => "localFallback",
        Reason::Leased => "leased",
    }
}

fn policy_shape(p: &PolicyStatus, now_ms: u64) -> PolicyShape {
    PolicyShape {
        policy: p.policy.clone(),
        limit: p.limit as f64,
        period_ms: p.period_ms as f64,
        allowed: p.allowed,
        remaining: p.remaining as f64,
        reset: now_ms.saturating_add(p.reset_ms) as f64,
        retry_after: p.retry_after_ms as f64,
    }
}

/// The JavaScript form of `decision`, taken at `now_ms`.
pub fn decision(decision: &Decision, now_ms: u64, legacy_headers: bool) -> DecisionShape {
    DecisionShape {
        allowed: decision.allowed,
        limit: decision.limit as f64,
        remaining: decision.remaining as f64,
        reset: now_ms.saturating_add(decision.reset_ms) as f64,
        retry_after: decision.retry_after_ms as f64,
        reason: reason_name(decision.reason),
        policy: decision.policy.clone(),
        policies: decision
            .policies
            .iter()
            .map(|p| policy_shape(p, now_ms))
            .collect(),
        headers: headers::headers(decision, legacy_headers)
            .into_iter()
            .collect(),
    }
}

/// A session.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionShape {
    /// The public session id (never the secret).
    pub id: String,
    /// Who signed in.
    pub user: String,
    /// Unix ms.
    pub created: f64,
    /// Unix ms of the last refresh or write.
    pub last_seen: f64,
    /// Unix ms at which the session ends without a refresh.
    pub idle_expires_at: f64,
    /// Unix ms at which it ends whatever happens.
    pub absolute_expires_at: f64,
    /// The data's version, for compare-and-set updates.
    pub version: f64,
    /// The application's data.
    pub data: serde_json::Value,
    /// Counters changed with `incr`.
    pub counters: BTreeMap<String, f64>,
}

/// The JavaScript form of a session.
pub fn session(s: &Session) -> SessionShape {
    SessionShape {
        id: s.id.to_string(),
        user: s.user.clone(),
        created: s.created as f64,
        last_seen: s.last_seen as f64,
        idle_expires_at: s.idle_expires_at as f64,
        absolute_expires_at: s.absolute_expires_at as f64,
        version: s.version as f64,
        data: s.data.clone(),
        counters: s
            .counters
            .iter()
            .map(|(k, v)| (k.clone(), *v as f64))
            .collect(),
    }
}

/// A new session: its token and the cookie that carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedShape {
    /// The token (it carries the secret: put it in the cookie only).
    pub token: String,
    /// The session.
    pub session: SessionShape,
    /// The `Set-Cookie` header value.
    pub set_cookie: String,
}

/// The JavaScript form of a new session.
pub fn issued(issued: &Issued, set_cookie: String) -> IssuedShape {
    IssuedShape {
        token: issued.token.expose(),
        session: session(&issued.session),
        set_cookie,
    }
}

/// A session read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedShape {
    /// The session.
    pub session: SessionShape,
    /// Whether this read extended it.
    pub refreshed: bool,
    /// When refreshed: the `Set-Cookie` value with the new `Max-Age`; otherwise `null`.
    pub set_cookie: Option<String>,
}

/// The JavaScript form of a loaded session.
pub fn loaded(loaded: &Loaded, set_cookie: Option<String>) -> LoadedShape {
    LoadedShape {
        session: session(&loaded.session),
        refreshed: loaded.refreshed,
        set_cookie: set_cookie.filter(|_| loaded.refreshed),
    }
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateShape {
    /// `saved`, `conflict` (the version did not match; nothing written) or `unauthenticated`.
    pub status: &'static str,
    /// The session after the update (`saved`) or as it is (`conflict`); `null` when unauthenticated.
    pub session: Option<SessionShape>,
}

/// The JavaScript form of an update.
pub fn update(update: &Update) -> UpdateShape {
    match update {
        Update::Saved(l) => UpdateShape {
            status: "saved",
            session: Some(session(&l.session)),
        },
        Update::Conflict(s) => UpdateShape {
            status: "conflict",
            session: Some(session(s)),
        },
        Update::Unauthenticated => UpdateShape {
            status: "unauthenticated",
            session: None,
        },
    }
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokedShape {
    /// `ended`, `notFound` or `unauthenticated`.
    pub status: &'static str,
    /// How many sessions ended.
    pub ended: f64,
}

/// The JavaScript form of a revocation.
pub fn revoked(revoked: Revoked) -> RevokedShape {
    match revoked {
        Revoked::Ended(n) => RevokedShape {
            status: "ended",
            ended: n as f64,
        },
        Revoked::NotFound => RevokedShape {
            status: "notFound",
            ended: 0.0,
        },
        Revoked::Unauthenticated => RevokedShape {
            status: "unauthenticated",
            ended: 0.0,
        },
    }
}

/// One entry of "my sessions".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryShape {
    /// The public session id.
    pub id: String,
    /// Unix ms.
    pub created: f64,
    /// Unix ms.
    pub last_seen: f64,
    /// Unix ms.
    pub expires_at: f64,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// The JavaScript form of a session list.
pub fn summaries(list: &[SessionSummary]) -> Vec<SummaryShape> {
    list.iter()
        .map(|s| SummaryShape {
            id: s.id.to_string(),
            created: s.created as f64,
            last_seen: s.last_seen as f64,
            expires_at: s.expires_at as f64,
            current: s.current,
        })
        .collect()
}

/// A cached lookup's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupShape {
    /// The value; `null` when the origin said (or the cache remembers) "not found".
    pub value: serde_json::Value,
    /// Whether there is a value.
    pub found: bool,
    /// `hit`, `miss`, `stale`, `negative` or `bypass` (Redis skipped or failed: the origin answered).
    pub status: &'static str,
    /// Served from this isolate's memory, without a round trip.
    pub from_memory: bool,
    /// Served from the location's Cache API (the colo tier), with no round trip.
    pub from_colo: bool,
    /// This lookup called the origin.
    pub origin_called: bool,
    /// The origin failed and a stale value was served.
    pub origin_failed: bool,
    /// The value was too big to be written.
    pub oversize: bool,
    /// Milliseconds the lookup took.
    pub took_ms: f64,
}

/// The JavaScript form of a lookup of JSON values.
pub fn lookup(lookup: Lookup<Json<serde_json::Value>>) -> LookupShape {
    LookupShape {
        found: lookup.value.is_some(),
        value: lookup.value.map_or(serde_json::Value::Null, |v| v.0),
        status: status_name(lookup.status),
        from_memory: lookup.from_memory,
        from_colo: lookup.from_colo,
        origin_called: lookup.origin_called,
        origin_failed: lookup.origin_failed,
        oversize: lookup.oversize,
        took_ms: lookup.took_ms as f64,
    }
}

fn status_name(status: Status) -> &'static str {
    status.as_str()
}

/// A cache's counters in this isolate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsShape {
    /// `closed`, `open` or `halfOpen`.
    pub breaker: &'static str,
    /// Origin calls, over every group.
    pub origin_calls: f64,
    /// Per key group.
    pub groups: BTreeMap<String, GroupShape>,
}

/// One key group's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupShape {
    /// Lookups answered.
    pub lookups: f64,
    /// Fresh values from Redis.
    pub hits: f64,
    /// Fresh values from this isolate's memory.
    pub memory_hits: f64,
    /// Lookups that went to the origin.
    pub misses: f64,
    /// Stale values served.
    pub stale: f64,
    /// Remembered "not found" answers.
    pub negative: f64,
    /// Lookups that skipped or lost Redis.
    pub bypass: f64,
    /// Lookups that joined another's origin call.
    pub coalesced: f64,
    /// Origin calls (refreshes included).
    pub origin_calls: f64,
    /// Origin calls that failed.
    pub origin_errors: f64,
    /// Redis failures.
    pub cache_errors: f64,
}

/// The JavaScript form of a cache's metrics.
pub fn metrics(
    breaker: BreakerState,
    origin_calls: u64,
    groups: &BTreeMap<String, GroupMetrics>,
) -> MetricsShape {
    MetricsShape {
        breaker: match breaker {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "halfOpen",
        },
        origin_calls: origin_calls as f64,
        groups: groups
            .iter()
            .map(|(name, g)| {
                let n = |v: u64| v as f64;
                let shape = GroupShape {
                    lookups: n(g.lookups),
                    hits: n(g.hits),
                    memory_hits: n(g.memory_hits),
                    misses: n(g.misses),
                    stale: n(g.stale),
                    negative: n(g.negative),
                    bypass: n(g.bypass),
                    coalesced: n(g.coalesced),
                    origin_calls: n(g.origin_calls),
                    origin_errors: n(g.origin_errors),
                    cache_errors: n(g.cache_errors),
                };
                (name.clone(), shape)
            })
            .collect(),
    }
}

/// What `cache.get` found, or what `cache.update` did: a status and the value (`null` without one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryShape {
    /// `fresh`, `stale`, `absent` or `notCached` for `get`; `written`, `kept` or `notCached` for
    /// `update`.
    pub status: &'static str,
    /// The value: the cached one, or the one written.
    pub value: serde_json::Value,
}

/// The JavaScript form of what `get` found.
pub fn cached(cached: Cached<Json<serde_json::Value>>) -> EntryShape {
    let (status, value) = match cached {
        Cached::Fresh(v) => ("fresh", Some(v)),
        Cached::Stale(v) => ("stale", Some(v)),
        Cached::Absent => ("absent", None),
        Cached::NotCached => ("notCached", None),
    };
    entry(status, value)
}

/// The JavaScript form of what `update` did.
pub fn updated(updated: Updated<Json<serde_json::Value>>) -> EntryShape {
    let (status, value) = match updated {
        Updated::Written(v) => ("written", Some(v)),
        Updated::Kept(v) => ("kept", Some(v)),
        Updated::NotCached => ("notCached", None),
    };
    entry(status, value)
}

fn entry(status: &'static str, value: Option<Json<serde_json::Value>>) -> EntryShape {
    EntryShape {
        status,
        value: value.map_or(serde_json::Value::Null, |v| v.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, allowed: bool, remaining: u64, retry: u64) -> PolicyStatus {
        PolicyStatus {
            policy: name.into(),
            limit: 5,
            period_ms: 10_000,
            allowed,
            remaining,
            reset_ms: 4_000,
            retry_after_ms: retry,
        }
    }

    fn refused() -> Decision {
        Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_ms: 4_000,
            retry_after_ms: 1_500,
            policy: "burst".into(),
            reason: Reason::LimitExceeded,
            policies: vec![status("burst", false, 0, 1_500)],
        }
    }

    #[test]
    fn a_decision_has_absolute_reset_relative_retry_and_headers() {
        let shape = decision(&refused(), 1_000_000, false);
        let json = serde_json::to_value(&shape).unwrap();
        assert_eq!(json["allowed"], false);
        assert_eq!(json["reset"], 1_004_000.0);
        assert_eq!(json["retryAfter"], 1_500.0);
        assert_eq!(json["reason"], "limitExceeded");
        assert_eq!(json["policies"][0]["periodMs"], 10_000.0);
        assert_eq!(json["headers"]["Retry-After"], "2");
        assert_eq!(json["headers"]["RateLimit"], "\"burst\";r=0;t=4");
        assert!(json["headers"].get("X-RateLimit-Limit").is_none());
        let legacy = decision(&refused(), 0, true);
        assert_eq!(legacy.headers["X-RateLimit-Remaining"], "0");
    }

    #[test]
    fn every_reason_is_camel_case() {
        for (r, name) in [
            (Reason::WithinLimit, "withinLimit"),
            (Reason::BlockedLocally, "blockedLocally"),
            (Reason::FailOpen, "failOpen"),
            (Reason::FailClosed, "failClosed"),
            (Reason::LocalFallback, "localFallback"),
        ] {
            assert_eq!(reason_name(r), name);
        }
    }

    #[test]
    fn revocations_and_lookups() {
        assert_eq!(revoked(Revoked::Ended(3)).ended, 3.0);
        assert_eq!(revoked(Revoked::NotFound).status, "notFound");
        let shape = lookup(Lookup {
            value: None,
            status: Status::Negative,
            from_memory: false,
            from_colo: false,
            origin_called: false,
            origin_failed: false,
            oversize: false,
            took_ms: 2,
        });
        let json = serde_json::to_value(&shape).unwrap();
        assert_eq!(json["value"], serde_json::Value::Null);
        assert_eq!(
            (json["found"].clone(), json["status"].clone()),
            (false.into(), "negative".into())
        );
        assert_eq!(json["tookMs"], 2.0);
    }

    #[test]
    fn metrics_are_camel_case() {
        let mut groups = BTreeMap::new();
        groups.insert(
            "items".to_owned(),
            GroupMetrics {
                lookups: 3,
                memory_hits: 1,
                ..GroupMetrics::default()
            },
        );
        let json = serde_json::to_value(metrics(BreakerState::HalfOpen, 2, &groups)).unwrap();
        assert_eq!(json["breaker"], "halfOpen");
        assert_eq!(json["originCalls"], 2.0);
        assert_eq!(json["groups"]["items"]["memoryHits"], 1.0);
    }

    #[test]
    fn entries_have_a_status_and_a_value_or_null() {
        let value = || Json(serde_json::json!({"n": 1}));
        let json = |shape: EntryShape| serde_json::to_value(shape).unwrap();
        assert_eq!(
            json(cached(Cached::Stale(value()))),
            serde_json::json!({"status": "stale", "value": {"n": 1}})
        );
        assert_eq!(
            json(cached(Cached::NotCached)),
            serde_json::json!({"status": "notCached", "value": null})
        );
        assert_eq!(cached(Cached::Absent).status, "absent");
        assert_eq!(cached(Cached::Fresh(value())).status, "fresh");
        assert_eq!(
            json(updated(Updated::Written(value()))),
            serde_json::json!({"status": "written", "value": {"n": 1}})
        );
        assert_eq!(updated(Updated::Kept(value())).status, "kept");
        assert_eq!(updated(Updated::NotCached).value, serde_json::Value::Null);
    }
}

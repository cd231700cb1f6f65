//! Which rate-limit policy guards each route group (`RATELIMIT_ROUTES`).
//!
//! Every API request passes through the rate-limit middleware; the route's [`Group`] picks the policy it
//! spends from, keyed by the client (its address: see [`client_ip`](super::client_ip)), or none. A
//! request spends its route's [`cost`](super::routes::Route::cost): its Redis work, so a flood of
//! expensive calls runs out sooner than one of cheap reads; a route with no Redis work (the route list,
//! the metrics) is never checked, since the check would be its only Redis call. The text is a JSON
//! object from group name to policy name (`null` or absent: not limited):
//!
//! ```json
//! {"session": "api", "lookup": "api", "dashboard": "api", "ratelimit": "api", "ops": null}
//! ```
//!
//! Unset, every group spends from the policy `api` (added with its default quota when the configured
//! policies have none): every route that costs a Redis command is limited per client. The rate-limit
//! demo routes spend from `api` as well as from the policy they name, so rotating `?id=` does not
//! escape the per-client budget. A policy named here must be one of `RATELIMIT_POLICIES`.

use std::collections::BTreeMap;

use super::routes::Group;
use redge::ratelimit::Policy;

/// The policy every default-limited group spends from.
pub const DEFAULT_ROUTE_POLICY: &str = "api";

/// The groups limited when `RATELIMIT_ROUTES` is unset: all of them.
const DEFAULT_LIMITED: [Group; 5] = Group::ALL;

/// The policy of each route group, validated against the configured policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteLimits {
    by_group: Vec<(Group, String)>,
}

impl RouteLimits {
    /// The default mapping: every group spends from [`DEFAULT_ROUTE_POLICY`].
    ///
    /// # Errors
    /// When `policies` has no [`DEFAULT_ROUTE_POLICY`], a message saying how to fix it.
    pub fn default_for(policies: &[Policy]) -> Result<RouteLimits, String> {
        if !policies.iter().any(|p| p.name == DEFAULT_ROUTE_POLICY) {
            return Err(format!(
                "RATELIMIT_ROUTES is unset, so every route group spends from the policy \
                 {DEFAULT_ROUTE_POLICY:?}, which RATELIMIT_POLICIES does not define: add a policy named \
                 {DEFAULT_ROUTE_POLICY:?}, or set RATELIMIT_ROUTES (`{{}}` limits no route group)"
            ));
        }
        Ok(RouteLimits {
            by_group: DEFAULT_LIMITED
                .iter()
                .map(|g| (*g, DEFAULT_ROUTE_POLICY.to_owned()))
                .collect(),
        })
    }

    /// Parses `RATELIMIT_ROUTES` (see the [module docs](self)).
    ///
    /// # Errors
    /// A message naming the bad group or policy, listing what is accepted.
    pub fn parse(text: &str, policies: &[Policy]) -> Result<RouteLimits, String> {
        let object: BTreeMap<String, Option<String>> = serde_json::from_str(text).map_err(|e| {
            format!(
                "RATELIMIT_ROUTES must be a JSON object from route group to policy name, such as \
                 {{\"lookup\": \"api\"}}: {e}"
            )
        })?;
        let mut by_group = Vec::new();
        for (name, policy) in object {
            let group = Group::ALL
                .iter()
                .copied()
                .find(|g| g.as_str() == name)
                .ok_or_else(|| {
                    let groups: Vec<&str> = Group::ALL.iter().map(|g| g.as_str()).collect();
                    format!(
                        "RATELIMIT_ROUTES: no route group {:?}; the groups are {}",
                        shorten(&name),
                        groups.join(", ")
                    )
                })?;
            let Some(policy) = policy else { continue };
            if !policies.iter().any(|p| p.name == policy) {
                let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "RATELIMIT_ROUTES: group {name:?} names the policy {:?}, which is not configured \
                     (RATELIMIT_POLICIES has {})",
                    shorten(&policy),
                    names.join(", ")
                ));
            }
            by_group.push((group, policy));
        }
        Ok(RouteLimits { by_group })
    }

    /// The policy that guards `group`, if any.
    pub fn policy_for(&self, group: Group) -> Option<&str> {
        self.by_group
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(_, p)| p.as_str())
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use redge::ratelimit::{Algorithm, Quota};

    fn policies(names: &[&str]) -> Vec<Policy> {
        names
            .iter()
            .map(|n| Policy::new(*n, Algorithm::Gcra, Quota::new(10, 1_000)))
            .collect()
    }

    #[test]
    fn the_default_limits_every_group_with_api() {
        let limits = RouteLimits::default_for(&policies(&["api", "burst"])).unwrap();
        for group in Group::ALL {
            assert_eq!(limits.policy_for(group), Some("api"), "{group:?}");
        }
    }

    #[test]
    fn every_route_with_redis_work_costs_something_and_writers_cost_more() {
        use super::super::routes::{ROUTES, RouteId};
        for route in ROUTES {
            let redis_free = matches!(
                route.id,
                RouteId::Index | RouteId::Metrics | RouteId::CacheMetrics | RouteId::RateLimitList
            );
            assert_eq!(route.cost == 0, redis_free, "{}", route.pattern);
        }
        let cost = |id| ROUTES.iter().find(|r| r.id == id).unwrap().cost;
        assert!(cost(RouteId::SessionSignIn) > cost(RouteId::SessionCurrent));
        assert!(cost(RouteId::SessionSignOutAll) > cost(RouteId::SessionSignOut));
    }

    #[test]
    fn the_default_needs_an_api_policy_and_says_how_to_fix_it() {
        let err = RouteLimits::default_for(&policies(&["burst"])).unwrap_err();
        assert!(err.contains("\"api\""), "{err}");
        assert!(err.contains("RATELIMIT_ROUTES"), "{err}");
    }

    #[test]
    fn a_mapping_names_groups_and_policies() {
        let limits = RouteLimits::parse(
            r#"{"ops": "burst", "lookup": null, "session": "api"}"#,
            &policies(&["api", "burst"]),
        )
        .unwrap();
        assert_eq!(limits.policy_for(Group::Ops), Some("burst"));
        assert_eq!(limits.policy_for(Group::Lookup), None);
        assert_eq!(limits.policy_for(Group::Session), Some("api"));
        assert_eq!(limits.policy_for(Group::Dashboard), None);
        assert_eq!(
            RouteLimits::parse("{}", &policies(&["api"])).unwrap(),
            RouteLimits::default()
        );
    }

    #[test]
    fn bad_mappings_are_explained() {
        let known = policies(&["api"]);
        let cases = [
            ("[1, 2]", "must be a JSON object"),
            ("{not json", "must be a JSON object"),
            (r#"{"lookup": 3}"#, "must be a JSON object"),
            (
                r#"{"admin": "api"}"#,
                "no route group \"admin\"; the groups are ops",
            ),
            (r#"{"lookup": "nope"}"#, "\"nope\", which is not configured"),
        ];
        for (text, expected) in cases {
            let err = RouteLimits::parse(text, &known).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let long = format!(r#"{{"{}": "api"}}"#, "g".repeat(10_000));
        assert!(RouteLimits::parse(&long, &known).unwrap_err().len() < 300);
    }
}

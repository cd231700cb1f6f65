//! Rate limiting: the policies, what a check answers when Redis fails, and which policy guards each
//! route group per client.

use redge::ratelimit::{DEFAULT_PREFIX, DEFAULT_TIMEOUT_MS, FailurePolicy, Policy, config};

use super::super::client_ip::{TRUSTED_HEADER_VAR, Trust};
use super::super::route_limits::{DEFAULT_ROUTE_POLICY, RouteLimits};
use super::reader::{Reader, shorten};
use super::redis::MAX_TIMEOUT_MS;

/// Name of the variable with the policies.
pub const POLICIES_VAR: &str = "RATELIMIT_POLICIES";
/// Name of the variable with the failure policy.
pub const FAILURE_VAR: &str = "RATELIMIT_FAILURE";
/// Name of the variable that adds the `X-RateLimit-*` headers.
pub const LEGACY_HEADERS_VAR: &str = "RATELIMIT_LEGACY_HEADERS";
/// Name of the variable with the route groups' policies.
pub const ROUTES_VAR: &str = "RATELIMIT_ROUTES";
/// Name of the variable that turns leased quota on for hot keys of fixed-window policies.
pub const LEASES_VAR: &str = "RATELIMIT_LEASES";

/// Rate-limit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// The policies, by name.
    pub policies: Vec<Policy>,
    /// What a check answers when Redis fails or is too slow.
    pub failure: FailurePolicy,
    /// Deadline of a check.
    pub timeout_ms: u32,
    /// Prefix of the keys.
    pub prefix: String,
    /// Whether to send `X-RateLimit-*` too.
    pub legacy_headers: bool,
    /// Whether hot keys of fixed-window policies are decided from leased quota.
    pub leases: bool,
    /// The policy that guards each route group.
    pub routes: RouteLimits,
    /// Which header carries the client's address (the key of the route limits).
    pub client_ip: Trust,
}

impl RateLimitSettings {
    pub(super) fn read(reader: &mut Reader<'_>) -> RateLimitSettings {
        let mut policies = reader.parsed(POLICIES_VAR, config::default_policies, |text| {
            config::parse_policies(text).map_err(|e| format!("{POLICIES_VAR}: {e}"))
        });
        let failure = reader.parsed(FAILURE_VAR, FailurePolicy::default, |name| {
            FailurePolicy::parse(name).ok_or_else(|| {
                format!(
                    "{FAILURE_VAR} must be open, closed or local, got {:?}",
                    shorten(name)
                )
            })
        });
        let timeout_ms = reader.number(
            "RATELIMIT_TIMEOUT_MS",
            DEFAULT_TIMEOUT_MS,
            |ms| (1..=MAX_TIMEOUT_MS).contains(ms),
            "a whole number of milliseconds from 1 to 30000",
        );
        let legacy_headers = reader.boolean(LEGACY_HEADERS_VAR);
        let leases = reader.boolean(LEASES_VAR);
        let prefix = reader
            .read("RATELIMIT_PREFIX")
            .map_or_else(|| DEFAULT_PREFIX.to_owned(), |p| p.trim().to_owned());
        let routes = if reader.read(ROUTES_VAR).is_none() {
            // The default routes spend from `api`: policies configured without one get the default.
            if !policies.iter().any(|p| p.name == DEFAULT_ROUTE_POLICY) {
                policies.push(config::default_route_policy());
            }
            RouteLimits::default_for(&policies).unwrap_or_else(|e| {
                reader.problem(ROUTES_VAR, e);
                RouteLimits::default()
            })
        } else {
            reader.parsed(ROUTES_VAR, RouteLimits::default, |text| {
                RouteLimits::parse(text, &policies)
            })
        };
        let client_ip = reader.parsed(TRUSTED_HEADER_VAR, Trust::default, Trust::parse);
        RateLimitSettings {
            policies,
            failure,
            timeout_ms,
            prefix,
            legacy_headers,
            leases,
            routes,
            client_ip,
        }
    }
}

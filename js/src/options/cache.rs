//! `Cache` options, lookup policies and tagged keys.

use serde::Deserialize;

use redge::cache::{CacheOptions as RedgeCacheOptions, MAX_COLO_TTL_MS, Policy};
use redge::origin::Origin;

use super::MAX_TIMEOUT_MS;

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
    /// The colo tier: the Worker's own origin (`https://api.example.com`), under which entries are kept
    /// in the location's Cache API (`caches.default`). Off when absent.
    pub colo: Option<String>,
}

impl CacheOptions {
    /// The origin the colo tier keys its entries under, when `colo` turns it on.
    ///
    /// # Errors
    /// A message for a value that is not an `http(s)://host[:port]` origin.
    pub fn colo(&self) -> Result<Option<String>, String> {
        self.colo
            .as_deref()
            .map(|text| {
                Origin::parse(text)
                    .map(|origin| origin.to_string())
                    .map_err(|e| format!("colo: {e} (give the Worker's own origin)"))
            })
            .transpose()
    }

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
/// leaseWaitMs, memoryTtlMs, coloTtlMs }`.
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
    /// Keep fresh values in the location's Cache API for this long (default 0: off; needs the cache's
    /// `colo`; at most 300000).
    pub colo_ttl_ms: Option<u64>,
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
            if bytes > redge::cache::MAX_VALUE_BYTES_LIMIT {
                return Err(format!(
                    "maxValueBytes must be at most {}, got {bytes}",
                    redge::cache::MAX_VALUE_BYTES_LIMIT
                ));
            }
            policy = policy.max_value_bytes(bytes);
        }
        policy.grace_ms = self.grace_ms.unwrap_or(policy.grace_ms);
        policy.negative_ttl_ms = self.negative_ttl_ms.unwrap_or(policy.negative_ttl_ms);
        policy.lease_wait_ms = self.lease_wait_ms.unwrap_or(policy.lease_wait_ms);
        policy.memory_ttl_ms = self.memory_ttl_ms.unwrap_or(policy.memory_ttl_ms);
        if let Some(ms) = self.colo_ttl_ms {
            if ms > MAX_COLO_TTL_MS {
                return Err(format!(
                    "coloTtlMs must be at most {MAX_COLO_TTL_MS}, got {ms}: an invalidation reaches \
                     colo readers only after this long"
                ));
            }
            policy = policy.colo_ttl_ms(ms);
        }
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
            (
                r#"{"coloTtlMs":300001}"#,
                "coloTtlMs must be at most 300000",
            ),
        ] {
            let e = parse::<PolicyInput>(json)
                .and_then(PolicyInput::policy)
                .unwrap_err();
            assert!(e.contains(expected), "{json}: {e}");
        }
        assert!(parse::<PolicyInput>(r#"{"ttl":1}"#).is_err());
        let colo = parse::<PolicyInput>(r#"{"coloTtlMs":10000}"#)
            .unwrap()
            .policy()
            .unwrap();
        assert_eq!(colo.colo_ttl_ms, 10_000);
    }

    #[test]
    fn the_colo_tier_is_keyed_under_an_origin() {
        let colo = |json: &str| parse::<CacheOptions>(json).unwrap().colo();
        assert_eq!(colo("{}"), Ok(None));
        assert_eq!(
            colo(r#"{"colo":"https://api.example.com:443/"}"#),
            Ok(Some("https://api.example.com".to_owned()))
        );
        for bad in [
            r#"{"colo":"api.example.com"}"#,
            r#"{"colo":"https://api.example.com/items"}"#,
            r#"{"colo":"*"}"#,
        ] {
            assert!(colo(bad).unwrap_err().starts_with("colo: "), "{bad}");
        }
    }
}

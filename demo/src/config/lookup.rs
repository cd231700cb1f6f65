//! The lookup demo: its origin (simulated or real) and its cache policy.

use redge::cache::{MAX_COLO_TTL_MS, Policy};
use redge::client::url::check_http_url;

use super::reader::Reader;

/// Name of the variable with a real upstream for lookups.
pub const ORIGIN_URL_VAR: &str = "ORIGIN_URL";

/// How `GET /api/lookup/{id}` behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupSettings {
    /// How long the demo origin takes to answer.
    pub origin_latency_ms: u32,
    /// The share of demo origin calls that fail (0 to 1).
    pub origin_failure_rate: f64,
    /// A real upstream (no trailing slash), instead of the demo origin.
    pub origin_url: Option<String>,
    /// The cache policy.
    pub policy: Policy,
}

impl LookupSettings {
    pub(super) fn read(reader: &mut Reader<'_>) -> LookupSettings {
        const MS: &str = "a whole number of milliseconds";
        let origin_latency_ms = reader.number(
            "DEMO_ORIGIN_LATENCY_MS",
            300u32,
            |n| *n <= 60_000,
            "a whole number of milliseconds up to 60000",
        );
        let origin_failure_rate = reader.number(
            "DEMO_ORIGIN_FAILURE_RATE",
            0.0f64,
            |r| (0.0..=1.0).contains(r),
            "a number from 0 to 1",
        );
        let origin_url = reader.parsed(
            ORIGIN_URL_VAR,
            || None,
            |url| check_http_url(ORIGIN_URL_VAR, url).map(Some),
        );
        let policy = Policy::new("lookup")
            .ttl_ms(reader.number(
                "CACHE_TTL_MS",
                30_000u64,
                |n| *n > 0,
                "a positive whole number of milliseconds",
            ))
            .grace_ms(reader.number("CACHE_GRACE_MS", 300_000u64, |_| true, MS))
            .negative_ttl_ms(reader.number("CACHE_NEGATIVE_TTL_MS", 10_000u64, |_| true, MS))
            .deadline_ms(reader.number(
                "CACHE_DEADLINE_MS",
                150u32,
                |n| (1..=30_000).contains(n),
                "a whole number of milliseconds from 1 to 30000",
            ))
            .memory_ttl_ms(reader.number("CACHE_MEMORY_TTL_MS", 0u64, |_| true, MS))
            // The colo tier's TTL is the staleness its readers may see: bounded by the library.
            .colo_ttl_ms(reader.number(
                "CACHE_COLO_TTL_MS",
                0u64,
                |n| *n <= MAX_COLO_TTL_MS,
                "a whole number of milliseconds from 0 (off) to 300000",
            ));
        LookupSettings {
            origin_latency_ms,
            origin_failure_rate,
            origin_url,
            policy,
        }
    }
}

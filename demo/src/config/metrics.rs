//! Who may read the metrics, and how the isolates add their counters up.

use super::reader::Reader;

/// Name of the variable with the metrics token.
pub const METRICS_TOKEN_VAR: &str = "METRICS_TOKEN";
/// Name of the variable with the metrics flush interval.
pub const METRICS_FLUSH_VAR: &str = "METRICS_FLUSH_MS";
/// Name of the variable with the metrics hash's key.
pub const METRICS_KEY_VAR: &str = "METRICS_KEY";
/// The default metrics flush interval: at most one background round trip per isolate per 10 s.
pub const DEFAULT_METRICS_FLUSH_MS: u32 = 10_000;
/// The default key of the deployment's metrics hash.
pub const DEFAULT_METRICS_KEY: &str = "redge:metrics";

/// Metrics for the whole deployment: each isolate adds its counters to one Redis hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// How often an isolate sends what its counters gained, in the background (0: never; then
    /// `GET /api/metrics` shows the isolate's own counters only).
    pub flush_ms: u32,
    /// The Redis hash that holds the totals.
    pub key: String,
}

impl MetricsSettings {
    pub(super) fn read(reader: &mut Reader<'_>) -> MetricsSettings {
        MetricsSettings {
            flush_ms: reader.number(
                METRICS_FLUSH_VAR,
                DEFAULT_METRICS_FLUSH_MS,
                |ms| *ms == 0 || (1_000..=3_600_000).contains(ms),
                "0 (off) or a whole number of milliseconds from 1000 to 3600000",
            ),
            key: reader
                .read(METRICS_KEY_VAR)
                .map_or_else(|| DEFAULT_METRICS_KEY.to_owned(), |k| k.trim().to_owned()),
        }
    }
}

/// The token `GET /api/metrics` requires, if any.
pub(super) fn read_token(reader: &mut Reader<'_>) -> Option<String> {
    let token = reader.read(METRICS_TOKEN_VAR).map(|t| t.trim().to_owned());
    if let Some(t) = &token
        && !t.bytes().all(|b| b.is_ascii_graphic())
    {
        reader.problem(
            METRICS_TOKEN_VAR,
            format!("{METRICS_TOKEN_VAR} must be printable ASCII without spaces"),
        );
    }
    token
}

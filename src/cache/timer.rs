//! Time-bounded waits for the cache's own round trips. On wasm a JavaScript `setTimeout` races the
//! request; natively (unit tests, no timer runtime) the wait is unbounded and `sleep` returns at once.

pub(crate) use crate::client::within;

/// Waits `ms` milliseconds (returns at once natively).
pub async fn sleep(ms: u32) {
    #[cfg(target_arch = "wasm32")]
    crate::client::sleep_ms(ms).await;
    #[cfg(not(target_arch = "wasm32"))]
    let _ = ms;
}

//! Wall-clock time in milliseconds, behind a trait so that time-dependent logic is tested with a fake clock.
//!
//! On `wasm32-unknown-unknown`, `std::time::SystemTime::now()` panics; the JavaScript `Date.now()` is used
//! instead. Note that inside a Cloudflare Worker, `Date.now()` only advances when the Worker does I/O.

/// A source of the current time.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The platform clock: `Date.now()` in JavaScript runtimes, the system clock natively.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(target_arch = "wasm32")]
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

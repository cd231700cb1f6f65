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

/// A clock that moves only when told to, shared by its clones: tests set and advance it and never sleep.
///
/// ```
/// use redge::clock::{Clock, FakeClock};
/// let clock = FakeClock::new(1_000);
/// clock.clone().advance(500);
/// assert_eq!(clock.now_ms(), 1_500);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeClock(std::rc::Rc<std::cell::Cell<u64>>);

impl FakeClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        FakeClock(std::rc::Rc::new(std::cell::Cell::new(now_ms)))
    }

    /// Sets the time (it may go backwards).
    pub fn set(&self, now_ms: u64) {
        self.0.set(now_ms);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get().saturating_add(ms));
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

//! What one isolate keeps between requests: the validated configuration, the metrics registry, the
//! latest read-your-writes token, the isolate's start time. Rust globals live as long as the wasm
//! instance (a panic would reset them: none of this code panics).

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

use super::config::{Config, ConfigError};
use super::metrics::Registry;
use crate::clock::{Clock, SystemClock};
use crate::ratelimit::RateLimiter;

thread_local! {
    static CONFIG: OnceCell<Result<Rc<Config>, ConfigError>> = const { OnceCell::new() };
    static METRICS: RefCell<Registry> = RefCell::new(Registry::new());
    static SYNC_TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
    static STARTED_MS: Cell<u64> = const { Cell::new(0) };
    static LIMITER: OnceCell<Result<&'static RateLimiter, String>> = const { OnceCell::new() };
}

/// The isolate's rate limiter (with its block cache and fallback limiter), built on first use. It lives
/// as long as the isolate, so it is allocated once and never freed: pending checks can borrow it for
/// the whole request.
pub(crate) fn limiter(config: &Config) -> Result<&'static RateLimiter, String> {
    LIMITER.with(|cell| {
        cell.get_or_init(|| {
            let settings = &config.ratelimit;
            RateLimiter::new(settings.policies.clone())
                .map(|limiter| {
                    let limiter = limiter
                        .prefix(settings.prefix.clone())
                        .failure_policy(settings.failure)
                        .with_timeout_ms(settings.timeout_ms);
                    &*Box::leak(Box::new(limiter))
                })
                .map_err(|e| format!("the rate-limit policies are invalid: {e}"))
        })
        .clone()
    })
}

/// The configuration, read from `env` and validated on the isolate's first request only (the env of a
/// deployment never changes while its isolates live).
pub(crate) fn config(env: &worker::Env) -> Result<Rc<Config>, ConfigError> {
    STARTED_MS.with(|s| {
        if s.get() == 0 {
            s.set(SystemClock.now_ms());
        }
    });
    CONFIG.with(|cell| {
        cell.get_or_init(|| Config::from_env(env).map(Rc::new))
            .clone()
    })
}

/// Runs `f` with the isolate's metrics registry.
pub(crate) fn metrics<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    METRICS.with(|m| f(&mut m.borrow_mut()))
}

/// When this isolate served its first request, in Unix milliseconds.
pub(crate) fn started_ms() -> u64 {
    STARTED_MS.with(Cell::get)
}

/// The latest `upstash-sync-token` this isolate saw, so a request reads what an earlier one wrote.
pub(crate) fn sync_token() -> Option<String> {
    SYNC_TOKEN.with(|t| t.borrow().clone())
}

/// Keeps the latest sync token.
pub(crate) fn set_sync_token(token: Option<String>) {
    if token.is_some() {
        SYNC_TOKEN.with(|t| *t.borrow_mut() = token);
    }
}

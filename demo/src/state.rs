//! What one isolate keeps between requests: the validated configuration, the metrics registry, the
//! latest read-your-writes token, the isolate's start time. Rust globals live as long as the wasm
//! instance (a panic would reset them: none of this code panics).

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

use super::config::{Config, ConfigError, URL_VARS};
use super::metrics::Registry;
use super::runtime::{self, Level};
use redge::client::url::redact;
use redge::clock::{Clock, SystemClock};
use redge::ratelimit::{LeaseConfig, RateLimiter};
use redge::session::SessionCache;

thread_local! {
    static CONFIG: OnceCell<Result<Rc<Config>, ConfigError>> = const { OnceCell::new() };
    static METRICS: RefCell<Registry> = RefCell::new(Registry::new());
    static SYNC_TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
    static STARTED_MS: Cell<u64> = const { Cell::new(0) };
    static WARNED_UNKNOWN_CLIENT: Cell<bool> = const { Cell::new(false) };
    static FLUSHED: RefCell<Vec<(String, f64)>> = const { RefCell::new(Vec::new()) };
    static LAST_FLUSH_MS: Cell<u64> = const { Cell::new(0) };
    static LIMITER: OnceCell<Result<&'static RateLimiter, String>> = const { OnceCell::new() };
    static SESSIONS: OnceCell<Rc<SessionCache>> = const { OnceCell::new() };
}

/// The isolate's session cache (`SESSION_CACHE_MS`), or `None` when it is off.
pub(crate) fn session_cache(config: &Config) -> Option<Rc<SessionCache>> {
    (config.session.cache_ms > 0).then(|| {
        SESSIONS.with(|cell| {
            Rc::clone(cell.get_or_init(|| SessionCache::new(config.session.cache_ms, 10_000)))
        })
    })
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
                    limiter
                        .prefix(settings.prefix.clone())
                        .failure_policy(settings.failure)
                        .with_timeout_ms(settings.timeout_ms)
                })
                .and_then(|limiter| match settings.leases {
                    true => limiter.leases(LeaseConfig::default()),
                    false => Ok(limiter),
                })
                .map(|limiter| &*Box::leak(Box::new(limiter)))
                .map_err(|e| format!("the rate-limit policies are invalid: {e}"))
        })
        .clone()
    })
}

/// The configuration, read through `var` (a Worker's vars and secrets) and validated on the isolate's
/// first request only (the env of a deployment never changes while its isolates live).
pub(crate) fn config(var: impl Fn(&str) -> Option<String>) -> Result<Rc<Config>, ConfigError> {
    STARTED_MS.with(|s| {
        if s.get() == 0 {
            s.set(SystemClock.now_ms());
        }
    });
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            let config = Config::from_vars(&var).map(Rc::new);
            if let Err(e) = &config {
                log_config_problems(&var, e);
            }
            config
        })
        .clone()
    })
}

/// One structured log line (`wrangler tail`, Workers Logs) for a configuration that does not validate:
/// each problem with its variable and, for the URL variables, the value redacted to scheme, host and
/// port. Tokens and the rest of a URL never reach the log.
fn log_config_problems(var: impl Fn(&str) -> Option<String>, error: &ConfigError) {
    let problems: Vec<serde_json::Value> = error
        .problems
        .iter()
        .map(|(variable, message)| {
            let mut entry = serde_json::json!({ "variable": variable, "message": message });
            if URL_VARS.contains(variable)
                && let Some(value) = var(variable)
            {
                entry["redacted_value"] = redact(&value).into();
            }
            entry
        })
        .collect();
    let line =
        serde_json::json!({ "level": "error", "event": "configuration", "problems": problems });
    runtime::log(Level::Error, &line.to_string());
}

/// Logs, once per isolate, that a request came with no trusted client address: such requests share one
/// rate-limit budget until `TRUSTED_CLIENT_IP_HEADER` names the header a proxy sets.
pub(crate) fn warn_unknown_client_once() {
    if WARNED_UNKNOWN_CLIENT.with(|w| w.replace(true)) {
        return;
    }
    let line = serde_json::json!({
        "level": "warn",
        "event": "unknown_client_address",
        "message": "a request carried no trusted client address, so the route limits key it as \
                    `unknown`, a budget all such requests share; on Cloudflare this does not happen; \
                    behind another proxy set TRUSTED_CLIENT_IP_HEADER to the header it sets",
    });
    runtime::log(Level::Warn, &line.to_string());
}

/// Whether this isolate's counters are due to be added to the deployment's totals (at most once per
/// `interval_ms`; never when it is 0). Saying yes starts the next interval.
pub(crate) fn metrics_flush_due(now_ms: u64, interval_ms: u32) -> bool {
    if interval_ms == 0 {
        return false;
    }
    LAST_FLUSH_MS.with(|last| {
        let due = now_ms.saturating_sub(last.get()) >= u64::from(interval_ms);
        if due {
            last.set(now_ms);
        }
        due
    })
}

/// The increments to send since the last flush, for `samples` (the isolate's totals now); they count
/// as sent from here on. Sent once: a flush that fails loses them (the totals undercount) rather than
/// risk adding them twice.
pub(crate) fn take_metric_increments(samples: &[(String, f64)]) -> Vec<(String, f64)> {
    FLUSHED.with(|flushed| {
        let mut flushed = flushed.borrow_mut();
        let increments = super::metrics::increments(samples, &flushed);
        // The new base: every sample now, sorted for the next search. A sample that went away (a
        // copied total whose group is gone) keeps its last value.
        for (field, value) in samples {
            match flushed.binary_search_by(|(f, _)| f.as_str().cmp(field)) {
                Ok(i) => flushed[i].1 = *value,
                Err(i) => flushed.insert(i, (field.clone(), *value)),
            }
        }
        increments
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

//! Session lifetimes, development cookies, and the origins allowed to change sessions.

use redge::origin::Origin;
use redge::session::{Lifetimes, MAX_SESSION_CACHE_MS, SessionConfig};

use super::reader::Reader;

/// Name of the variable that allows development session cookies.
pub const SESSION_INSECURE_VAR: &str = "SESSION_COOKIE_INSECURE";
/// Name of the variable with the extra origins allowed to change sessions.
pub const SESSION_ORIGINS_VAR: &str = "SESSION_ALLOWED_ORIGINS";
/// Name of the variable with the session idle timeout.
pub const SESSION_IDLE_VAR: &str = "SESSION_IDLE_S";
/// Name of the variable with the session absolute lifetime.
pub const SESSION_ABSOLUTE_VAR: &str = "SESSION_ABSOLUTE_S";
/// Name of the variable with how long an isolate serves a session it read from memory.
pub const SESSION_CACHE_VAR: &str = "SESSION_CACHE_MS";

/// Session settings: the store's configuration and who may change sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Store configuration, cookie included (development cookies are switched on per request, only for
    /// plain-HTTP loopback requests, when [`SessionSettings::insecure_cookie`] is set).
    pub store: SessionConfig,
    /// Whether development cookies were asked for.
    pub insecure_cookie: bool,
    /// Origins allowed to change sessions besides the Worker's own.
    pub allowed_origins: Vec<Origin>,
    /// How long a session read from Redis is served again from the isolate, in ms (0: never).
    pub cache_ms: u64,
}

impl SessionSettings {
    /// The session settings. A page on a CORS origin may change sessions too, so `cors_origins`
    /// come first in [`SessionSettings::allowed_origins`].
    pub(super) fn read(reader: &mut Reader<'_>, cors_origins: &[Origin]) -> SessionSettings {
        let defaults = Lifetimes::default();
        // 0 is never valid, so it stands for "unset or invalid": the default then applies.
        let mut seconds = |name: &'static str, default_ms: u64| match reader.number(
            name,
            0,
            |s: &u64| *s > 0,
            "a positive whole number of seconds",
        ) {
            0 => default_ms,
            s => s.saturating_mul(1000),
        };
        let idle = seconds(SESSION_IDLE_VAR, defaults.idle_ms());
        let absolute = seconds(SESSION_ABSOLUTE_VAR, defaults.absolute_ms());
        let lifetimes = Lifetimes::new(idle, absolute).unwrap_or_else(|e| {
            reader.problem(SESSION_IDLE_VAR, format!("{SESSION_IDLE_VAR}: {e}"));
            defaults
        });
        let insecure_cookie = reader.boolean(SESSION_INSECURE_VAR);
        let cache_ms = reader.number(
            SESSION_CACHE_VAR,
            0,
            |ms: &u64| *ms <= MAX_SESSION_CACHE_MS,
            "0 (off) to 60000 milliseconds",
        );
        let mut allowed_origins = cors_origins.to_vec();
        reader.origins(SESSION_ORIGINS_VAR, &mut allowed_origins);
        SessionSettings {
            store: SessionConfig {
                lifetimes,
                ..SessionConfig::default()
            },
            insecure_cookie,
            allowed_origins,
            cache_ms,
        }
    }
}

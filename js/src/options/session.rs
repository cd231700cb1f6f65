//! `SessionStore` options, and the options of its calls.

use serde::Deserialize;

use redge::session::{CookieConfig, Lifetimes, MAX_SESSION_CACHE_MS, SessionConfig};

/// Sessions a store's cache holds at most unless `cacheEntries` says otherwise.
const CACHE_ENTRIES: usize = 10_000;

/// `new SessionStore(client, options)`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionOptions {
    /// Idle timeout in ms (default 30 minutes).
    pub idle_ms: Option<u64>,
    /// Absolute lifetime in ms (default 12 hours).
    pub absolute_ms: Option<u64>,
    /// Key prefix (default `redge:session`).
    pub prefix: Option<String>,
    /// Cookie name without the `__Host-` prefix (default `redge_session`).
    pub cookie_name: Option<String>,
    /// Plain-HTTP development: no `__Host-` prefix and no `Secure`. Never in production.
    pub insecure_dev: Option<bool>,
    /// The largest session data, as JSON bytes (default 16 KiB).
    pub max_data_bytes: Option<usize>,
    /// Serve a session this store read less than this many ms ago again without Redis (0, the
    /// default: off; at most 60 000).
    pub cache_ms: Option<u64>,
    /// The most sessions the cache holds (default 10 000).
    pub cache_entries: Option<usize>,
}

impl SessionOptions {
    /// The session cache's age and size, when `cacheMs` turns it on.
    ///
    /// # Errors
    /// A message for an age past the cap or a size of 0.
    pub fn cache(&self) -> Result<Option<(u64, usize)>, String> {
        if let Some(ms) = self.cache_ms
            && ms > MAX_SESSION_CACHE_MS
        {
            return Err(format!(
                "cacheMs must be 0 (off) to {MAX_SESSION_CACHE_MS}, got {ms}: a revocation through \
                 another isolate is seen only after this long"
            ));
        }
        let entries = self.cache_entries.unwrap_or(CACHE_ENTRIES);
        if entries == 0 {
            return Err("cacheEntries must be at least 1".into());
        }
        Ok(self.cache_ms.filter(|&ms| ms > 0).map(|ms| (ms, entries)))
    }

    /// The session configuration.
    ///
    /// # Errors
    /// A message for impossible lifetimes or a bad cookie name.
    pub fn config(self) -> Result<SessionConfig, String> {
        let defaults = Lifetimes::default();
        let lifetimes = Lifetimes::new(
            self.idle_ms.unwrap_or(defaults.idle_ms()),
            self.absolute_ms.unwrap_or(defaults.absolute_ms()),
        )
        .map_err(|e| e.to_string())?;
        let mut config = SessionConfig {
            lifetimes,
            ..SessionConfig::default()
        };
        if let Some(prefix) = self.prefix {
            if prefix.is_empty() {
                return Err("prefix must not be empty".into());
            }
            config.prefix = prefix;
        }
        if let Some(name) = self.cookie_name {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(format!(
                    "cookieName must be 1 to 64 of A-Z, a-z, 0-9, _ and -, got {name:?}"
                ));
            }
            config.cookie = CookieConfig {
                name,
                ..config.cookie
            };
        }
        config.cookie.insecure_dev = self.insecure_dev.unwrap_or(false);
        if let Some(max) = self.max_data_bytes {
            if max == 0 || max > 1 << 20 {
                return Err(format!("maxDataBytes must be 1 to 1048576, got {max}"));
            }
            config.max_data_bytes = max;
        }
        Ok(config)
    }
}

/// `store.signIn(user, { data, replacing })`'s options besides `data`, which is read separately as JSON
/// (any value `JSON.stringify` accepts).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInOptions {
    /// The token of the session this sign-in replaces (rotation).
    pub replacing: Option<String>,
}

/// `store.update(token, data, { expectedVersion })`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOptions {
    /// Compare-and-set: write only if the session is still at this version.
    pub expected_version: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn session_options_validate_lifetimes_and_cookie_names() {
        let c =
            parse::<SessionOptions>(r#"{"idleMs":60000,"absoluteMs":120000,"insecureDev":true}"#)
                .unwrap()
                .config()
                .unwrap();
        assert_eq!(c.lifetimes.idle_ms(), 60_000);
        assert_eq!(c.cookie.cookie_name(), "redge_session");
        for (json, expected) in [
            (r#"{"idleMs":10}"#, "idle"),
            (r#"{"idleMs":60000,"absoluteMs":1000}"#, "absolute"),
            (r#"{"cookieName":"a b"}"#, "cookieName"),
            (r#"{"maxDataBytes":0}"#, "maxDataBytes"),
            (r#"{"prefix":""}"#, "prefix"),
        ] {
            let e = parse::<SessionOptions>(json)
                .and_then(SessionOptions::config)
                .unwrap_err();
            assert!(e.contains(expected), "{json}: {e}");
        }
    }

    #[test]
    fn the_session_cache_is_off_by_default_and_capped_at_a_minute() {
        let cache = |json: &str| parse::<SessionOptions>(json).and_then(|o| o.cache());
        assert_eq!(cache("{}"), Ok(None));
        assert_eq!(cache(r#"{"cacheMs":0}"#), Ok(None));
        assert_eq!(
            cache(r#"{"cacheMs":5000}"#),
            Ok(Some((5_000, CACHE_ENTRIES)))
        );
        assert_eq!(
            cache(r#"{"cacheMs":60000,"cacheEntries":50}"#),
            Ok(Some((60_000, 50)))
        );
        assert!(
            cache(r#"{"cacheMs":60001}"#)
                .unwrap_err()
                .contains("cacheMs")
        );
        assert!(cache(r#"{"cacheMs":-1}"#).is_err());
        assert!(
            cache(r#"{"cacheMs":1000,"cacheEntries":0}"#)
                .unwrap_err()
                .contains("cacheEntries")
        );
    }
}

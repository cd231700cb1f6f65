//! The session cookie: its attributes, and reading it back from a `Cookie` header.
//!
//! Secure by default: `__Host-<name>=<token>; Max-Age=<s>; Path=/; Secure; HttpOnly; SameSite=Lax`, no
//! `Domain`. The `__Host-` prefix makes browsers refuse the cookie unless it is `Secure`, has `Path=/` and
//! no `Domain`, so a sibling subdomain cannot plant or shadow it. Browsers refuse `Secure` cookies
//! over plain HTTP (except on localhost in some browsers), so [`CookieConfig::insecure_dev`] drops the prefix
//! and `Secure` for local development over `http://127.0.0.1`; it is off unless asked for.

/// The cookie name without the prefix.
pub const DEFAULT_NAME: &str = "redge_session";

/// The longest `Cookie` header that is looked at; longer ones are treated as carrying no session.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// How the session cookie is named and flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// The name without the `__Host-` prefix.
    pub name: String,
    /// Development over plain HTTP: no `__Host-` prefix, no `Secure`. Never in production.
    pub insecure_dev: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: DEFAULT_NAME.to_owned(),
            insecure_dev: false,
        }
    }
}

impl CookieConfig {
    /// The cookie's full name (`__Host-redge_session`, or `redge_session` in development mode).
    pub fn cookie_name(&self) -> String {
        if self.insecure_dev {
            self.name.clone()
        } else {
            format!("__Host-{}", self.name)
        }
    }

    /// A `Set-Cookie` value carrying `token` for `max_age_s` seconds.
    ///
    /// `token` must be a session token ([`super::Token::expose`]), which never needs quoting.
    pub fn set_cookie(&self, token: &str, max_age_s: u64) -> String {
        format!(
            "{}={token}; Max-Age={max_age_s}; Path=/; {}HttpOnly; SameSite=Lax",
            self.cookie_name(),
            if self.insecure_dev { "" } else { "Secure; " }
        )
    }

    /// A `Set-Cookie` value that removes the cookie (same name and attributes, `Max-Age=0`).
    pub fn clear_cookie(&self) -> String {
        self.set_cookie("", 0)
    }

    /// The session cookie's value in a `Cookie` request header, if present and not empty. The first
    /// occurrence wins; oversized headers are ignored.
    pub fn read<'h>(&self, header: &'h str) -> Option<&'h str> {
        if header.len() > MAX_HEADER_LEN {
            return None;
        }
        let name = self.cookie_name();
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim().trim_matches('"'))
            .filter(|value| !value.is_empty())
    }
}

/// Seconds from `now_ms` until `until_ms`, rounded down (a cookie should end no later than its session).
pub fn max_age_s(now_ms: u64, until_ms: u64) -> u64 {
    until_ms.saturating_sub(now_ms) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> CookieConfig {
        CookieConfig {
            insecure_dev: true,
            ..CookieConfig::default()
        }
    }

    #[test]
    fn the_default_cookie_is_host_prefixed_and_locked_down() {
        let c = CookieConfig::default();
        assert_eq!(
            c.set_cookie("id.secret", 1800),
            "__Host-redge_session=id.secret; Max-Age=1800; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert!(!c.set_cookie("t", 1).to_ascii_lowercase().contains("domain"));
        assert_eq!(
            c.clear_cookie(),
            "__Host-redge_session=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn development_mode_drops_only_the_prefix_and_secure() {
        assert_eq!(
            dev().set_cookie("t", 60),
            "redge_session=t; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn reading_finds_the_exact_name() {
        let c = CookieConfig::default();
        let header =
            "a=1; redge_session=plain; __Host-redge_session=tok; __Host-redge_session=second";
        assert_eq!(c.read(header), Some("tok"));
        assert_eq!(dev().read(header), Some("plain"));
        assert_eq!(c.read("__Host-redge_session_x=1"), None);
        assert_eq!(c.read("__Host-redge_session="), None);
        assert_eq!(c.read(""), None);
        assert_eq!(c.read("garbage;;;=;"), None);
        let huge = format!(
            "__Host-redge_session=tok; pad={}",
            "x".repeat(MAX_HEADER_LEN)
        );
        assert_eq!(c.read(&huge), None);
    }

    #[test]
    fn max_age_rounds_down_and_never_underflows() {
        assert_eq!(max_age_s(1_000, 1_800_999), 1799);
        assert_eq!(max_age_s(5_000, 1_000), 0);
    }
}

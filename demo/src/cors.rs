//! CORS for browser callers on other origins: which origins are allowed, the headers of an ordinary
//! response, and the answer to a preflight.
//!
//! - Allowed: the origins of `CORS_ALLOWED_ORIGINS`, plus the Worker's own origin (the demo page).
//! - An allowed origin gets `Access-Control-Allow-Origin: <that origin>` (never `*`), credentials, the
//!   response headers a client needs (`Server-Timing`, `RateLimit`, ...) exposed, and
//!   `Timing-Allow-Origin` so `PerformanceServerTiming` shows the Redis timings cross-origin.
//! - Another origin gets no CORS header at all: the browser then withholds the response.
//! - Every API response carries `Vary: Origin`, so a shared cache never serves one origin's answer to
//!   another.
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is a 204 valid for
//!   10 minutes; from another origin, or asking for a method or header the API does not use, a 403
//!   problem that says why (curl users read it; browsers only see the failed preflight).

/// Methods a cross-origin caller may use (the union over all routes; the route itself answers 405).
pub const ALLOW_METHODS: &str = "GET, HEAD, POST, PATCH, DELETE";
/// Request headers a cross-origin caller may send.
pub const ALLOW_HEADERS: &[&str] = &["content-type", "authorization"];
/// Response headers a cross-origin caller may read.
pub const EXPOSE_HEADERS: &str = "Server-Timing, RateLimit, RateLimit-Policy, Retry-After";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_S: u32 = 600;

use redge::origin::Origin;

/// The configured origins and the Worker's own.
#[derive(Debug, Clone, Copy)]
pub struct Cors<'a> {
    allowed: &'a [Origin],
    own: Option<&'a Origin>,
}

/// The answer to an `OPTIONS` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// 204 with these headers.
    Allowed(Vec<(&'static str, String)>),
    /// 403: the reason, for a problem response (which still carries `Vary`).
    Refused(String),
}

impl<'a> Cors<'a> {
    /// `allowed` are the configured origins; `own` is the request URL's origin, when it has one.
    pub fn new(allowed: &'a [Origin], own: Option<&'a Origin>) -> Self {
        Cors { allowed, own }
    }

    /// The origin an `Origin` header names, when it may call the API with credentials. Origins compare
    /// as [`Origin`]s, the way the session's Origin check compares them, so a configured
    /// `https://app.example.com:443` allows the `https://app.example.com` browsers send.
    pub fn allowed_origin(&self, origin: &str) -> Option<Origin> {
        let origin = Origin::parse(origin).ok()?;
        (self.own == Some(&origin) || self.allowed.contains(&origin)).then_some(origin)
    }

    /// Whether `origin` may call the API with credentials (see [`Cors::allowed_origin`]).
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origin(origin).is_some()
    }

    /// Headers for an ordinary (non-preflight) API response. The allowed origin is sent back in its
    /// serialised form, which is what a browser sent.
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        let mut headers = vec![("vary", "Origin".to_owned())];
        if let Some(origin) = origin.and_then(|o| self.allowed_origin(o)) {
            let origin = origin.to_string();
            headers.push(("access-control-allow-origin", origin.clone()));
            headers.push(("access-control-allow-credentials", "true".to_owned()));
            headers.push(("access-control-expose-headers", EXPOSE_HEADERS.to_owned()));
            headers.push(("timing-allow-origin", origin));
        }
        headers
    }

    /// The answer to a preflight: `origin`, `Access-Control-Request-Method` and
    /// `Access-Control-Request-Headers` as received.
    pub fn preflight(
        &self,
        origin: Option<&str>,
        method: &str,
        request_headers: Option<&str>,
    ) -> Preflight {
        let Some(origin) = origin else {
            return Preflight::Refused("a preflight needs an Origin header".into());
        };
        let Some(allowed) = self.allowed_origin(origin) else {
            let shown: String = origin.chars().take(100).collect();
            return Preflight::Refused(format!(
                "origin {shown} is not allowed; add it to CORS_ALLOWED_ORIGINS"
            ));
        };
        let method = method.trim();
        if !ALLOW_METHODS.split(", ").any(|m| m == method) {
            let shown: String = method.chars().take(20).collect();
            return Preflight::Refused(format!(
                "method {shown:?} is not used by this API; allowed: {ALLOW_METHODS}"
            ));
        }

        for name in request_headers
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
        {
            if !ALLOW_HEADERS.contains(&name.as_str()) {
                let shown: String = name.chars().take(40).collect();
                return Preflight::Refused(format!(
                    "request header {shown:?} is not allowed; allowed: {}",
                    ALLOW_HEADERS.join(", ")
                ));
            }
        }
        let mut headers = preflight_vary();
        headers.push(("access-control-allow-origin", allowed.to_string()));
        headers.push(("access-control-allow-credentials", "true".to_owned()));
        headers.push(("access-control-allow-methods", ALLOW_METHODS.to_owned()));
        headers.push(("access-control-allow-headers", ALLOW_HEADERS.join(", ")));
        headers.push(("access-control-max-age", MAX_AGE_S.to_string()));
        Preflight::Allowed(headers)
    }
}

/// `Vary` of a preflight answer: it depends on all three request headers.
pub fn preflight_vary() -> Vec<(&'static str, String)> {
    vec![(
        "vary",
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_owned(),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<Origin> {
        vec![Origin::parse("https://app.example.com").unwrap()]
    }

    fn own() -> Origin {
        Origin::parse("https://redge.example.dev").unwrap()
    }

    fn header<'h>(headers: &'h [(&'static str, String)], name: &str) -> Option<&'h str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn allowed_origins_get_credentials_and_exposed_headers() {
        let list = allowed();
        let own = own();
        let cors = Cors::new(&list, Some(&own));
        let headers = cors.response_headers(Some("https://app.example.com"));
        assert_eq!(header(&headers, "vary"), Some("Origin"));
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            header(&headers, "access-control-allow-credentials"),
            Some("true")
        );
        assert!(
            header(&headers, "access-control-expose-headers")
                .unwrap()
                .contains("Server-Timing")
        );
        assert_eq!(
            header(&headers, "timing-allow-origin"),
            Some("https://app.example.com")
        );
        // The Worker's own origin is always allowed.
        assert!(cors.allows("https://redge.example.dev"));
    }

    #[test]
    fn other_origins_get_only_vary() {
        let list = allowed();
        let own = own();
        let cors = Cors::new(&list, Some(&own));
        for origin in [
            Some("https://evil.example"),
            Some("https://app.example.com.evil.example"),
            Some("http://app.example.com"),
            Some("null"),
            None,
        ] {
            assert_eq!(
                cors.response_headers(origin),
                vec![("vary", "Origin".to_owned())],
                "{origin:?}"
            );
        }
    }

    #[test]
    fn preflights_from_allowed_origins_pass() {
        let list = allowed();
        let own = own();
        let cors = Cors::new(&list, Some(&own));
        let Preflight::Allowed(headers) = cors.preflight(
            Some("https://app.example.com"),
            "PATCH",
            Some("Content-Type"),
        ) else {
            panic!("refused")
        };
        assert!(
            header(&headers, "access-control-allow-methods")
                .unwrap()
                .contains("PATCH")
        );
        assert_eq!(
            header(&headers, "access-control-allow-headers"),
            Some("content-type, authorization")
        );
        assert_eq!(header(&headers, "access-control-max-age"), Some("600"));
        assert!(
            header(&headers, "vary")
                .unwrap()
                .contains("Access-Control-Request-Headers")
        );
    }

    #[test]
    fn preflights_are_refused_with_a_reason() {
        let list = allowed();
        let own = own();
        let cors = Cors::new(&list, Some(&own));
        let refused = |origin, method, headers| match cors.preflight(origin, method, headers) {
            Preflight::Refused(why) => why,
            Preflight::Allowed(_) => panic!("allowed {origin:?} {method}"),
        };
        assert!(
            refused(Some("https://evil.example"), "GET", None).contains("CORS_ALLOWED_ORIGINS")
        );
        assert!(refused(None, "GET", None).contains("Origin"));
        assert!(refused(Some("https://app.example.com"), "PUT", None).contains("PUT"));
        assert!(
            refused(
                Some("https://app.example.com"),
                "POST",
                Some("content-type, x-debug")
            )
            .contains("x-debug")
        );
    }

    /// `CORS_ALLOWED_ORIGINS` feeds both CORS and the session's Origin check; both compare origins as
    /// `Origin`s, so a default port written out in the variable or in the header changes neither answer.
    #[test]
    fn cors_and_the_session_check_agree_on_configured_origins() {
        use crate::config::{CORS_VAR, Config};
        use redge::client::{TOKEN_VAR, URL_VAR};
        use redge::session::origin::origin_allowed;

        let url = "https://redge.example.dev/api/session";
        let own = Origin::of_url(url).unwrap();
        for (configured, sent) in [
            ("https://app.example.com:443", "https://app.example.com"),
            ("https://app.example.com", "https://app.example.com:443"),
            ("HTTP://App.Example.com:80/", "http://app.example.com"),
        ] {
            let config = Config::from_vars(|name| match name {
                URL_VAR => Some("https://eu1.example.io".into()),
                TOKEN_VAR => Some("token".into()),
                CORS_VAR => Some(configured.into()),
                _ => None,
            })
            .unwrap();
            let cors = Cors::new(&config.cors.allowed_origins, Some(&own));
            let session = &config.session.allowed_origins;
            assert!(cors.allows(sent), "CORS: {configured} / {sent}");
            assert!(
                origin_allowed(Some(sent), url, session),
                "session: {configured} / {sent}"
            );
            let Preflight::Allowed(headers) = cors.preflight(Some(sent), "POST", None) else {
                panic!("preflight refused: {configured} / {sent}")
            };
            let expected = Origin::parse(sent).unwrap().to_string();
            assert_eq!(
                header(&headers, "access-control-allow-origin"),
                Some(expected.as_str())
            );
            for other in [
                "https://app.example.com:8443",
                "https://evil.example",
                "null",
                "https://app.example.com/x",
            ] {
                assert!(!cors.allows(other), "CORS: {configured} / {other}");
                assert!(
                    !origin_allowed(Some(other), url, session),
                    "session: {configured} / {other}"
                );
            }
        }
    }
}

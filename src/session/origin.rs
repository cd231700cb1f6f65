//! CSRF defence for cookie sessions: the `Origin` check.
//!
//! A state-changing request (anything but `GET`, `HEAD`, `OPTIONS`) must carry an `Origin` header equal
//! to the origin of the request URL or to one the application allows. Browsers set `Origin` on every
//! cross-origin request and on same-origin `POST`/`PATCH`/`DELETE`, and page scripts cannot forge it, so
//! a form or `fetch` from another site is refused even though the browser attaches the cookie (which
//! `SameSite=Lax` already withholds from most cross-site subrequests; this check covers the rest, such as
//! a sibling subdomain, which counts as same-site). A missing or `null` Origin is refused: every browser
//! that matters sends a real one, non-browser clients can set it, and any site can produce `null` (see
//! [`crate::origin`]). No token is needed, so pages stay static.

use crate::origin::Origin;

/// Whether a request with this `Origin` header may change state: the origin must be the request URL's
/// own or one of `allowed`. Origins compare as [`Origin`]s, so `https://app.example.com:443` and
/// `https://app.example.com` are one origin; a missing header, `null` or anything else that is not an
/// origin is refused.
pub fn origin_allowed(origin: Option<&str>, request_url: &str, allowed: &[Origin]) -> bool {
    let Some(origin) = origin.and_then(|o| Origin::parse(o).ok()) else {
        return false;
    };
    Origin::of_url(request_url).is_ok_and(|own| own == origin) || allowed.contains(&origin)
}

/// Whether a method changes state (and so needs the Origin check).
pub fn is_state_changing(method: &str) -> bool {
    !matches!(
        method.to_ascii_uppercase().as_str(),
        "GET" | "HEAD" | "OPTIONS"
    )
}

/// Whether `url` is plain HTTP to a loopback host: the only place where the development cookie mode
/// ([`super::CookieConfig::insecure_dev`]) is honoured, so that a stray development setting in production
/// still yields `__Host-` and `Secure` cookies.
pub fn is_loopback_http(url: &str) -> bool {
    Origin::of_url(url).is_ok_and(|origin| {
        origin.scheme() == "http" && matches!(origin.host(), "localhost" | "127.0.0.1" | "[::1]")
    })
}

/// Headers a reverse proxy adds to what it forwards. A request that carries one did not come straight
/// from a browser on this machine, whatever its URL says.
pub const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Whether a request may use the development cookie mode: plain HTTP to a loopback host
/// ([`is_loopback_http`]) and no [`FORWARDING_HEADERS`], since a reverse proxy in front of a
/// self-hosted runtime can make every request look like loopback HTTP. `has_header` answers for a
/// lower-case header name.
pub fn is_local_development(url: &str, has_header: impl Fn(&str) -> bool) -> bool {
    is_loopback_http(url) && !FORWARDING_HEADERS.iter().any(|name| has_header(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxied_loopback_request_is_not_local_development() {
        let url = "http://127.0.0.1:8787/api/session";
        assert!(is_local_development(url, |_| false));
        for header in FORWARDING_HEADERS {
            assert!(
                !is_local_development(url, |name| name == header),
                "{header}"
            );
        }
        assert!(!is_local_development("https://127.0.0.1/api", |_| false));
        assert!(!is_local_development("http://app.example/api", |_| false));
    }

    #[test]
    fn same_origin_and_configured_origins_pass() {
        let url = "http://127.0.0.1:8787/api/session";
        let allowed = vec![Origin::parse("https://demo.example.com:443").unwrap()];
        assert!(origin_allowed(Some("http://127.0.0.1:8787"), url, &[]));
        for good in [
            "https://demo.example.com",
            "https://demo.example.com:443",
            "HTTPS://Demo.Example.com",
        ] {
            assert!(origin_allowed(Some(good), url, &allowed), "{good}");
        }
        for bad in [
            None,
            Some(""),
            Some("null"),
            Some("https://demo.example.com/path"),
            Some("http://127.0.0.1:8788"),
            Some("http://localhost:8787"),
            Some("https://127.0.0.1:8787"),
            Some("https://evil.example.com"),
            Some("https://demo.example.com.evil.io"),
        ] {
            assert!(!origin_allowed(bad, url, &allowed), "{bad:?}");
        }
    }

    #[test]
    fn only_reads_skip_the_check() {
        for m in ["GET", "head", "OPTIONS"] {
            assert!(!is_state_changing(m));
        }
        for m in ["POST", "PATCH", "DELETE", "PUT", "BREW"] {
            assert!(is_state_changing(m));
        }
    }

    #[test]
    fn development_cookies_only_on_plain_http_loopback() {
        assert!(is_loopback_http("http://127.0.0.1:8787/"));
        assert!(is_loopback_http("http://localhost/"));
        assert!(is_loopback_http("http://[::1]:80/"));
        assert!(!is_loopback_http("https://127.0.0.1/"));
        assert!(!is_loopback_http("http://example.com/"));
        assert!(!is_loopback_http("http://127.0.0.1.evil.io/"));
    }
}

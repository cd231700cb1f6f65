//! Web origins (`scheme://host[:port]`): one parser and one comparison for every place that decides
//! whether a request comes from an allowed site.
//!
//! The session's CSRF check ([`crate::session::origin`]) and a Worker's CORS answers compare the
//! `Origin` header with the same configured list. If each normalised origins its own way, one
//! configured value could pass one check and fail the other (`https://app.example.com:443` is the same
//! origin as `https://app.example.com`, and a browser only ever sends the second). So both hold
//! [`Origin`] values and compare them with `==`.
//!
//! An [`Origin`] is normalised when it is built: scheme and host in lowercase, the default port (443
//! for https, 80 for http) dropped. Only `http` and `https` origins exist here: those are the only
//! schemes a browser calls an HTTP API from with an origin of its own.
//!
//! # `null`
//!
//! `null` is not an [`Origin`]: browsers send `Origin: null` from sandboxed frames, `file:` and `data:`
//! documents and after some cross-origin redirects, so any web site can make one. Allowing it would
//! allow every site, and two `null`s are not the same origin anyway. [`Origin::parse`] refuses it
//! ([`OriginErrorKind::Opaque`]): a configured `null` is a configuration error, and a request that
//! sends it matches nothing.
//!
//! ```
//! use redge::origin::Origin;
//!
//! let configured = Origin::parse("https://App.Example.com:443").unwrap();
//! assert_eq!(configured.to_string(), "https://app.example.com");
//! assert_eq!(Origin::parse("https://app.example.com").unwrap(), configured);
//! assert_eq!(Origin::of_url("https://app.example.com/a?b").unwrap(), configured);
//! assert!(Origin::parse("https://app.example.com/a").is_err());
//! assert!(Origin::parse("null").is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// A tuple origin: http or https, a host, and a port other than the scheme's default.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    secure: bool,
    host: String,
    port: Option<u16>,
}

/// Why a text is not an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginErrorKind {
    /// No `scheme://`.
    NotAnOrigin,
    /// A scheme other than http and https.
    Scheme,
    /// `*`, alone or in the host.
    Wildcard,
    /// `null`: see the [module docs](self).
    Opaque,
    /// `user@` or `user:password@` before the host.
    Credentials,
    /// A path after the host (a single trailing `/` is accepted).
    Path,
    /// A query or a fragment.
    Query,
    /// An empty host or one with characters a host cannot have.
    Host,
    /// A port that is not a number from 1 to 65535.
    Port,
}

/// A text that is not an origin, and why. Its message quotes at most 80 characters of the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown:?} {}", describe(*.kind))]
pub struct OriginError {
    shown: String,
    kind: OriginErrorKind,
}

impl OriginError {
    fn new(text: &str, kind: OriginErrorKind) -> Self {
        OriginError {
            shown: text.chars().take(80).collect(),
            kind,
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> OriginErrorKind {
        self.kind
    }
}

fn describe(kind: OriginErrorKind) -> &'static str {
    match kind {
        OriginErrorKind::NotAnOrigin => "is not an origin such as https://app.example.com",
        OriginErrorKind::Scheme => "is not an http or https origin",
        OriginErrorKind::Wildcard => "is a wildcard, not an origin: list each origin",
        OriginErrorKind::Opaque => {
            "is the opaque origin any sandboxed or local document sends, so it can never be allowed"
        }
        OriginErrorKind::Credentials => {
            "has credentials (user@); an origin is scheme://host[:port]"
        }
        OriginErrorKind::Path => "has a path; an origin is scheme://host[:port]",
        OriginErrorKind::Query => "has a query or fragment; an origin is scheme://host[:port]",
        OriginErrorKind::Host => "has an invalid host",
        OriginErrorKind::Port => "has an invalid port (a number from 1 to 65535)",
    }
}

impl Origin {
    /// Parses an origin as configured or as sent in an `Origin` header: `scheme://host[:port]`, with
    /// surrounding whitespace and one trailing `/` ignored.
    ///
    /// # Errors
    /// An [`OriginError`] for `*`, `null`, another scheme, credentials, a path, a query, a fragment,
    /// an invalid host or an invalid port.
    pub fn parse(text: &str) -> Result<Origin, OriginError> {
        let text = text.trim();
        let fail = |kind| OriginError::new(text, kind);
        if text == "*" {
            return Err(fail(OriginErrorKind::Wildcard));
        }
        if text.eq_ignore_ascii_case("null") {
            return Err(fail(OriginErrorKind::Opaque));
        }
        let (secure, rest) = scheme(text)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(i) = rest.find(['/', '?', '#']) {
            return Err(fail(if rest[i..].starts_with('/') {
                OriginErrorKind::Path
            } else {
                OriginErrorKind::Query
            }));
        }
        if rest.contains('@') {
            return Err(fail(OriginErrorKind::Credentials));
        }
        authority(secure, rest).map_err(fail)
    }

    /// The origin of an absolute http(s) URL, such as a request's: its path, query, fragment and any
    /// credentials are not part of it.
    ///
    /// # Errors
    /// An [`OriginError`] when the URL has another scheme or an invalid host or port.
    pub fn of_url(url: &str) -> Result<Origin, OriginError> {
        let url = url.trim();
        let (secure, rest) = scheme(url)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority_text = &rest[..end];
        let host_port = authority_text
            .rsplit_once('@')
            .map_or(authority_text, |(_, h)| h);
        authority(secure, host_port).map_err(|kind| OriginError::new(url, kind))
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.secure { "https" } else { "http" }
    }

    /// The host in lowercase; an IPv6 address keeps its brackets (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

/// Splits off `http://` or `https://` (in any case).
fn scheme(text: &str) -> Result<(bool, &str), OriginError> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(OriginError::new(text, OriginErrorKind::NotAnOrigin));
    };
    if scheme.eq_ignore_ascii_case("https") {
        Ok((true, rest))
    } else if scheme.eq_ignore_ascii_case("http") {
        Ok((false, rest))
    } else {
        Err(OriginError::new(text, OriginErrorKind::Scheme))
    }
}

/// `host[:port]` with nothing else around it.
fn authority(secure: bool, text: &str) -> Result<Origin, OriginErrorKind> {
    // An IPv6 host is bracketed (`[::1]:3000`); otherwise the last colon starts the port.
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']').ok_or(OriginErrorKind::Host)?;
        let (host, tail) = text.split_at(end + 1);
        match tail.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if tail.is_empty() => (host, None),
            None => return Err(OriginErrorKind::Host),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.contains('*') {
        return Err(OriginErrorKind::Wildcard);
    }
    let valid_host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => {
            !ipv6.is_empty()
                && ipv6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'))
        }
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        }
    };
    if !valid_host {
        return Err(OriginErrorKind::Host);
    }
    let default_port = if secure { 443 } else { 80 };
    let port = match port {
        None => None,
        // Digits only: `u16::from_str` would also take a sign (`+443`), which no URL has.
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(OriginErrorKind::Port),
                Ok(n) if n == default_port => None,
                Ok(n) => Some(n),
            }
        }
        Some(_) => return Err(OriginErrorKind::Port),
    };
    Ok(Origin {
        secure,
        host: host.to_ascii_lowercase(),
        port,
    })
}

impl fmt::Display for Origin {
    /// The serialised origin, as a browser sends it in `Origin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Origin::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        Origin::parse(text).unwrap().to_string()
    }

    #[test]
    fn default_ports_case_and_a_trailing_slash_are_normalised() {
        assert_eq!(
            parsed("https://app.example.com:443"),
            "https://app.example.com"
        );
        assert_eq!(parsed("http://x:80"), "http://x");
        assert_eq!(
            parsed(" HTTPS://App.Example.COM/ "),
            "https://app.example.com"
        );
        assert_eq!(parsed("http://x:443"), "http://x:443");
        assert_eq!(parsed("https://x:80"), "https://x:80");
        assert_eq!(parsed("http://127.0.0.1:8787"), "http://127.0.0.1:8787");
        assert_eq!(parsed("http://[::1]:3000"), "http://[::1]:3000");
        assert_eq!(parsed("http://[::1]:80"), "http://[::1]");
        assert_eq!(parsed("https://a.example:0443"), "https://a.example");
        assert_eq!(
            Origin::parse("https://app.example.com:443"),
            Origin::parse("https://APP.example.com")
        );
        assert_ne!(
            Origin::parse("https://app.example.com"),
            Origin::parse("http://app.example.com")
        );
    }

    #[test]
    fn parts_are_available() {
        let o = Origin::parse("HTTP://Local.Test:8080").unwrap();
        assert_eq!(
            (o.scheme(), o.host(), o.port()),
            ("http", "local.test", Some(8080))
        );
        let o = Origin::parse("https://a.example:443").unwrap();
        assert_eq!((o.scheme(), o.port()), ("https", None));
    }

    #[test]
    fn what_is_not_an_origin_says_why() {
        use OriginErrorKind::*;
        for (text, kind) in [
            ("*", Wildcard),
            ("https://*.example.com", Wildcard),
            ("null", Opaque),
            ("NULL", Opaque),
            ("app.example.com", NotAnOrigin),
            ("", NotAnOrigin),
            ("ftp://x.example", Scheme),
            ("javascript://x", Scheme),
            ("https://a.example/x", Path),
            ("https://a.example//", Path),
            ("https://a.example?x", Query),
            ("https://a.example#x", Query),
            ("https://user@a.example", Credentials),
            ("https://u:p@a.example", Credentials),
            ("https://", Host),
            ("https://a_b.example", Host),
            ("https://a b.example", Host),
            ("https://a\\b.example", Host),
            ("https://[::1", Host),
            ("https://[::1]x", Host),
            ("https://[]", Host),
            ("https://:443", Host),
            ("https://a.example:0", Port),
            ("https://a.example:99999", Port),
            ("https://a.example:65536", Port),
            ("https://a.example:port", Port),
            ("https://a.example:", Port),
            ("https://a.example:+443", Port),
        ] {
            let err = Origin::parse(text).unwrap_err();
            assert_eq!(err.kind(), kind, "{text:?}: {err}");
            assert!(err.to_string().starts_with(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn long_input_is_cut_in_messages() {
        let long = format!("https://{}.example/x", "a".repeat(500));
        let message = Origin::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn the_origin_of_a_url_drops_path_query_and_credentials() {
        let of = |url| Origin::of_url(url).map(|o| o.to_string());
        assert_eq!(
            of("https://App.Example.com:443/x?y").as_deref(),
            Ok("https://app.example.com")
        );
        assert_eq!(
            of("http://127.0.0.1:8787/api/x?y#z").as_deref(),
            Ok("http://127.0.0.1:8787")
        );
        assert_eq!(of("http://u:p@h.io/").as_deref(), Ok("http://h.io"));
        assert_eq!(of("http://h.io?q").as_deref(), Ok("http://h.io"));
        for bad in [
            "ftp://h.io",
            "h.io",
            "https://",
            "not a url",
            "https://a b/",
        ] {
            assert!(Origin::of_url(bad).is_err(), "{bad}");
        }
    }
}

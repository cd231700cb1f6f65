//! Who a request comes from, for rate limiting: which header to believe, and the key an address
//! becomes.
//!
//! A header is only as good as whoever set it. On Cloudflare's edge `CF-Connecting-IP` is set by the
//! edge, over anything the client sent; a Worker reached any other way (self-hosted workerd, a tunnel,
//! `wrangler dev --ip 0.0.0.0`) sees whatever the client wrote there. So `TRUSTED_CLIENT_IP_HEADER`
//! decides:
//!
//! | Value | Whose address |
//! |---|---|
//! | unset, or `cf-connecting-ip` | `CF-Connecting-IP`, only on requests that carry Cloudflare's `cf` object with a `colo` (the edge, and `wrangler dev`, which sets both from the socket); elsewhere no address is known |
//! | another header name, such as `x-forwarded-for` | that header, as the reverse proxy in front of the Worker sets it: the last address of a list (what the proxy itself saw). Only for a proxy that overwrites or appends to it |
//! | `none` | no header: every request is unknown |
//!
//! An IPv4 address is its own key. An IPv6 address is keyed by its /64: a single host usually holds a
//! whole /64 and can rotate through it at will, so a per-address key would never limit it. An
//! IPv4-mapped IPv6 address is keyed as the IPv4 address.
//!
//! When no address is known (no trusted header, or a value that is not an IP address) the request is
//! [`ClientKey::Unknown`]: such requests share one budget, keyed `unknown`. That is strict by design:
//! a deployment that gets there should say which header to trust, and the Worker logs once per isolate
//! that it happens.

use std::net::{IpAddr, Ipv6Addr};

/// Name of the variable that says which header carries the client's address.
pub const TRUSTED_HEADER_VAR: &str = "TRUSTED_CLIENT_IP_HEADER";

/// Cloudflare's header with the connecting client's address.
const CF_HEADER: &str = "cf-connecting-ip";

/// Which header to believe (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// `CF-Connecting-IP`, on requests that came through Cloudflare's edge (or `wrangler dev`).
    #[default]
    Cloudflare,
    /// A header set by a reverse proxy in front of the Worker (lower-case name).
    Header(String),
    /// No header.
    Nothing,
}

impl Trust {
    /// Parses `TRUSTED_CLIENT_IP_HEADER`.
    ///
    /// # Errors
    /// A message naming the variable when the value is not a header name.
    pub fn parse(text: &str) -> Result<Trust, String> {
        let name = text.trim().to_ascii_lowercase();
        if name == "none" {
            return Ok(Trust::Nothing);
        }
        if name == CF_HEADER {
            return Ok(Trust::Cloudflare);
        }
        let token = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token {
            return Err(format!(
                "{TRUSTED_HEADER_VAR} must be a header name (letters, digits, '-', at most 64), \
                 `cf-connecting-ip` or `none`"
            ));
        }
        Ok(Trust::Header(name))
    }
}

/// The rate-limit key of a request's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKey {
    /// An IPv4 address, or an IPv6 /64 (`2001:db8:1:2::/64`).
    Address(String),
    /// No trusted address: every such request shares one budget.
    Unknown,
}

impl ClientKey {
    /// The text the limiter keys on.
    pub fn as_str(&self) -> &str {
        match self {
            ClientKey::Address(key) => key,
            ClientKey::Unknown => "unknown",
        }
    }
}

/// The client's key: the trusted header's address, if any. `header` reads a request header (any
/// case); `from_cloudflare` says whether the request carries Cloudflare's `cf` object with a `colo`
/// (asked only when that matters).
pub fn client_key(
    trust: &Trust,
    header: impl Fn(&str) -> Option<String>,
    from_cloudflare: impl FnOnce() -> bool,
) -> ClientKey {
    let value = match trust {
        Trust::Cloudflare if from_cloudflare() => header(CF_HEADER),
        Trust::Header(name) => header(name),
        Trust::Cloudflare | Trust::Nothing => None,
    };
    value
        .as_deref()
        .and_then(|v| v.rsplit(',').map(str::trim).find(|s| !s.is_empty()))
        .and_then(address_key)
        .map_or(ClientKey::Unknown, ClientKey::Address)
}

/// The key of one address as a header writes it (`[v6]:port` and `v4:port` forms accepted); `None`
/// when it is not an IP address.
fn address_key(text: &str) -> Option<String> {
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))?;
    Some(match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn key(text: &str) -> ClientKey {
        ClientKey::Address(text.to_owned())
    }

    #[test]
    fn cf_connecting_ip_counts_only_on_requests_through_cloudflare() {
        let sent = headers(&[("CF-Connecting-IP", "203.0.113.9")]);
        assert_eq!(
            client_key(&Trust::Cloudflare, &sent, || true),
            key("203.0.113.9")
        );
        // Self-hosted workerd: the header is whatever the client wrote.
        assert_eq!(
            client_key(&Trust::Cloudflare, &sent, || false),
            ClientKey::Unknown
        );
        assert_eq!(
            client_key(&Trust::Nothing, &sent, || true),
            ClientKey::Unknown
        );
    }

    #[test]
    fn a_proxy_header_gives_the_address_the_proxy_saw() {
        let trust = Trust::parse("X-Forwarded-For").unwrap();
        let sent = headers(&[
            ("x-forwarded-for", "198.51.100.1, 10.0.0.7 , 203.0.113.9"),
            ("cf-connecting-ip", "192.0.2.1"),
        ]);
        // The client wrote the first two; the proxy appended what it saw.
        assert_eq!(client_key(&trust, &sent, || false), key("203.0.113.9"));
        assert_eq!(client_key(&trust, &sent, || true), key("203.0.113.9"));
        assert_eq!(
            client_key(&trust, headers(&[]), || true),
            ClientKey::Unknown
        );
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_so_rotation_inside_it_does_not_help() {
        let a = address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd").unwrap();
        let b = address_key("2001:0db8:0001:0002:0:0:0:1").unwrap();
        let other = address_key("2001:db8:1:3::1").unwrap();
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(address_key("[2001:db8:1:2::9]:443").unwrap(), a);
    }

    #[test]
    fn ipv4_and_mapped_ipv4_are_one_key() {
        assert_eq!(address_key("203.0.113.9").unwrap(), "203.0.113.9");
        assert_eq!(address_key("::ffff:203.0.113.9").unwrap(), "203.0.113.9");
        assert_eq!(address_key("203.0.113.9:5000").unwrap(), "203.0.113.9");
    }

    #[test]
    fn what_is_not_an_address_is_unknown() {
        for bad in [
            "",
            "anonymous",
            "203.0.113",
            "1.2.3.4.5",
            "::g",
            "unknown",
            " , ",
        ] {
            assert_eq!(address_key(bad), None, "{bad:?}");
        }
        let sent = headers(&[("cf-connecting-ip", "<script>")]);
        assert_eq!(
            client_key(&Trust::Cloudflare, sent, || true),
            ClientKey::Unknown
        );
        assert_eq!(ClientKey::Unknown.as_str(), "unknown");
    }

    #[test]
    fn the_setting_is_a_header_name_or_none() {
        assert_eq!(
            Trust::parse(" CF-Connecting-IP ").unwrap(),
            Trust::Cloudflare
        );
        assert_eq!(Trust::parse("none").unwrap(), Trust::Nothing);
        assert_eq!(
            Trust::parse("X-Real-IP").unwrap(),
            Trust::Header("x-real-ip".to_owned())
        );
        for bad in ["", "x forwarded", "x:y", &"h".repeat(65)] {
            let err = Trust::parse(bad).unwrap_err();
            assert!(err.contains(TRUSTED_HEADER_VAR), "{err}");
        }
    }
}

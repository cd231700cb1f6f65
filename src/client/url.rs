//! The one rule for an `http(s)` base URL read from configuration (the Redis service's, an origin's).
//!
//! Configuration errors travel far: into a 500 response, a log line, a dashboard. A URL pasted into the
//! wrong variable is often a secret (Upstash shows the `redis://default:<password>@host` connection
//! string right beside the REST URL), so a message about a URL never repeats the URL. It names the
//! variable and what is wrong, and at most the scheme, which holds nothing secret. [`redact`] gives
//! the form that may go to a log: scheme, host and port, with any user name and password replaced.

/// A valid base URL: trimmed, without a trailing `/`.
///
/// # Errors
/// A message naming `var` and the problem, without the value: a Redis connection string
/// (`redis://`, `rediss://`), a user name or password in the URL, a scheme other than `http`/`https`,
/// or no host.
pub fn check_http_url(var: &str, url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let scheme = scheme_of(trimmed);
    let rest = match scheme.as_deref() {
        Some("http" | "https") => &trimmed[scheme.as_deref().map_or(0, str::len) + 1..],
        Some("redis" | "rediss") => {
            return Err(format!(
                "{var} holds a Redis connection string ({}://...), not an HTTP URL: use the REST URL \
                 (https://...) that the service shows beside it (the value is not repeated here: it \
                 may hold a password)",
                scheme.unwrap_or_default()
            ));
        }
        Some(other) => {
            return Err(format!(
                "{var} must be an absolute http:// or https:// URL such as https://example.upstash.io; \
                 it starts with {other:?} (the rest is not repeated here: it may hold a secret)"
            ));
        }
        None => {
            return Err(format!(
                "{var} must be an absolute http:// or https:// URL such as https://example.upstash.io \
                 (the value is not repeated here: it may hold a secret)"
            ));
        }
    };
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(format!(
            "{var} must be an absolute URL with a host, such as https://example.upstash.io"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "{var} contains a user name or password (user:password@host): remove them from the URL \
             (tokens go in their own variable; the value is not repeated here)"
        ));
    }
    if authority.is_empty() || trimmed.contains(char::is_whitespace) {
        return Err(format!(
            "{var} must be an absolute URL with a host and no spaces, such as \
             https://example.upstash.io (the value is not repeated here: it may hold a secret)"
        ));
    }
    Ok(trimmed.to_owned())
}

/// A form of `url` fit for a log line: `scheme://host[:port]`, any `user:password@` replaced by
/// `***@`, the path, query and fragment left out (they may hold tokens); `(not a URL)` when no scheme
/// and host can be told apart.
pub fn redact(url: &str) -> String {
    let trimmed = url.trim();
    let Some(scheme) = scheme_of(trimmed) else {
        return "(not a URL)".to_owned();
    };
    let rest = trimmed[scheme.len() + 1..].trim_start_matches('/');
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => format!("{scheme}://{authority}"),
    }
}

/// The scheme, lower-cased, when the text starts with one (RFC 3986: a letter, then letters, digits,
/// `+`, `-`, `.`; at most 16 characters here), followed by `:`.
fn scheme_of(text: &str) -> Option<String> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = scheme.len() <= 16
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-Pa55";

    #[test]
    fn good_urls_are_trimmed() {
        assert_eq!(
            check_http_url("V", " https://eu1.example.io/ ").unwrap(),
            "https://eu1.example.io"
        );
        assert_eq!(
            check_http_url("V", "HTTP://127.0.0.1:8079").unwrap(),
            "HTTP://127.0.0.1:8079"
        );
        assert_eq!(
            check_http_url("V", "https://origin.example/api/v1").unwrap(),
            "https://origin.example/api/v1"
        );
    }

    #[test]
    fn no_message_repeats_a_secret_and_every_one_names_the_variable() {
        let cases = [
            (
                format!("redis://default:{SECRET}@eu1.example.io:6379"),
                "connection string",
            ),
            (
                format!("rediss://default:{SECRET}@eu1.example.io:6380"),
                "connection string",
            ),
            (
                format!("https://user:{SECRET}@eu1.example.io"),
                "user name or password",
            ),
            (
                format!("http://{SECRET}@eu1.example.io/x"),
                "user name or password",
            ),
            (format!("ftp://{SECRET}.example.io"), "\"ftp\""),
            (format!("eu1.example.io/{SECRET}"), "absolute"),
            (SECRET.to_owned(), "absolute"),
            (format!("https:{SECRET}"), "with a host"),
            (format!("https://a b/{SECRET}"), "no spaces"),
            ("https://".to_owned(), "with a host"),
        ];
        for (url, expected) in cases {
            let message = check_http_url("SOME_URL", &url).unwrap_err();
            assert!(message.contains("SOME_URL"), "{url}: {message}");
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains(SECRET), "{url}: {message}");
        }
    }

    #[test]
    fn an_at_sign_after_the_host_is_not_a_credential() {
        assert!(check_http_url("V", "https://example.io/users/@me").is_ok());
        assert!(check_http_url("V", "https://example.io/?mail=a@b").is_ok());
    }

    #[test]
    fn redaction_keeps_scheme_host_and_port_only() {
        assert_eq!(
            redact(&format!("redis://default:{SECRET}@eu1.example.io:6379")),
            "redis://***@eu1.example.io:6379"
        );
        assert_eq!(
            redact(&format!("https://eu1.example.io/path?token={SECRET}")),
            "https://eu1.example.io"
        );
        assert_eq!(redact(SECRET), "(not a URL)");
        assert_eq!(redact(""), "(not a URL)");
    }
}

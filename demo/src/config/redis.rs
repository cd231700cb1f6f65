//! The Redis service: URL, token and deadline, checked with the client's own rules.

use redge::client::{
    Client, DEFAULT_TIMEOUT_MS, HttpRequest, HttpResponse, TOKEN_VAR, Transport, URL_VAR,
};

use super::reader::Reader;

/// Name of the variable with the Redis deadline.
pub const TIMEOUT_VAR: &str = "REDIS_TIMEOUT_MS";

/// The longest Redis deadline accepted: a Worker request should not hang on Redis for longer.
pub(super) const MAX_TIMEOUT_MS: u32 = 30_000;

/// Where Redis is and how long to wait for it.
pub(super) struct RedisSettings {
    pub(super) url: String,
    pub(super) token: String,
    pub(super) timeout_ms: u32,
}

impl RedisSettings {
    pub(super) fn read(reader: &mut Reader<'_>) -> RedisSettings {
        // Each checked on its own with the client's rules (the other one replaced by a valid
        // placeholder), so a bad URL is reported even when the token is missing too.
        let url = reader.read(URL_VAR);
        match &url {
            None => reader.problem(URL_VAR, format!("{URL_VAR} is missing")),
            Some(url) => {
                if let Err(e) = Client::with_transport(url, "placeholder", Unused) {
                    reader.problem(URL_VAR, e.to_string());
                }
            }
        }
        let token = reader.read(TOKEN_VAR);
        match &token {
            None => reader.problem(TOKEN_VAR, format!("{TOKEN_VAR} is missing")),
            Some(token) => {
                if let Err(e) = Client::with_transport("https://placeholder.invalid", token, Unused)
                {
                    reader.problem(TOKEN_VAR, e.to_string());
                }
            }
        }
        let timeout_ms = reader.number(
            TIMEOUT_VAR,
            DEFAULT_TIMEOUT_MS,
            |ms| (1..=MAX_TIMEOUT_MS).contains(ms),
            &format!("a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}"),
        );
        RedisSettings {
            url: url.unwrap_or_default(),
            token: token.unwrap_or_default(),
            timeout_ms,
        }
    }
}

/// A transport that is never used: it lets the configuration run the client's URL and token checks
/// without a runtime.
struct Unused;

impl Transport for Unused {
    async fn send(&self, _request: HttpRequest) -> redge::Result<HttpResponse> {
        Err(redge::Error::Transport(
            "configuration check only; nothing is sent".into(),
        ))
    }
}

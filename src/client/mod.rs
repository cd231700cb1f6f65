//! The HTTP Redis client.
//!
//! A command is one `POST` of a JSON array to the service's base URL with `Authorization: Bearer <token>`;
//! replies come back as `{"result": ...}` with every string base64-encoded (we always ask for
//! `Upstash-Encoding: base64`, so binary values survive). See [`protocol`] for the wire format.
//!
//! Sending happens in exactly one place, [`Client::query`]; everything else builds commands.
//!
//! ```ignore
//! // In a JavaScript runtime (Worker, Node, browser):
//! use redge::client::{cmd, Client};
//! let client = Client::new("https://example.upstash.io", "token")?;
//! let pong: String = client.query(&cmd("PING")).await?;
//! ```

mod cmd;
pub mod protocol;
mod reply;
mod transport;

use std::cell::{Cell, RefCell};

pub use cmd::{Cmd, ToArg, cmd};
pub use reply::{FromReply, Mismatch, Reply};
#[cfg(target_arch = "wasm32")]
pub use transport::FetchTransport;
pub use transport::{HttpRequest, HttpResponse, Transport};

use crate::{Error, Result};

/// The default deadline of one call: long enough for a cross-region round trip, short enough that a
/// stalled service does not hold a request for seconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 1_000;

/// Environment variable holding the service's base URL (the name the official SDK uses).
pub const URL_VAR: &str = "UPSTASH_REDIS_REST_URL";
/// Environment variable holding the service's token (the name the official SDK uses).
pub const TOKEN_VAR: &str = "UPSTASH_REDIS_REST_TOKEN";

/// Counters of what a client has sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent (round trips).
    pub round_trips: u64,
    /// Redis commands carried by those requests.
    pub commands: u64,
}

/// A client for one HTTP Redis service.
#[derive(Debug)]
pub struct Client<T: Transport> {
    url: String,
    auth: String,
    timeout_ms: u32,
    transport: T,
    sync_token: RefCell<Option<String>>,
    stats: Cell<Stats>,
}

#[cfg(target_arch = "wasm32")]
impl Client<FetchTransport> {
    /// A client that sends through the runtime's global `fetch`.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL is not an absolute `http(s)` URL or the token is empty.
    pub fn new(url: &str, token: &str) -> Result<Self> {
        Self::with_transport(url, token, FetchTransport)
    }
}

impl<T: Transport> Client<T> {
    /// A client that sends through the given transport.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL is not an absolute `http(s)` URL or the token is empty.
    pub fn with_transport(url: &str, token: &str, transport: T) -> Result<Self> {
        Ok(Client {
            url: validate_url(url)?,
            auth: format!("Bearer {}", validate_token(token)?),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            transport,
            sync_token: RefCell::new(None),
            stats: Cell::new(Stats::default()),
        })
    }

    /// Sets the deadline of each call, in milliseconds (at least 1).
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = timeout_ms.max(1);
        self
    }

    /// What this client has sent so far.
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// The latest read-your-writes token seen, to hand to a client in a later request.
    pub fn sync_token(&self) -> Option<String> {
        self.sync_token.borrow().clone()
    }

    /// Sends one command and converts its reply.
    ///
    /// # Errors
    /// Any [`Error`]: transport, timeout, HTTP status, a Redis error reply, a malformed reply, or
    /// [`Error::Type`] when the reply does not convert to `R`.
    pub async fn query<R: FromReply>(&self, cmd: &Cmd) -> Result<R> {
        let body = protocol::encode_command(cmd)?;
        let reply = self.send(&self.url, body, 1).await?;
        R::from_reply(reply).map_err(|m| Error::Type {
            command: cmd.name().to_ascii_uppercase(),
            expected: m.expected,
            actual: m.actual,
        })
    }

    async fn send(&self, url: &str, body: Vec<u8>, commands: u64) -> Result<Reply> {
        let mut headers = vec![
            ("authorization".to_owned(), self.auth.clone()),
            ("content-type".to_owned(), "application/json".to_owned()),
            (protocol::ENCODING_HEADER.to_owned(), "base64".to_owned()),
        ];
        if let Some(token) = self.sync_token() {
            headers.push((protocol::SYNC_TOKEN_HEADER.to_owned(), token));
        }
        let mut stats = self.stats.get();
        stats.round_trips += 1;
        stats.commands += commands;
        self.stats.set(stats);
        let response = self
            .transport
            .send(HttpRequest {
                url: url.to_owned(),
                headers,
                body,
                timeout_ms: self.timeout_ms,
            })
            .await?;
        // Keep the latest token, from error responses too.
        if let Some(token) = response.sync_token {
            *self.sync_token.borrow_mut() = Some(token);
        }
        protocol::decode_response(response.status, &response.body, true)
    }
}

fn validate_url(url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(Error::Config(format!(
            "{URL_VAR} must be an absolute http:// or https:// URL such as https://example.upstash.io, got {:?}",
            url.chars().take(80).collect::<String>()
        ))),
    }
}

fn validate_token(token: &str) -> Result<&str> {
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Config(format!("{TOKEN_VAR} is empty")));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Config(format!(
            "{TOKEN_VAR} contains spaces or non-ASCII characters; copy it again from the service's console"
        )));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_validated_with_a_clear_message() {
        assert_eq!(
            validate_url("https://eu1.example.io/").unwrap(),
            "https://eu1.example.io"
        );
        assert_eq!(
            validate_url("http://127.0.0.1:8079").unwrap(),
            "http://127.0.0.1:8079"
        );
        for bad in ["", "example.io", "ftp://x", "https://", "https://a b"] {
            let err = validate_url(bad).unwrap_err();
            assert!(err.to_string().contains(URL_VAR), "{bad}: {err}");
        }
    }

    #[test]
    fn tokens_are_validated() {
        assert_eq!(validate_token(" abc ").unwrap(), "abc");
        assert!(validate_token("").is_err());
        assert!(validate_token("a b").is_err());
        assert!(validate_token("tøken").is_err());
    }
}

//! The HTTP Redis client.
//!
//! A command is one `POST` of a JSON array to the service's base URL with `Authorization: Bearer <token>`;
//! replies come back as `{"result": ...}` with every string base64-encoded (we always ask for
//! `Upstash-Encoding: base64`, so binary values survive). See [`protocol`] for the wire format.
//!
//! - **Commands**: [`cmd`] builds any command; [`commands`] has one typed helper per common command.
//! - **Replies**: [`Reply`] keeps bytes as bytes; [`FromReply`] converts to integers, floats, booleans,
//!   strings, bytes, options, tuples, vectors, maps, [`Pairs`] and, only when asked, [`Json`]. A reply of
//!   another shape is [`Error::Type`] naming the command, what was expected and what came; nothing panics.
//! - **Batches**: [`Client::batch`] (a pipeline) and [`Client::transaction`] gather commands from
//!   independent components into one round trip, each read back through its own typed [`Handle`]; see
//!   [`batch`] for the guarantees (order, per-entry errors, chunking, scripts).
//! - **Scripts**: [`Script`] computes its SHA1 once; [`Client::eval`] and [`Batch::add_script`] send
//!   `EVAL` on first use per isolate, `EVALSHA` afterwards, and repair a NOSCRIPT; see [`script`].
//! - **Deadlines and retries**: every call has one deadline ([`DEFAULT_TIMEOUT_MS`] = 1 s by default),
//!   retries included; the request in flight is aborted when it passes ([`Error::Timeout`]). Only
//!   read-only commands ([`Cmd::is_read_only`]) are retried, at most [`MAX_RETRIES`] times, after a
//!   transport error or a 5xx status, with a 25-50-100 ms backoff that must fit in the deadline. A write
//!   whose response was lost is never repeated unless [`Options::retry_writes`] says so.
//! - **Read-your-writes**: the latest `upstash-sync-token` seen (from error responses too) is sent with
//!   the next request; [`Client::sync_token`] and [`Client::set_sync_token`] carry it across requests.
//! - **Counters**: [`Client::stats`] counts round trips, commands and retries.
//!
//! Requests are sent in exactly one place (the private `round_trip` behind [`Client::query`], batches and
//! scripts); helpers only build commands.
//!
//! ```no_run
//! # async fn demo() -> redge::Result<()> {
//! // In a JavaScript runtime (Worker, Node, browser):
//! use redge::client::{commands, Client, Options};
//! let client = Client::with_options("https://example.upstash.io", "token", Options::default())?;
//! let pong: String = client.query(&commands::ping()).await?;
//! let batch = client.batch();
//! let hits = batch.add::<i64>(commands::incr("hits"));
//! let name = batch.add::<Option<String>>(commands::get("name"));
//! batch.send().await?;
//! let (hits, name) = (hits.take()?, name.take()?);
//! # Ok(()) }
//! ```

pub mod batch;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod client_tests;
mod cmd;
pub mod commands;
// The wire format, shared with redge-gateway; not part of the API.
#[doc(hidden)]
pub mod protocol;
pub mod read_only;
mod reply;
mod scan;
pub mod script;
mod transport;
pub mod url;

use std::cell::{Cell, RefCell};

pub use batch::{Batch, Handle};
pub use cmd::{Cmd, ToArg, cmd};
pub use reply::{FromReply, Json, Mismatch, Pairs, Reply};
pub use scan::Scan;
pub use script::Script;
pub use transport::FetchTransport;
#[cfg(target_arch = "wasm32")]
pub(crate) use transport::sleep_ms;
pub(crate) use transport::within;
/// The scripted transport, for other modules' unit tests.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) use transport::{FakeTransport, fake_server};
pub use transport::{HttpRequest, HttpResponse, Transport};

use crate::{Error, Result};

/// The default deadline of one call, retries included: long enough for a cross-region round trip and a
/// retry, short enough that a stalled service does not hold a page for seconds (the official SDK has no
/// deadline at all and sleeps about 4.3 s across its retries).
pub const DEFAULT_TIMEOUT_MS: u32 = 1_000;

/// Retries after the first attempt are capped at this many, whatever [`Options::retries`] says.
pub const MAX_RETRIES: u8 = 2;

/// The largest request body a batch chunk may have. Upstash refuses more than 10 MB (and the gateway
/// 10 MiB); half a megabyte of headroom covers the JSON framing and a little slack.
pub const MAX_REQUEST_BYTES: usize = 9_500_000;

/// The most commands sent in one `/pipeline` request (the official SDK's largest automatic batch).
pub const MAX_BATCH_COMMANDS: usize = 1_000;

/// Environment variable holding the service's base URL (the name the official SDK uses).
pub const URL_VAR: &str = "UPSTASH_REDIS_REST_URL";
/// Environment variable holding the service's token (the name the official SDK uses).
pub const TOKEN_VAR: &str = "UPSTASH_REDIS_REST_TOKEN";

/// The first backoff before a retry; each retry doubles it, up to [`BACKOFF_CAP_MS`].
const BACKOFF_MS: u32 = 25;
/// The longest pause between two attempts.
const BACKOFF_CAP_MS: u32 = 100;
/// A retry is not started with less time than this left before the deadline: it could not finish.
const MIN_ATTEMPT_MS: u64 = 20;

/// How a client sends: deadline, retries, script policy, chunking.
///
/// ```
/// use redge::client::Options;
/// let options = Options { timeout_ms: 300, ..Options::default() };
/// assert_eq!(options.retries, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The deadline of one call in milliseconds, retries and backoff included; the request in flight is
    /// aborted when it passes. Default [`DEFAULT_TIMEOUT_MS`].
    pub timeout_ms: u32,
    /// Retries of a failed read after a transport error or a 5xx status (at most [`MAX_RETRIES`]).
    /// Default 2.
    pub retries: u8,
    /// Also retry commands that write. Off by default: a write whose response was lost may have been
    /// applied, and applying `INCR` twice is a bug.
    pub retry_writes: bool,
    /// Send a script's whole source (`EVAL`) the first time this isolate uses it against this service,
    /// `EVALSHA` afterwards. Default true: no NOSCRIPT round trip on a cold isolate. When false, the first
    /// call tries `EVALSHA` and falls back to `EVAL` on NOSCRIPT (the official SDK's behaviour).
    pub eval_first: bool,
    /// The largest body of one batch request. Default [`MAX_REQUEST_BYTES`].
    pub max_request_bytes: usize,
    /// The most commands in one `/pipeline` request. Default [`MAX_BATCH_COMMANDS`].
    pub max_batch_commands: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retries: MAX_RETRIES,
            retry_writes: false,
            eval_first: true,
            max_request_bytes: MAX_REQUEST_BYTES,
            max_batch_commands: MAX_BATCH_COMMANDS,
        }
    }
}

/// Counters of what a client has sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent (round trips), retries included.
    pub round_trips: u64,
    /// Redis commands carried by those requests.
    pub commands: u64,
    /// Requests that were retries of an earlier, failed one.
    pub retries: u64,
}

/// A client for one HTTP Redis service.
pub struct Client<T: Transport = FetchTransport> {
    url: String,
    auth: String,
    options: Options,
    transport: T,
    sync_token: RefCell<Option<String>>,
    stats: Cell<Stats>,
}

/// Shows the URL and options, never the token.
impl<T: Transport> std::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("options", &self.options)
            .field("stats", &self.stats.get())
            .finish_non_exhaustive()
    }
}

impl Client<FetchTransport> {
    /// A client that sends through the runtime's global `fetch`, with default [`Options`].
    ///
    /// # Errors
    /// [`Error::Config`] when the URL is not an absolute `http(s)` URL or the token is empty.
    pub fn new(url: &str, token: &str) -> Result<Self> {
        Self::with_transport(url, token, FetchTransport)
    }

    /// A client configured from a Worker's env: [`URL_VAR`] and [`TOKEN_VAR`], each a var or a secret
    /// (the names the official SDK reads). Feature `worker`, wasm32 only.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or invalid.
    #[cfg(all(feature = "worker", target_arch = "wasm32"))]
    pub fn from_env(env: &worker::Env) -> Result<Self> {
        Self::from_vars(
            |name| {
                env.var(name)
                    .map(|v| v.to_string())
                    .or_else(|_| env.secret(name).map(|v| v.to_string()))
                    .ok()
            },
            FetchTransport,
        )
    }

    /// A client that sends through the runtime's global `fetch`, with the given options.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL is not an absolute `http(s)` URL or the token is empty.
    pub fn with_options(url: &str, token: &str, options: Options) -> Result<Self> {
        Ok(Self::with_transport(url, token, FetchTransport)?.options(options))
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
            options: Options::default(),
            transport,
            sync_token: RefCell::new(None),
            stats: Cell::new(Stats::default()),
        })
    }

    /// A client configured through `get` (an environment lookup: [`URL_VAR`] and [`TOKEN_VAR`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or invalid.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>, transport: T) -> Result<Self> {
        let read = |name: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        let url = read(URL_VAR)?;
        let token = read(TOKEN_VAR)?;
        Self::with_transport(url.trim(), token.trim(), transport)
    }

    /// Replaces the options (the deadline is at least 1 ms, retries at most [`MAX_RETRIES`]).
    pub fn options(mut self, options: Options) -> Self {
        self.options = Options {
            timeout_ms: options.timeout_ms.max(1),
            retries: options.retries.min(MAX_RETRIES),
            max_request_bytes: options.max_request_bytes.max(1),
            max_batch_commands: options.max_batch_commands.max(1),
            ..options
        };
        self
    }

    /// Sets the deadline of each call, in milliseconds (at least 1).
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.options.timeout_ms = timeout_ms.max(1);
        self
    }

    /// Allows retrying writes whose response was lost (see [`Options::retry_writes`]).
    pub fn retry_writes(mut self, retry: bool) -> Self {
        self.options.retry_writes = retry;
        self
    }

    /// The options in force.
    pub fn current_options(&self) -> Options {
        self.options
    }

    /// What this client has sent so far.
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// The latest read-your-writes token seen, to hand to a client in a later request.
    pub fn sync_token(&self) -> Option<String> {
        self.sync_token.borrow().clone()
    }

    /// Sets the read-your-writes token to send (for example one kept from an earlier request, in a
    /// cookie or a Durable Object); replaced by each newer token the service sends back.
    pub fn set_sync_token(&self, token: Option<String>) {
        *self.sync_token.borrow_mut() = token.filter(|t| !t.is_empty());
    }

    /// Sends one command and converts its reply.
    ///
    /// Read-only commands are retried after a transport error or a 5xx status, inside the deadline.
    ///
    /// # Errors
    /// Any [`Error`]: transport, timeout, HTTP status, a Redis error reply, a malformed reply, or
    /// [`Error::Type`] when the reply does not convert to `R`.
    pub async fn query<R: FromReply>(&self, cmd: &Cmd) -> Result<R> {
        let body = protocol::encode_command(cmd)?;
        let response = self.round_trip("", body, 1, cmd.is_read_only()).await?;
        let reply = protocol::decode_response(response.status, &response.body, true)?;
        convert(cmd.name(), reply)
    }

    /// Sends one request to `path` (`""`, `/pipeline` or `/multi-exec`), retrying when allowed, within
    /// one deadline. Returns the HTTP response of the last attempt.
    pub(crate) async fn round_trip(
        &self,
        path: &str,
        body: Vec<u8>,
        commands: u64,
        read_only: bool,
    ) -> Result<HttpResponse> {
        let retryable = read_only || self.options.retry_writes;
        let timeout = self.options.timeout_ms;
        let deadline = self.transport.now_ms() + u64::from(timeout);
        let url = format!("{}{path}", self.url);
        let mut attempt: u8 = 0;
        let mut body = Some(body);
        loop {
            let remaining = deadline.saturating_sub(self.transport.now_ms());
            let may_retry = retryable && attempt < self.options.retries;
            let this_body = match (&body, may_retry) {
                (Some(b), true) => b.clone(),
                _ => body.take().unwrap_or_default(),
            };
            self.count(commands, attempt > 0);
            let result = self
                .transport
                .send(HttpRequest {
                    url: url.clone(),
                    headers: self.headers(),
                    body: this_body,
                    timeout_ms: u32::try_from(remaining).unwrap_or(timeout).max(1),
                })
                .await;
            let outcome = match result {
                Ok(response) => {
                    // Keep the latest token, from error responses too.
                    if let Some(token) = &response.sync_token {
                        *self.sync_token.borrow_mut() = Some(token.clone());
                    }
                    if !(500..600).contains(&response.status) || !may_retry {
                        return Ok(response);
                    }
                    Ok(response)
                }
                // The deadline covers the whole call: when an attempt times out, nothing is left.
                Err(Error::Timeout(_)) => return Err(Error::Timeout(timeout)),
                Err(e @ Error::Transport(_)) if may_retry => Err(e),
                Err(e) => return Err(e),
            };
            let pause = backoff_ms(attempt);
            let left = deadline.saturating_sub(self.transport.now_ms());
            if left < u64::from(pause) + MIN_ATTEMPT_MS {
                // No time for another attempt: report what the last one saw.
                return outcome;
            }
            self.transport.sleep(pause).await;
            attempt += 1;
        }
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            ("authorization".to_owned(), self.auth.clone()),
            ("content-type".to_owned(), "application/json".to_owned()),
            (protocol::ENCODING_HEADER.to_owned(), "base64".to_owned()),
        ];
        if let Some(token) = self.sync_token() {
            headers.push((protocol::SYNC_TOKEN_HEADER.to_owned(), token));
        }
        headers
    }

    fn count(&self, commands: u64, retry: bool) {
        let mut stats = self.stats.get();
        stats.round_trips += 1;
        stats.commands += commands;
        stats.retries += u64::from(retry);
        self.stats.set(stats);
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

/// The pause before retry number `attempt + 1`: 25, 50, 100, 100 ... ms.
fn backoff_ms(attempt: u8) -> u32 {
    BACKOFF_MS
        .saturating_mul(1 << attempt.min(8))
        .min(BACKOFF_CAP_MS)
}

/// Converts a reply, naming the command in a type error.
pub(crate) fn convert<R: FromReply>(command: &str, reply: Reply) -> Result<R> {
    R::from_reply(reply).map_err(|m| Error::Type {
        command: command.to_ascii_uppercase(),
        expected: m.expected,
        actual: m.actual,
    })
}

fn validate_url(url: &str) -> Result<String> {
    url::check_http_url(URL_VAR, url).map_err(Error::Config)
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

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn debug_never_shows_the_token() {
        let transport = FakeTransport::new(|_, _| transport::ok(Vec::new()));
        let client =
            Client::with_transport("https://eu1.example.io", "tok-SECRET-123", transport).unwrap();
        let shown = format!("{client:?}");
        assert!(shown.contains("eu1.example.io"), "{shown}");
        assert!(!shown.contains("tok-SECRET-123"), "{shown}");
    }

    #[test]
    fn tokens_are_validated() {
        assert_eq!(validate_token(" abc ").unwrap(), "abc");
        assert!(validate_token("").is_err());
        assert!(validate_token("a b").is_err());
        assert!(validate_token("tøken").is_err());
    }
}

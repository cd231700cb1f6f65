//! The crate's one error type.

/// Everything that can go wrong talking to the HTTP Redis service.
///
/// A rate-limit denial or a missing session is not an error: those are values. An `Error` means that the
/// operation could not be carried out, so the caller's failure policy decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is missing or invalid (URL, token, limits).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An argument cannot be sent (for example bytes that are not UTF-8 in a JSON request).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request never got an HTTP answer (DNS, refused connection, reset).
    #[error("could not reach the Redis HTTP service: {0}")]
    Transport(String),
    /// No answer arrived before the deadline; the request was aborted.
    #[error("the Redis HTTP service did not answer within {0} ms")]
    Timeout(u32),
    /// The service answered with an HTTP status that is not a Redis reply (401, 413, 5xx ...).
    #[error("the Redis HTTP service answered HTTP {status}: {message}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The service's `error` text, or a summary of the body.
        message: String,
    },
    /// Redis itself refused the command; the text is Redis's, verbatim (`ERR ...`, `NOSCRIPT ...`).
    #[error("Redis error: {0}")]
    Redis(String),
    /// The reply does not follow the protocol (not JSON, bad base64, missing `result`).
    #[error("malformed reply from the Redis HTTP service: {0}")]
    Protocol(String),
    /// A request would be over the service's size limit and cannot be split (a transaction, or one
    /// command that alone is too big); nothing was sent.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// A rate-limited request costs more than its policy ever allows at once (its burst): it could never
    /// pass, so it is refused before Redis is asked. Not a denial that waiting would lift.
    #[error(
        "a cost of {cost} is more than rate-limit policy {policy:?} allows at once ({capacity})"
    )]
    InsufficientCapacity {
        /// The policy.
        policy: String,
        /// The cost asked for.
        cost: u64,
        /// The most the policy allows at once.
        capacity: u64,
    },
    /// A compare-and-set lost to concurrent writers more times than its bound allows (a hot key being
    /// changed from many isolates at once); nothing was written. Trying again later may succeed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A batch handle was read before its batch was sent.
    #[error("the batch was not sent: call `send().await` before reading its handles")]
    NotSent,
    /// The reply is well formed but has a different shape than the caller asked for.
    #[error("{command}: expected {expected}, got {actual}")]
    Type {
        /// The command whose reply did not fit.
        command: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the reply was.
        actual: String,
    },
}

impl Error {
    /// The deadline passed before an answer arrived.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// The service could not be reached, answered with a server-side failure (5xx), or Redis refused
    /// the command because it cannot serve yet (see [`Error::is_redis_not_ready`]).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Transport(_) | Error::Timeout(_) => true,
            Error::Http { status, .. } => *status >= 500,
            _ => self.is_redis_not_ready(),
        }
    }

    /// Redis refused the command without running it because of its own state, which passes by itself:
    /// `LOADING` (restarted, still reading its data from disk), `BUSY` (a script is running too long),
    /// `MASTERDOWN` (a replica lost its primary), `TRYAGAIN` (a cluster slot is moving). An outage, not
    /// a mistake in the request.
    pub fn is_redis_not_ready(&self) -> bool {
        const CODES: [&str; 4] = ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"];
        match self {
            Error::Redis(message) => {
                let code = message.split(' ').next().unwrap_or_default();
                CODES.contains(&code)
            }
            _ => false,
        }
    }

    /// The request may succeed if sent again: the service was unreachable, answered 5xx, or Redis was
    /// not ready. (A timeout is not: the call's deadline is spent.) Whether it is *safe* to send again
    /// depends on the command; the client retries only read-only commands by itself.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Http { status, .. } => *status >= 500,
            _ => self.is_redis_not_ready(),
        }
    }

    /// A request would be over the service's size limit; nothing was sent.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Error::TooLarge(_))
    }

    /// The token was refused (HTTP 401).
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Http { status: 401, .. })
    }

    /// A rate-limited request costs more than its policy allows at once.
    pub fn is_insufficient_capacity(&self) -> bool {
        matches!(self, Error::InsufficientCapacity { .. })
    }

    /// A compare-and-set kept losing to concurrent writers.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }

    /// Redis answered with an error reply.
    pub fn is_redis(&self) -> bool {
        matches!(self, Error::Redis(_))
    }

    /// The HTTP status an application answers with when this error ends a request: 503 when Redis is
    /// unreachable, too slow or refuses the credentials (try again later; a session must not be taken
    /// for signed out), 502 for a reply that cannot be read or a Redis error, 500 for everything the
    /// application did wrong (configuration, arguments, a cost over a policy's capacity).
    pub fn status(&self) -> u16 {
        if self.is_unavailable() || self.is_auth() {
            503
        } else if matches!(
            self,
            Error::Protocol(_) | Error::Type { .. } | Error::Redis(_)
        ) {
            502
        } else {
            500
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// So that `?` works in a workers-rs handler. The message is the error's `Display`, which never carries a
/// token or a URL's credentials. Feature `worker`, wasm32 only.
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
impl From<Error> for worker::Error {
    fn from(error: Error) -> Self {
        worker::Error::RustError(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_classify() {
        let http = |status| Error::Http {
            status,
            message: String::new(),
        };
        assert!(Error::Transport("reset".into()).is_retryable());
        assert!(http(503).is_retryable() && http(503).is_unavailable());
        assert!(!http(400).is_retryable() && !http(429).is_unavailable());
        assert!(!Error::Timeout(5).is_retryable() && Error::Timeout(5).is_timeout());
        assert!(!Error::Redis("ERR".into()).is_retryable());
        let loading = Error::Redis("LOADING Redis is loading the dataset in memory".into());
        assert!(loading.is_unavailable() && loading.is_retryable() && loading.is_redis());
        assert!(Error::Redis("BUSY Redis is busy running a script".into()).is_unavailable());
        for other in [
            "ERR unknown command",
            "WRONGTYPE Operation",
            "LOADINGX",
            "NOSCRIPT No matching",
        ] {
            assert!(!Error::Redis(other.into()).is_unavailable(), "{other}");
        }
        assert!(Error::TooLarge("x".into()).is_too_large());
        assert!(http(401).is_auth());
        assert_eq!(Error::Timeout(5).status(), 503);
        assert_eq!(http(401).status(), 503);
        assert_eq!(Error::Protocol("x".into()).status(), 502);
        assert_eq!(Error::Redis("ERR".into()).status(), 502);
        assert_eq!(Error::Config("x".into()).status(), 500);
    }
}

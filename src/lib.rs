//! # redge
//!
//! Sessions, rate limiting and cached lookups for edge runtimes (Cloudflare Workers and any JavaScript
//! runtime with `fetch`), over an HTTP Redis service that speaks Upstash's REST protocol (Upstash
//! itself, or `redge-gateway` in front of your own Redis).
//!
//! The headline types are at the crate root:
//!
//! - [`Client`]: the HTTP Redis client (commands, typed replies, batches, transactions, scripts);
//! - [`RateLimiter`]: GCRA, sliding window, fixed window, token bucket and sliding log, several policies
//!   in one round trip, a local block cache, a failure policy ([`Decision`], and the standard headers in
//!   [`ratelimit::headers`]);
//! - [`SessionStore`]: cookie sessions (tokens, versioned records, idle and absolute expiry, rotation,
//!   per-user index, sign out everywhere), one round trip per operation, failing closed;
//! - [`Cache`]: cached lookups (`get_or_fetch` with stale-while-revalidate, single flight, tags, a
//!   breaker) that fail open to the origin;
//! - [`Plan`]: what one request needs from all of them, in one round trip, each part with its own wait;
//! - [`origin`]: web origins, parsed and compared one way (the session's Origin check, CORS).
//!
//! Dependencies point one way: the capabilities use the client, which uses a [`client::Transport`]
//! (`fetch` in a JavaScript runtime). Pure logic (the wire format, reply decoding, the algorithms) does
//! not need a runtime and is tested natively; time sits behind [`clock::Clock`].
//!
//! In a workers-rs Worker, turn on the `worker` feature for `Client::from_env(&env)` and `?` on
//! [`Error`] in handlers:
//!
//! ```no_run
//! # async fn handler(ip: &str, cookie: &str) -> redge::Result<()> {
//! use redge::ratelimit::{Algorithm, Policy, Quota};
//! use redge::session::SessionConfig;
//! use redge::{Client, Plan, RateLimiter, SessionStore};
//!
//! let client = Client::new("https://example.upstash.io", "token")?; // or Client::from_env(&env)
//! let limiter = RateLimiter::new(vec![Policy::new("api", Algorithm::Gcra, Quota::per_minute(60))])?;
//! let sessions = SessionStore::new(&client, SessionConfig::default());
//!
//! let plan = Plan::new(&client);
//! let check = plan.limit(&limiter, &[("api", ip)], 1)?;
//! let session = plan.load_session(&sessions, cookie);
//! plan.send().await; // one round trip
//! if !check.finish().allowed { /* 429 */ }
//! let signed_in = session.finish()?.is_some(); // Err: Redis unavailable, answer 503
//! # let _ = signed_in; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
pub mod client;
pub mod clock;
mod error;
pub mod origin;
pub mod plan;
pub mod ratelimit;
pub mod session;
pub mod slot;

pub use cache::Cache;
pub use client::Client;
pub use error::{Error, Result};
pub use plan::Plan;
pub use ratelimit::{Decision, RateLimiter};
pub use session::SessionStore;

//! # redge
//!
//! Sessions, rate limiting and cached lookups for edge runtimes (Cloudflare Workers and any JavaScript
//! runtime with `fetch`), over an HTTP Redis service that speaks Upstash's REST protocol.
//!
//! The crate is layered, and dependencies point one way (the demo Worker, crate `redge-demo`, sits on
//! top and wires the capabilities to HTTP routes):
//!
//! - [`client`]: the HTTP Redis client (commands, typed replies, the wire format, the transport);
//! - [`session`]: cookie sessions (tokens, versioned records, idle and absolute expiry, rotation,
//!   per-user index, sign out everywhere), one round trip per operation;
//! - [`cache`]: cached lookups (`get_or_fetch` with stale-while-revalidate, single flight, tags, breaker);
//! - [`ratelimit`]: rate limiting (GCRA, sliding window, fixed window, token bucket), several policies in
//!   one round trip, a local block cache, a failure policy, and the standard headers;
//! - [`origin`]: web origins, parsed and compared one way for the session's Origin check and for CORS;
//!
//! Pure logic (the wire format, reply decoding) compiles and is tested natively; whatever touches `fetch`
//! or the JavaScript clock sits behind [`client::Transport`] and [`clock::Clock`].
//!
//! ```ignore
//! // Inside a Worker, or any JavaScript runtime with `fetch`:
//! use redge::client::{cmd, Client};
//!
//! let client = Client::new("https://example.upstash.io", "token")?;
//! let pong: String = client.query(&cmd("PING")).await?;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
pub mod client;
pub mod clock;
mod error;
pub mod origin;
pub mod ratelimit;
pub mod session;

pub use error::{Error, Result};

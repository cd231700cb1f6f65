//! # redge for JavaScript
//!
//! redge's rate limiter, session store, cache and HTTP Redis client, compiled to WebAssembly and exported
//! with wasm-bindgen for any JavaScript runtime with `fetch` (Cloudflare Workers, Node, Deno, browsers).
//! The npm package (`npm/` for its hand-written entry points, `scripts/build-js.mjs` to build it) wraps
//! these exports.
//!
//! The surface is JavaScript's, not Rust's: classes with camelCase methods, options objects in (read
//! with serde-wasm-bindgen, unknown fields refused), plain objects out (numbers, never `BigInt` where a
//! number holds the value), every async method a `Promise`, and every failure a JavaScript `Error`
//! subclass with a stable `code` ([`error`]). Bad arguments are errors, never a trap: nothing here
//! panics on input (a panic would reset the wasm instance and everything in it).
//!
//! - [`options`]: the options objects and their validation (pure, tested natively); [`fields`]: the
//!   field names each accepts, to refuse unknown ones;
//! - [`shapes`]: the result objects (pure, tested natively);
//! - [`error`]: which JavaScript class and code each error gets;
//! - `client`, `ratelimit`, `session`, `cache` and `entries` (wasm only): the exported classes;
//!   `batch`: one request's reads of all three in one round trip;
//! - `convert` (wasm only): argument checks and value conversion.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod fields;
pub mod options;
pub mod shapes;

#[cfg(target_arch = "wasm32")]
mod batch;
#[cfg(target_arch = "wasm32")]
mod cache;
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod convert;
#[cfg(target_arch = "wasm32")]
mod entries;
#[cfg(target_arch = "wasm32")]
mod ratelimit;
#[cfg(target_arch = "wasm32")]
mod session;
#[cfg(target_arch = "wasm32")]
mod types;

#[cfg(target_arch = "wasm32")]
pub use batch::Batch;
#[cfg(target_arch = "wasm32")]
pub use cache::Cache;
#[cfg(target_arch = "wasm32")]
pub use client::Client;
#[cfg(target_arch = "wasm32")]
pub use ratelimit::RateLimiter;
#[cfg(target_arch = "wasm32")]
pub use session::SessionStore;

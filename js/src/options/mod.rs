//! The options objects JavaScript passes in, and their validation into redge's own types. Pure: the same
//! structs are read with serde-wasm-bindgen in JavaScript and with serde_json in the native tests.
//!
//! Every struct refuses unknown fields, so a typo (`timeout` for `timeoutMs`) is an error that names the
//! field instead of a silent default (with serde-wasm-bindgen, through [`crate::fields`]).

mod cache;
mod client;
mod ratelimit;
mod session;

pub use cache::{CacheOptions, PolicyInput, TaggedKey};
pub use client::{ClientOptions, ClientTuning};
pub use ratelimit::{LimitOptions, LimiterConfig, LimiterOptions, PolicySelection};
pub use session::{SessionOptions, SignInOptions, UpdateOptions};

/// The longest deadline a client accepts, in ms: longer than any edge request should wait for Redis.
pub const MAX_TIMEOUT_MS: u32 = 60_000;

//! Route handlers: a few lines each, calling the library. See [`super::context`] for how a handler
//! takes part in the request's one round trip.

pub mod cache;
pub mod dashboard;
pub mod health;
pub mod index;
pub mod metrics;
pub mod ratelimit;
pub mod session;

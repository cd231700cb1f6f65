//! Route handlers, one file per capability.

pub mod cache;

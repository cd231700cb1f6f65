//! Shared state: the Redis connection, the tokens, the limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Config;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared part of [`AppState`].
pub struct Inner {
    pub redis: ConnectionManager,
    pub tokens: Vec<Vec<u8>>,
    pub max_body_bytes: usize,
    pub deadline: Duration,
    pub refused: Vec<String>,
    sync_prefix: u64,
    sync_counter: AtomicU64,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state; the Redis connection is opened on first use and reopened after it drops, so the
    /// gateway starts (and keeps running) while Redis is down.
    ///
    /// # Errors
    /// A message naming the invalid setting.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let tokens: Vec<Vec<u8>> = config
            .tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| t.as_bytes().to_vec())
            .collect();
        if tokens.is_empty() {
            return Err("at least one non-empty --token (REDGE_GATEWAY_TOKENS) is required".into());
        }
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|e| format!("invalid --redis-url (REDGE_REDIS_URL): {e}"))?;
        // A refused connection fails at once; a silent one after a second. One retry only: a request
        // waits at most for the deadline, and the next request tries to reconnect again.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(config.deadline()))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let redis = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        Ok(AppState(Arc::new(Inner {
            redis,
            tokens,
            max_body_bytes: config.max_body_bytes,
            deadline: config.deadline(),
            refused: crate::request::DEFAULT_REFUSED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            sync_prefix: rand::random(),
            sync_counter: AtomicU64::new(0),
        })))
    }

    /// A fresh, never repeated `upstash-sync-token` value.
    fn next_sync_token(&self) -> String {
        let n = self.sync_counter.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", self.sync_prefix)
    }
}

/// Adds a fresh `upstash-sync-token` to every response.
pub async fn add_sync_token(State(state): State<AppState>, mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&state.next_sync_token()) {
        response
            .headers_mut()
            .insert(redge::client::protocol::SYNC_TOKEN_HEADER, value);
    }
    response
}

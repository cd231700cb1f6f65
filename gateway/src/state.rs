//! Shared state: the Redis connections, the tokens, the policy, the limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::Response;
use redis::IntoConnectionInfo;
use tokio::sync::{Semaphore, watch};

use crate::backend::{Backend, Node};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::GatewayError;
use crate::metrics::{Gauges, Metrics, Refusal};
use crate::policy::{Access, Policy};
use crate::scripts::Scripts;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared part of [`AppState`].
pub struct Inner {
    pub(crate) backend: Backend,
    pub(crate) tokens: Vec<Vec<u8>>,
    pub(crate) read_only_tokens: Vec<Vec<u8>>,
    pub(crate) policy: Policy,
    pub(crate) scripts: Arc<Scripts>,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) stream_buffer_bytes: usize,
    /// Bytes of events queued for SSE clients, over every stream.
    pub(crate) stream_bytes: Arc<AtomicUsize>,
    pub(crate) timeouts: crate::connection::Timeouts,
    pub(crate) max_connections: usize,
    pub(crate) metrics: Arc<Metrics>,
    /// A bearer token `/metrics` asks for (`--metrics-token`); open when `None`.
    pub(crate) metrics_token: Option<Vec<u8>>,
    max_concurrency: usize,
    max_streams: usize,
    /// One permit per request being handled.
    pub(crate) requests: Arc<Semaphore>,
    /// One permit per open SSE stream.
    pub(crate) streams: Arc<Semaphore>,
    /// Flips to `true` when shutdown begins, so SSE streams end and let the server drain.
    pub(crate) shutdown: watch::Sender<bool>,
    /// This process's random part of every sync token, with the separator: `<16 hex digits>-`.
    sync_prefix: String,
    sync_counter: AtomicU64,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The most shared Redis connections `--pool-size` accepts: multiplexed connections each carry many
/// requests at once, so more than this only costs Redis file descriptors and memory.
pub const MAX_POOL_SIZE: usize = 256;

/// The most server threads `--threads` accepts.
pub const MAX_THREADS: usize = 256;

fn token_list(tokens: &[String]) -> Vec<Vec<u8>> {
    tokens
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| t.as_bytes().to_vec())
        .collect()
}

/// A Redis URL with `password` (when given) in place of the URL's own.
fn connection_info(url: &str, password: Option<&str>) -> redis::RedisResult<redis::ConnectionInfo> {
    let mut info = url.into_connection_info()?;
    if let Some(password) = password {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    Ok(info)
}

impl AppState {
    /// Builds the state; the Redis connection is opened on first use and reopened after it drops, so the
    /// gateway starts (and keeps running) while Redis is down.
    ///
    /// # Errors
    /// A message naming the invalid setting (never its value: it may be a secret).
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let tokens = token_list(&config.tokens);
        if tokens.is_empty() {
            return Err(
                "at least one non-empty --token (REDGE_GATEWAY_TOKENS or SRH_TOKEN) is required"
                    .into(),
            );
        }
        if config.max_concurrency == 0 || config.max_streams == 0 || config.max_connections == 0 {
            return Err(
                "--max-concurrency, --max-streams and --max-connections must be at least 1".into(),
            );
        }
        if !(1..=MAX_POOL_SIZE).contains(&config.pool_size) {
            return Err(format!(
                "--pool-size (REDGE_GATEWAY_POOL_SIZE) must be between 1 and {MAX_POOL_SIZE}"
            ));
        }
        if !(1..=MAX_THREADS).contains(&config.threads) {
            return Err(format!(
                "--threads (REDGE_GATEWAY_THREADS) must be between 1 and {MAX_THREADS}"
            ));
        }
        // rediss:// needs a process-wide rustls crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = Arc::new(Metrics::new(config.threads));
        let password = config.redis_password.as_deref().filter(|p| !p.is_empty());
        let seeds: Vec<&str> = config
            .redis_cluster_nodes
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect();
        let (backend, scripts) = if seeds.is_empty() {
            let info = connection_info(&config.redis_url, password)
                .map_err(|_| "invalid --redis-url (REDGE_REDIS_URL)".to_owned())?;
            let client = redis::Client::open(info)
                .map_err(|e| format!("invalid Redis settings: {}", e.category()))?;
            let node = Node::new(
                client,
                Arc::clone(&metrics),
                config.deadline(),
                config.pool_size,
                config.threads,
                config.transaction_pool,
            )
            .map_err(|e| format!("cannot set up the Redis connection: {}", e.category()))?;
            (Backend::Node(node), Arc::new(Scripts::default()))
        } else {
            let infos = seeds
                .iter()
                .enumerate()
                .map(|(i, seed)| {
                    connection_info(seed, password).map_err(|_| {
                        format!(
                            "entry {} of --redis-cluster-nodes (REDGE_REDIS_CLUSTER_NODES) is not \
                             a valid redis:// or rediss:// URL",
                            i + 1
                        )
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let scripts = Arc::new(Scripts::remembering_sources());
            let cluster = Cluster::new(
                infos,
                Arc::clone(&scripts),
                Arc::clone(&metrics),
                config.deadline(),
                config.threads,
                config.transaction_pool,
            )
            .map_err(|e| {
                format!(
                    "invalid --redis-cluster-nodes (REDGE_REDIS_CLUSTER_NODES): {} (every seed \
                     node needs the same user, password and TLS mode, and a host and port)",
                    e.category()
                )
            })?;
            (Backend::Cluster(cluster), scripts)
        };
        Ok(AppState(Arc::new(Inner {
            backend,
            tokens,
            read_only_tokens: token_list(&config.read_only_tokens),
            policy: Policy::new(&config.refuse, &config.allow),
            scripts,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.body_timeout(),
            heartbeat: config.heartbeat(),
            stream_buffer_bytes: config.stream_buffer_bytes.max(1),
            stream_bytes: Arc::new(AtomicUsize::new(0)),
            timeouts: config.connection_timeouts(),
            max_connections: config.max_connections,
            metrics,
            metrics_token: config
                .metrics_token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.as_bytes().to_vec()),
            max_concurrency: config.max_concurrency,
            max_streams: config.max_streams,
            requests: Arc::new(Semaphore::new(config.max_concurrency)),
            streams: Arc::new(Semaphore::new(config.max_streams)),
            shutdown: watch::Sender::new(false),
            sync_prefix: format!("{:016x}-", rand::random::<u64>()),
            sync_counter: AtomicU64::new(0),
        })))
    }

    /// Bytes of SSE events waiting for their clients to read them, over every open stream (each stream
    /// holds at most `--stream-buffer-bytes`, or one event when a single event is larger).
    pub fn buffered_stream_bytes(&self) -> usize {
        self.stream_bytes.load(Ordering::Relaxed)
    }

    /// Checks a command against the policy ([`Policy::check`]) and counts a refusal.
    pub(crate) fn check(
        &self,
        name: &str,
        args: &[Vec<u8>],
        access: Access,
    ) -> Result<(), GatewayError> {
        let checked = self.policy.check(name, args, access);
        match &checked {
            Err(GatewayError::NoPerm(_)) => self.metrics.refused(name, Refusal::ReadOnly),
            Err(_) => self.metrics.refused(name, Refusal::NotSupported),
            Ok(()) => {}
        }
        checked
    }

    /// The exposition text of `/metrics`.
    pub(crate) fn render_metrics(&self) -> String {
        let pool = self.backend.pool_stats();
        self.metrics.render(&Gauges {
            requests_in_flight: self
                .max_concurrency
                .saturating_sub(self.requests.available_permits()),
            streams: self
                .max_streams
                .saturating_sub(self.streams.available_permits()),
            shared_connections: pool.shared_connections,
            shared_in_flight: pool.shared_in_flight,
            idle_exclusive: pool.idle_exclusive,
        })
    }

    /// Whether shutdown has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Tells long-lived streams to end.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Adds a fresh, never repeated `upstash-sync-token` to a response.
    pub(crate) fn add_sync_token(&self, response: &mut Response) {
        use std::fmt::Write as _;
        let n = self.sync_counter.fetch_add(1, Ordering::Relaxed);
        let mut text = String::with_capacity(self.sync_prefix.len() + 20);
        text.push_str(&self.sync_prefix);
        let _ = write!(text, "{n}");
        // From `Bytes`, the header value keeps the buffer instead of copying it.
        if let Ok(value) = HeaderValue::from_maybe_shared(axum::body::Bytes::from(text)) {
            response
                .headers_mut()
                .insert(crate::format::SYNC_TOKEN, value);
        }
    }
}

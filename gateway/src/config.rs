//! Configuration by flags and environment variables.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// An HTTP server that speaks the Upstash REST protocol in front of a real redis-server.
///
/// Every option can also be set by the environment variable named beside it. Prefer the environment for
/// tokens: command-line arguments are visible to other users of the machine.
#[derive(Debug, Clone, Parser)]
#[command(name = "redge-gateway", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "REDGE_GATEWAY_LISTEN", default_value = "127.0.0.1:8079")]
    pub listen: String,

    /// Redis URL: redis://[user:password@]host:port[/db], or rediss:// for TLS.
    #[arg(
        long,
        env = "REDGE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// Bearer token(s) that clients must send; repeat the flag or separate with commas.
    #[arg(
        long = "token",
        env = "REDGE_GATEWAY_TOKENS",
        value_delimiter = ',',
        required = true,
        hide_env_values = true
    )]
    pub tokens: Vec<String>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "REDGE_GATEWAY_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deadline of one Redis command in milliseconds; past it the request gets 503.
    #[arg(long, env = "REDGE_GATEWAY_DEADLINE_MS", default_value_t = 5_000)]
    pub deadline_ms: u64,

    /// Log format.
    #[arg(long, env = "REDGE_GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// A configuration for tests and embedding: one token, defaults elsewhere.
    pub fn new(redis_url: &str, token: &str) -> Self {
        Config {
            listen: "127.0.0.1:0".into(),
            redis_url: redis_url.into(),
            tokens: vec![token.into()],
            max_body_bytes: 10 * 1024 * 1024,
            deadline_ms: 5_000,
            log_format: LogFormat::Text,
        }
    }

    /// The per-command deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms.max(1))
    }

    /// Installs the global log subscriber (level from `RUST_LOG`, default `info`).
    pub fn init_tracing(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().init(),
        }
    }
}

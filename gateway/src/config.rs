//! Configuration by flags and environment variables.
//!
//! Each setting has a flag and a `REDGE_*` environment variable (clap's `env`). A few settings also
//! answer to the names that Upstash's self-hosted proxy (serverless-redis-http, "SRH") reads, so that a
//! deployment written for it runs unchanged: [`ALIASES`]. clap takes one variable per setting, so
//! [`Config::from_env`] parses first and then fills a setting from its alias when neither its flag nor
//! its `REDGE_*` variable gave it a value ([`Config::apply_aliases`], pure and unit-tested).
//!
//! `UPSTASH_REDIS_REST_TOKEN` is deliberately not an alias: it is the *client's* variable (what an
//! application sends to Upstash), and a shell or an env file that has it for reaching Upstash would
//! otherwise make the gateway accept that token without anyone having configured the gateway.

use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, ValueEnum};

/// Environment variables of serverless-redis-http accepted as aliases: (alias, the setting's `REDGE_*`
/// variable, the setting's argument id). The `REDGE_*` variable or the flag wins when set.
pub const ALIASES: &[(&str, &str, &str)] = &[
    ("SRH_TOKEN", "REDGE_GATEWAY_TOKENS", "tokens"),
    ("SRH_CONNECTION_STRING", "REDGE_REDIS_URL", "redis_url"),
];

/// serverless-redis-http's mode variable: `env` (one token, one Redis, from the variables above) is
/// what this gateway does; `file` (a JSON file of tokens per Redis) it does not do.
pub const SRH_MODE: &str = "SRH_MODE";

/// An HTTP server that speaks the Upstash REST protocol in front of a real redis-server.
///
/// Every option can also be set by the environment variable named beside it. Prefer the environment for
/// tokens and passwords: command-line arguments are visible to other users of the machine.
#[derive(Debug, Clone, Parser)]
#[command(name = "redge-gateway", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "REDGE_GATEWAY_LISTEN", default_value = "127.0.0.1:8079")]
    pub listen: String,

    /// Redis URL: redis://[user:password@]host:port[/db], or rediss:// for TLS (rustls, system roots).
    /// Also read from SRH_CONNECTION_STRING when neither the flag nor REDGE_REDIS_URL is set.
    #[arg(
        long,
        env = "REDGE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// Redis Cluster mode: the seed nodes, comma separated (redis://[user:password@]host:port, or
    /// rediss://). The gateway learns every other node from them and routes by hash slot; --redis-url is
    /// then not used. See the README's "Redis Cluster" section for what each command means there.
    #[arg(
        long,
        env = "REDGE_REDIS_CLUSTER_NODES",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub redis_cluster_nodes: Vec<String>,

    /// Redis password; overrides a password in the URL (in cluster mode, in every seed node's URL).
    #[arg(long, env = "REDGE_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Bearer token(s) with full access (required); repeat the flag or separate with commas. Also read
    /// from SRH_TOKEN when neither the flag nor REDGE_GATEWAY_TOKENS is set.
    #[arg(
        long = "token",
        env = "REDGE_GATEWAY_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,

    /// Read-only token(s): only commands that never write (see README); others get a NOPERM error.
    #[arg(
        long = "read-only-token",
        env = "REDGE_GATEWAY_READ_ONLY_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub read_only_tokens: Vec<String>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "REDGE_GATEWAY_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deadline of one Redis call (a command, a pipeline, a transaction) in milliseconds; past it the
    /// request gets 503, and a script still running is stopped with SCRIPT KILL or FUNCTION KILL.
    #[arg(long, env = "REDGE_GATEWAY_DEADLINE_MS", default_value_t = 5_000)]
    pub deadline_ms: u64,

    /// Time a client has to send a whole request body, in milliseconds; past it the request gets 408
    /// and frees its slot (see --max-concurrency), so stalled or vanished clients cannot hold slots.
    #[arg(long, env = "REDGE_GATEWAY_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,

    /// Time a client has to send a request's head (request line and headers), in milliseconds: from
    /// the moment its connection is accepted, or from the first byte of a later request on it. Past
    /// it the connection is closed, so silent or dribbling connections cannot pile up.
    #[arg(
        long,
        env = "REDGE_GATEWAY_HEADER_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_timeout_ms: u64,

    /// Time a keep-alive connection may wait between requests (for the first byte of the next one, or
    /// for the client to read the last response), in milliseconds; past it the connection is closed.
    #[arg(long, env = "REDGE_GATEWAY_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,

    /// Client connections open at once (default: half the process's limit on open files, 512 when
    /// unknown). Past it a new connection is closed at once, unread, instead of waiting: a flood of
    /// connections cannot use up the file descriptors that Redis connections and other clients need.
    #[arg(long, env = "REDGE_GATEWAY_MAX_CONNECTIONS", default_value_t = default_max_connections())]
    pub max_connections: usize,

    /// Requests handled at once; past it a request gets 503 at once instead of queueing.
    #[arg(long, env = "REDGE_GATEWAY_MAX_CONCURRENCY", default_value_t = 1024)]
    pub max_concurrency: usize,

    /// SSE streams open at once (each holds its own Redis connection); past it 503.
    #[arg(long, env = "REDGE_GATEWAY_MAX_STREAMS", default_value_t = 256)]
    pub max_streams: usize,

    /// Shared Redis connections for commands and pipelines (1 to 256; default: the number of CPUs, at
    /// most 8), split evenly over the --threads (at least one each). Each carries many requests at
    /// once; a request takes the one of its thread with the fewest in flight. Transactions and SSE
    /// streams have connections of their own besides these. Not used in cluster mode (each thread has
    /// one cluster connection, one socket per node).
    #[arg(long, env = "REDGE_GATEWAY_POOL_SIZE", default_value_t = default_pool_size())]
    pub pool_size: usize,

    /// Server threads (1 to 256; default: the number of CPUs). Each runs its own event loop with its own
    /// share of --pool-size; one acceptor hands each new connection to the thread that holds the
    /// fewest, and a request and its Redis reply are handled on that thread.
    #[arg(long, env = "REDGE_GATEWAY_THREADS", default_value_t = default_threads())]
    pub threads: usize,

    /// Idle connections kept for requests that use one exclusively: /multi-exec transactions and
    /// scripts (EVAL, EVALSHA, FCALL and their _RO variants).
    #[arg(long, env = "REDGE_GATEWAY_TRANSACTION_POOL", default_value_t = 16)]
    pub transaction_pool: usize,

    /// Extra commands to refuse with 400, besides the built-in list; comma separated. An entry is a
    /// command name or a command and subcommand ("CONFIG GET").
    #[arg(long = "refuse", env = "REDGE_GATEWAY_REFUSE", value_delimiter = ',')]
    pub refuse: Vec<String>,

    /// Commands to remove from the built-in refused list (for example DEBUG); comma separated. A
    /// command name also allows its refused subcommands (FUNCTION allows FUNCTION LOAD ...); "FUNCTION
    /// LOAD" allows that subcommand only.
    #[arg(long = "allow", env = "REDGE_GATEWAY_ALLOW", value_delimiter = ',')]
    pub allow: Vec<String>,

    /// Bytes of events one SSE stream may hold for a client that does not read them fast enough; past
    /// it the stream and its connection are closed, and the memory is returned.
    #[arg(long, env = "REDGE_GATEWAY_STREAM_BUFFER_BYTES", default_value_t = 1024 * 1024)]
    pub stream_buffer_bytes: usize,

    /// Interval of the `: keepalive` comment on SSE streams, in milliseconds.
    #[arg(long, env = "REDGE_GATEWAY_HEARTBEAT_MS", default_value_t = 15_000)]
    pub heartbeat_ms: u64,

    /// Bearer token that GET /metrics asks for; without it /metrics is open to anyone who can reach the
    /// listen address (it holds counts and command names, never keys, values or tokens).
    #[arg(long, env = "REDGE_GATEWAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Log format (level from RUST_LOG, default info). Logs never contain tokens, keys or values.
    #[arg(long, env = "REDGE_GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The default of `--pool-size`: one connection per CPU, at most 8. Each connection has its own task
/// writing and parsing, so more connections than CPUs only split the batches that make a multiplexed
/// connection cheap per request (measured: on 2 CPUs a pool of 4 spent more CPU per request than 1 or
/// 2).
pub fn default_pool_size() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// The default of `--max-connections`: half the soft limit on open files, leaving the other half for
/// Redis connections (two per SSE stream counting its client, one per script or transaction in
/// flight) and the process's own files; 512 when the limit is unknown (half the usual 1024).
pub fn default_max_connections() -> usize {
    crate::connection::open_file_limit().map_or(512, |n| (n / 2).max(1))
}

/// The default of `--threads`: one per CPU.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(256))
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
    /// A configuration for tests and embedding: one token, one thread (the caller's runtime runs
    /// [`crate::serve`]), defaults elsewhere.
    pub fn new(redis_url: &str, token: &str) -> Self {
        Config {
            listen: "127.0.0.1:0".into(),
            redis_url: redis_url.into(),
            redis_cluster_nodes: Vec::new(),
            redis_password: None,
            tokens: vec![token.into()],
            read_only_tokens: Vec::new(),
            max_body_bytes: 10 * 1024 * 1024,
            deadline_ms: 5_000,
            body_timeout_ms: 30_000,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: default_max_connections(),
            max_concurrency: 1024,
            max_streams: 256,
            pool_size: default_pool_size(),
            threads: 1,
            transaction_pool: 16,
            refuse: Vec::new(),
            allow: Vec::new(),
            stream_buffer_bytes: 1024 * 1024,
            heartbeat_ms: 15_000,
            metrics_token: None,
            log_format: LogFormat::Text,
        }
    }

    /// [`Config::new`] for a Redis Cluster reached through `seeds`.
    pub fn cluster(seeds: &[String], token: &str) -> Self {
        Config {
            redis_cluster_nodes: seeds.to_vec(),
            ..Config::new("redis://127.0.0.1:6379", token)
        }
    }

    /// Parses the command line and the environment, aliases included; on an error (or `--help`),
    /// prints it and exits as clap does.
    pub fn from_env() -> Self {
        let matches = Config::command().get_matches();
        let parsed = Config::from_arg_matches(&matches).and_then(|mut config| {
            config
                .apply_aliases(
                    |id| matches.value_source(id),
                    |name| std::env::var(name).ok(),
                )
                .map_err(|message| {
                    Config::command().error(clap::error::ErrorKind::ValueValidation, message)
                })?;
            Ok(config)
        });
        parsed.unwrap_or_else(|e| e.exit())
    }

    /// Fills each setting of [`ALIASES`] that neither its flag nor its `REDGE_*` variable set
    /// (`source` of its argument id is absent or the default) from its alias in `env`, and refuses
    /// `SRH_MODE` other than `env`.
    ///
    /// # Errors
    /// A message naming `SRH_MODE` when it asks for a mode this gateway does not have.
    pub fn apply_aliases(
        &mut self,
        source: impl Fn(&str) -> Option<ValueSource>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        if let Some(mode) = env(SRH_MODE).filter(|m| !m.trim().eq_ignore_ascii_case("env")) {
            return Err(format!(
                "{SRH_MODE}={mode} is not supported: the gateway serves one Redis \
                 (SRH_MODE=env with SRH_TOKEN and SRH_CONNECTION_STRING, or the REDGE_* variables)"
            ));
        }
        for (alias, _, id) in ALIASES {
            let given = matches!(
                source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            let Some(value) = env(alias).filter(|v| !given && !v.is_empty()) else {
                continue;
            };
            match *id {
                "tokens" => self.tokens = value.split(',').map(str::to_owned).collect(),
                "redis_url" => self.redis_url = value,
                other => unreachable!("no alias is declared for {other}"),
            }
        }
        Ok(())
    }

    /// The per-call deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms.max(1))
    }

    /// The time allowed for reading a request body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms.max(1))
    }

    /// The timeouts of client connections.
    pub fn connection_timeouts(&self) -> crate::connection::Timeouts {
        crate::connection::Timeouts {
            header: Duration::from_millis(self.header_timeout_ms.max(1)),
            idle: Duration::from_millis(self.idle_timeout_ms.max(1)),
        }
    }

    /// The SSE heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    /// A configuration parsed from `args` alone, its sources as clap reports them.
    fn parsed(args: &[&str]) -> (Config, clap::ArgMatches) {
        let matches = Config::command()
            .try_get_matches_from(std::iter::once("redge-gateway").chain(args.iter().copied()))
            .unwrap();
        (Config::from_arg_matches(&matches).unwrap(), matches)
    }

    #[test]
    fn srh_variables_fill_settings_nothing_else_set() {
        let (mut config, matches) = parsed(&[]);
        let vars = [
            ("SRH_MODE", "env"),
            ("SRH_TOKEN", "srh-token"),
            ("SRH_CONNECTION_STRING", "redis://redis:6379"),
        ];
        config
            .apply_aliases(|id| matches.value_source(id), env(&vars))
            .unwrap();
        assert_eq!(config.tokens, ["srh-token"]);
        assert_eq!(config.redis_url, "redis://redis:6379");
    }

    #[test]
    fn flags_and_redge_variables_win_over_the_aliases() {
        let (mut config, matches) =
            parsed(&["--token", "flag-token", "--redis-url", "redis://a:1"]);
        let vars = [
            ("SRH_TOKEN", "srh-token"),
            ("SRH_CONNECTION_STRING", "redis://b:2"),
        ];
        config
            .apply_aliases(|id| matches.value_source(id), env(&vars))
            .unwrap();
        assert_eq!(config.tokens, ["flag-token"]);
        assert_eq!(config.redis_url, "redis://a:1");

        // A REDGE_* variable is reported by clap as the value's source: simulated here, since the
        // process environment is shared by every test (the binary's test sets the real variables).
        let (mut config, _) = parsed(&[]);
        config
            .apply_aliases(|_| Some(ValueSource::EnvVariable), env(&vars))
            .unwrap();
        assert!(config.tokens.is_empty());
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379");
    }

    #[test]
    fn an_empty_alias_is_ignored_and_commas_separate_tokens() {
        let (mut config, matches) = parsed(&[]);
        let vars = [("SRH_TOKEN", "a,b"), ("SRH_CONNECTION_STRING", "")];
        config
            .apply_aliases(|id| matches.value_source(id), env(&vars))
            .unwrap();
        assert_eq!(config.tokens, ["a", "b"]);
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379");
    }

    #[test]
    fn srh_file_mode_is_refused_by_name() {
        let (mut config, matches) = parsed(&[]);
        let error = config
            .apply_aliases(
                |id| matches.value_source(id),
                env(&[("SRH_MODE", "file"), ("SRH_TOKEN", "t")]),
            )
            .unwrap_err();
        assert!(error.contains("SRH_MODE=file"), "{error}");
        let (mut config, matches) = parsed(&[]);
        assert!(
            config
                .apply_aliases(|id| matches.value_source(id), env(&[("SRH_MODE", "ENV")]))
                .is_ok()
        );
    }

    #[test]
    fn every_alias_names_an_argument_of_the_command() {
        let command = Config::command();
        for (_, variable, id) in ALIASES {
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == *id)
                .unwrap_or_else(|| panic!("no argument {id}"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(*variable),
                "{id}"
            );
        }
    }
}

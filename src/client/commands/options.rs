//! The option structs of the helpers: one struct per command whose flags would otherwise be a row of
//! positional parameters.

use crate::client::cmd::Cmd;

/// When a key set by [`set_with`](super::set_with) expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `EX seconds`.
    Seconds(u64),
    /// `PX milliseconds`.
    Millis(u64),
    /// `EXAT unix-seconds`.
    AtSeconds(u64),
    /// `PXAT unix-milliseconds`.
    AtMillis(u64),
    /// `KEEPTTL`: keep the key's current time to live.
    KeepTtl,
}

/// The options of `SET`: expiry, condition, and whether to return the old value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// When the key expires; `None` removes any time to live.
    pub expiry: Option<Expiry>,
    /// `Some(true)`: `NX` (only if absent); `Some(false)`: `XX` (only if present).
    pub only_if_absent: Option<bool>,
    /// `GET`: the reply is the old value (or nil) instead of `OK`.
    pub get: bool,
}

impl SetOptions {
    /// Expire after `seconds`.
    pub fn ex(mut self, seconds: u64) -> Self {
        self.expiry = Some(Expiry::Seconds(seconds));
        self
    }
    /// Expire after `millis`.
    pub fn px(mut self, millis: u64) -> Self {
        self.expiry = Some(Expiry::Millis(millis));
        self
    }
    /// Keep the current time to live.
    pub fn keep_ttl(mut self) -> Self {
        self.expiry = Some(Expiry::KeepTtl);
        self
    }
    /// Only set a key that does not exist (reply nil when it does).
    pub fn nx(mut self) -> Self {
        self.only_if_absent = Some(true);
        self
    }
    /// Only set a key that exists (reply nil when it does not).
    pub fn xx(mut self) -> Self {
        self.only_if_absent = Some(false);
        self
    }
    /// Reply with the old value.
    pub fn get(mut self) -> Self {
        self.get = true;
        self
    }
}

/// The expiry change made by [`getex`](super::getex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetExpiry {
    /// `EX seconds`.
    Seconds(u64),
    /// `PX milliseconds`.
    Millis(u64),
    /// `EXAT unix-seconds`.
    AtSeconds(u64),
    /// `PXAT unix-milliseconds`.
    AtMillis(u64),
    /// `PERSIST`: remove the time to live.
    Persist,
}

/// The `SCAN` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// `MATCH pattern` (glob-style).
    pub pattern: Option<String>,
    /// `COUNT hint`: roughly how many keys to look at per call.
    pub count: Option<u32>,
    /// `TYPE type`: only keys of this type (`string`, `hash` ...).
    pub key_type: Option<String>,
}

/// How [`zrange_with`](super::zrange_with) reads `min` and `max`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ZRangeBy {
    /// Ranks (indexes), the default.
    #[default]
    Rank,
    /// `BYSCORE`: scores, `-inf`, `+inf`, `(5` for exclusive.
    Score,
    /// `BYLEX`: members, `[a`, `(a`, `-`, `+`.
    Lex,
}

/// The options of `ZRANGE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZRangeOptions {
    /// What `min` and `max` mean.
    pub by: ZRangeBy,
    /// `REV`: highest first (then `min` and `max` are given in reverse).
    pub rev: bool,
    /// `LIMIT offset count` (only with `BYSCORE` or `BYLEX`).
    pub limit: Option<(i64, i64)>,
    /// `WITHSCORES`: a flat array `[member, score, ...]`; read it as `Pairs<String, f64>`.
    pub with_scores: bool,
}

/// How [`xadd_with`](super::xadd_with) and [`xtrim`](super::xtrim) trim a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trim {
    /// `MAXLEN [~] n`: keep about (with `approx`) or exactly the newest `n` entries.
    MaxLen {
        /// `~`: trim whole nodes only, much cheaper.
        approx: bool,
        /// The length to keep.
        len: u64,
    },
    /// `MINID [~] id`: drop entries with an id lower than `id`.
    MinId {
        /// `~`: trim whole nodes only, much cheaper.
        approx: bool,
        /// The lowest id to keep, such as `1700000000000-0`.
        id: String,
    },
}

impl Trim {
    pub(super) fn write(&self, c: Cmd) -> Cmd {
        let (kind, approx) = match self {
            Trim::MaxLen { approx, .. } => ("MAXLEN", *approx),
            Trim::MinId { approx, .. } => ("MINID", *approx),
        };
        let c = c.arg(kind).arg(if approx { "~" } else { "=" });
        match self {
            Trim::MaxLen { len, .. } => c.arg(*len),
            Trim::MinId { id, .. } => c.arg(id),
        }
    }
}

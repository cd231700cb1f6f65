//! Typed helpers: one short function per command, each building a [`Cmd`] to send with
//! [`Client::query`](super::Client::query) or to add to a [`Batch`](super::Batch). They only build; they
//! never send.
//!
//! ```
//! use redge::client::commands::{self, SetOptions};
//! let cmd = commands::set_with("session:1", "{}", SetOptions::default().ex(3600).nx());
//! assert_eq!(cmd.args()[3..], [b"EX".to_vec(), b"3600".to_vec(), b"NX".to_vec()]);
//! ```

mod options;

pub use options::{Expiry, GetExpiry, ScanOptions, SetOptions, Trim, ZRangeBy, ZRangeOptions};

use super::cmd::{Cmd, ToArg, cmd};

// ---------------------------------------------------------------- strings

/// <https://redis.io/docs/latest/commands/get/>
pub fn get(key: impl ToArg) -> Cmd {
    cmd("GET").arg(key)
}

/// <https://redis.io/docs/latest/commands/set/>
pub fn set(key: impl ToArg, value: impl ToArg) -> Cmd {
    cmd("SET").arg(key).arg(value)
}

/// <https://redis.io/docs/latest/commands/set/> with expiry, `NX`/`XX` and `GET`.
pub fn set_with(key: impl ToArg, value: impl ToArg, options: SetOptions) -> Cmd {
    let mut c = set(key, value);
    c = match options.expiry {
        Some(Expiry::Seconds(s)) => c.arg("EX").arg(s),
        Some(Expiry::Millis(ms)) => c.arg("PX").arg(ms),
        Some(Expiry::AtSeconds(s)) => c.arg("EXAT").arg(s),
        Some(Expiry::AtMillis(ms)) => c.arg("PXAT").arg(ms),
        Some(Expiry::KeepTtl) => c.arg("KEEPTTL"),
        None => c,
    };
    c = match options.only_if_absent {
        Some(true) => c.arg("NX"),
        Some(false) => c.arg("XX"),
        None => c,
    };
    c.arg_if(options.get, "GET")
}

/// <https://redis.io/docs/latest/commands/getex/>
pub fn getex(key: impl ToArg, expiry: GetExpiry) -> Cmd {
    let c = cmd("GETEX").arg(key);
    match expiry {
        GetExpiry::Seconds(s) => c.arg("EX").arg(s),
        GetExpiry::Millis(ms) => c.arg("PX").arg(ms),
        GetExpiry::AtSeconds(s) => c.arg("EXAT").arg(s),
        GetExpiry::AtMillis(ms) => c.arg("PXAT").arg(ms),
        GetExpiry::Persist => c.arg("PERSIST"),
    }
}

/// <https://redis.io/docs/latest/commands/getdel/>
pub fn getdel(key: impl ToArg) -> Cmd {
    cmd("GETDEL").arg(key)
}

/// <https://redis.io/docs/latest/commands/mget/>
pub fn mget<K: ToArg>(keys: impl IntoIterator<Item = K>) -> Cmd {
    cmd("MGET").args_from(keys)
}

/// <https://redis.io/docs/latest/commands/mset/>
pub fn mset<K: ToArg, V: ToArg>(pairs: impl IntoIterator<Item = (K, V)>) -> Cmd {
    pairs
        .into_iter()
        .fold(cmd("MSET"), |c, (k, v)| c.arg(k).arg(v))
}

/// <https://redis.io/docs/latest/commands/incr/>
pub fn incr(key: impl ToArg) -> Cmd {
    cmd("INCR").arg(key)
}

/// <https://redis.io/docs/latest/commands/incrby/>
pub fn incrby(key: impl ToArg, by: i64) -> Cmd {
    cmd("INCRBY").arg(key).arg(by)
}

/// <https://redis.io/docs/latest/commands/decr/>
pub fn decr(key: impl ToArg) -> Cmd {
    cmd("DECR").arg(key)
}

/// <https://redis.io/docs/latest/commands/decrby/>
pub fn decrby(key: impl ToArg, by: i64) -> Cmd {
    cmd("DECRBY").arg(key).arg(by)
}

/// <https://redis.io/docs/latest/commands/append/>
pub fn append(key: impl ToArg, value: impl ToArg) -> Cmd {
    cmd("APPEND").arg(key).arg(value)
}

/// <https://redis.io/docs/latest/commands/strlen/>
pub fn strlen(key: impl ToArg) -> Cmd {
    cmd("STRLEN").arg(key)
}

// ---------------------------------------------------------------- keys

/// <https://redis.io/docs/latest/commands/del/>
pub fn del<K: ToArg>(keys: impl IntoIterator<Item = K>) -> Cmd {
    cmd("DEL").args_from(keys)
}

/// <https://redis.io/docs/latest/commands/unlink/>
pub fn unlink<K: ToArg>(keys: impl IntoIterator<Item = K>) -> Cmd {
    cmd("UNLINK").args_from(keys)
}

/// <https://redis.io/docs/latest/commands/exists/>
pub fn exists<K: ToArg>(keys: impl IntoIterator<Item = K>) -> Cmd {
    cmd("EXISTS").args_from(keys)
}

/// <https://redis.io/docs/latest/commands/expire/>
pub fn expire(key: impl ToArg, seconds: u64) -> Cmd {
    cmd("EXPIRE").arg(key).arg(seconds)
}

/// <https://redis.io/docs/latest/commands/pexpire/>
pub fn pexpire(key: impl ToArg, millis: u64) -> Cmd {
    cmd("PEXPIRE").arg(key).arg(millis)
}

/// <https://redis.io/docs/latest/commands/ttl/>
pub fn ttl(key: impl ToArg) -> Cmd {
    cmd("TTL").arg(key)
}

/// <https://redis.io/docs/latest/commands/pttl/>
pub fn pttl(key: impl ToArg) -> Cmd {
    cmd("PTTL").arg(key)
}

/// <https://redis.io/docs/latest/commands/persist/>
pub fn persist(key: impl ToArg) -> Cmd {
    cmd("PERSIST").arg(key)
}

/// <https://redis.io/docs/latest/commands/type/>
pub fn key_type(key: impl ToArg) -> Cmd {
    cmd("TYPE").arg(key)
}

/// <https://redis.io/docs/latest/commands/scan/>: one page; [`Client::scan`](super::Client::scan) walks
/// every page.
pub fn scan(cursor: &str, options: &ScanOptions) -> Cmd {
    let mut c = cmd("SCAN").arg(cursor);
    if let Some(pattern) = &options.pattern {
        c = c.arg("MATCH").arg(pattern);
    }
    if let Some(count) = options.count {
        c = c.arg("COUNT").arg(count);
    }
    if let Some(key_type) = &options.key_type {
        c = c.arg("TYPE").arg(key_type);
    }
    c
}

// ---------------------------------------------------------------- hashes

/// <https://redis.io/docs/latest/commands/hset/>
pub fn hset<F: ToArg, V: ToArg>(key: impl ToArg, pairs: impl IntoIterator<Item = (F, V)>) -> Cmd {
    pairs
        .into_iter()
        .fold(cmd("HSET").arg(key), |c, (f, v)| c.arg(f).arg(v))
}

/// <https://redis.io/docs/latest/commands/hsetnx/>
pub fn hsetnx(key: impl ToArg, field: impl ToArg, value: impl ToArg) -> Cmd {
    cmd("HSETNX").arg(key).arg(field).arg(value)
}

/// <https://redis.io/docs/latest/commands/hget/>
pub fn hget(key: impl ToArg, field: impl ToArg) -> Cmd {
    cmd("HGET").arg(key).arg(field)
}

/// <https://redis.io/docs/latest/commands/hmget/>
pub fn hmget<F: ToArg>(key: impl ToArg, fields: impl IntoIterator<Item = F>) -> Cmd {
    cmd("HMGET").arg(key).args_from(fields)
}

/// <https://redis.io/docs/latest/commands/hgetall/>: read as a `HashMap` or [`Pairs`](super::Pairs).
pub fn hgetall(key: impl ToArg) -> Cmd {
    cmd("HGETALL").arg(key)
}

/// <https://redis.io/docs/latest/commands/hdel/>
pub fn hdel<F: ToArg>(key: impl ToArg, fields: impl IntoIterator<Item = F>) -> Cmd {
    cmd("HDEL").arg(key).args_from(fields)
}

/// <https://redis.io/docs/latest/commands/hincrby/>
pub fn hincrby(key: impl ToArg, field: impl ToArg, by: i64) -> Cmd {
    cmd("HINCRBY").arg(key).arg(field).arg(by)
}

/// <https://redis.io/docs/latest/commands/hexists/>
pub fn hexists(key: impl ToArg, field: impl ToArg) -> Cmd {
    cmd("HEXISTS").arg(key).arg(field)
}

/// <https://redis.io/docs/latest/commands/hlen/>
pub fn hlen(key: impl ToArg) -> Cmd {
    cmd("HLEN").arg(key)
}

/// <https://redis.io/docs/latest/commands/hkeys/>
pub fn hkeys(key: impl ToArg) -> Cmd {
    cmd("HKEYS").arg(key)
}

/// <https://redis.io/docs/latest/commands/hvals/>
pub fn hvals(key: impl ToArg) -> Cmd {
    cmd("HVALS").arg(key)
}

// ---------------------------------------------------------------- lists

/// <https://redis.io/docs/latest/commands/lpush/>
pub fn lpush<V: ToArg>(key: impl ToArg, values: impl IntoIterator<Item = V>) -> Cmd {
    cmd("LPUSH").arg(key).args_from(values)
}

/// <https://redis.io/docs/latest/commands/rpush/>
pub fn rpush<V: ToArg>(key: impl ToArg, values: impl IntoIterator<Item = V>) -> Cmd {
    cmd("RPUSH").arg(key).args_from(values)
}

/// <https://redis.io/docs/latest/commands/lpop/>
pub fn lpop(key: impl ToArg) -> Cmd {
    cmd("LPOP").arg(key)
}

/// <https://redis.io/docs/latest/commands/rpop/>
pub fn rpop(key: impl ToArg) -> Cmd {
    cmd("RPOP").arg(key)
}

/// <https://redis.io/docs/latest/commands/lrange/>
pub fn lrange(key: impl ToArg, start: i64, stop: i64) -> Cmd {
    cmd("LRANGE").arg(key).arg(start).arg(stop)
}

/// <https://redis.io/docs/latest/commands/ltrim/>
pub fn ltrim(key: impl ToArg, start: i64, stop: i64) -> Cmd {
    cmd("LTRIM").arg(key).arg(start).arg(stop)
}

/// <https://redis.io/docs/latest/commands/llen/>
pub fn llen(key: impl ToArg) -> Cmd {
    cmd("LLEN").arg(key)
}

/// <https://redis.io/docs/latest/commands/lindex/>
pub fn lindex(key: impl ToArg, index: i64) -> Cmd {
    cmd("LINDEX").arg(key).arg(index)
}

/// <https://redis.io/docs/latest/commands/lrem/>
pub fn lrem(key: impl ToArg, count: i64, value: impl ToArg) -> Cmd {
    cmd("LREM").arg(key).arg(count).arg(value)
}

// ---------------------------------------------------------------- sets

/// <https://redis.io/docs/latest/commands/sadd/>
pub fn sadd<M: ToArg>(key: impl ToArg, members: impl IntoIterator<Item = M>) -> Cmd {
    cmd("SADD").arg(key).args_from(members)
}

/// <https://redis.io/docs/latest/commands/srem/>
pub fn srem<M: ToArg>(key: impl ToArg, members: impl IntoIterator<Item = M>) -> Cmd {
    cmd("SREM").arg(key).args_from(members)
}

/// <https://redis.io/docs/latest/commands/smembers/>
pub fn smembers(key: impl ToArg) -> Cmd {
    cmd("SMEMBERS").arg(key)
}

/// <https://redis.io/docs/latest/commands/sismember/>
pub fn sismember(key: impl ToArg, member: impl ToArg) -> Cmd {
    cmd("SISMEMBER").arg(key).arg(member)
}

/// <https://redis.io/docs/latest/commands/scard/>
pub fn scard(key: impl ToArg) -> Cmd {
    cmd("SCARD").arg(key)
}

// ---------------------------------------------------------------- sorted sets

/// <https://redis.io/docs/latest/commands/zadd/>: `(score, member)` pairs.
pub fn zadd<M: ToArg>(key: impl ToArg, members: impl IntoIterator<Item = (f64, M)>) -> Cmd {
    members
        .into_iter()
        .fold(cmd("ZADD").arg(key), |c, (s, m)| c.arg(s).arg(m))
}

/// <https://redis.io/docs/latest/commands/zincrby/>
pub fn zincrby(key: impl ToArg, by: f64, member: impl ToArg) -> Cmd {
    cmd("ZINCRBY").arg(key).arg(by).arg(member)
}

/// <https://redis.io/docs/latest/commands/zrem/>
pub fn zrem<M: ToArg>(key: impl ToArg, members: impl IntoIterator<Item = M>) -> Cmd {
    cmd("ZREM").arg(key).args_from(members)
}

/// <https://redis.io/docs/latest/commands/zscore/>
pub fn zscore(key: impl ToArg, member: impl ToArg) -> Cmd {
    cmd("ZSCORE").arg(key).arg(member)
}

/// <https://redis.io/docs/latest/commands/zcard/>
pub fn zcard(key: impl ToArg) -> Cmd {
    cmd("ZCARD").arg(key)
}

/// <https://redis.io/docs/latest/commands/zcount/>
pub fn zcount(key: impl ToArg, min: impl ToArg, max: impl ToArg) -> Cmd {
    cmd("ZCOUNT").arg(key).arg(min).arg(max)
}

/// <https://redis.io/docs/latest/commands/zrank/>
pub fn zrank(key: impl ToArg, member: impl ToArg) -> Cmd {
    cmd("ZRANK").arg(key).arg(member)
}

/// <https://redis.io/docs/latest/commands/zrange/> by rank.
pub fn zrange(key: impl ToArg, start: i64, stop: i64) -> Cmd {
    cmd("ZRANGE").arg(key).arg(start).arg(stop)
}

/// <https://redis.io/docs/latest/commands/zrange/> with `BYSCORE`/`BYLEX`, `REV`, `LIMIT`, `WITHSCORES`.
pub fn zrange_with(
    key: impl ToArg,
    min: impl ToArg,
    max: impl ToArg,
    options: ZRangeOptions,
) -> Cmd {
    let c = cmd("ZRANGE").arg(key).arg(min).arg(max);
    let c = match options.by {
        ZRangeBy::Rank => c,
        ZRangeBy::Score => c.arg("BYSCORE"),
        ZRangeBy::Lex => c.arg("BYLEX"),
    };
    let c = c.arg_if(options.rev, "REV");
    let c = match options.limit {
        Some((offset, count)) => c.arg("LIMIT").arg(offset).arg(count),
        None => c,
    };
    c.arg_if(options.with_scores, "WITHSCORES")
}

/// <https://redis.io/docs/latest/commands/zremrangebyscore/>
pub fn zremrangebyscore(key: impl ToArg, min: impl ToArg, max: impl ToArg) -> Cmd {
    cmd("ZREMRANGEBYSCORE").arg(key).arg(min).arg(max)
}

// ---------------------------------------------------------------- streams

/// <https://redis.io/docs/latest/commands/xadd/> with an automatic id (`*`).
pub fn xadd<F: ToArg, V: ToArg>(key: impl ToArg, fields: impl IntoIterator<Item = (F, V)>) -> Cmd {
    xadd_with(key, "*", None, fields)
}

/// <https://redis.io/docs/latest/commands/xadd/> with an explicit id and trimming (`MAXLEN ~ n`, `MINID`).
pub fn xadd_with<F: ToArg, V: ToArg>(
    key: impl ToArg,
    id: &str,
    trim: Option<&Trim>,
    fields: impl IntoIterator<Item = (F, V)>,
) -> Cmd {
    let mut c = cmd("XADD").arg(key);
    if let Some(trim) = trim {
        c = trim.write(c);
    }
    fields
        .into_iter()
        .fold(c.arg(id), |c, (f, v)| c.arg(f).arg(v))
}

/// <https://redis.io/docs/latest/commands/xrange/>: `-` and `+` for the ends; `count` limits the entries.
pub fn xrange(key: impl ToArg, start: &str, end: &str, count: Option<u64>) -> Cmd {
    let c = cmd("XRANGE").arg(key).arg(start).arg(end);
    match count {
        Some(n) => c.arg("COUNT").arg(n),
        None => c,
    }
}

/// <https://redis.io/docs/latest/commands/xlen/>
pub fn xlen(key: impl ToArg) -> Cmd {
    cmd("XLEN").arg(key)
}

/// <https://redis.io/docs/latest/commands/xtrim/>
pub fn xtrim(key: impl ToArg, trim: &Trim) -> Cmd {
    trim.write(cmd("XTRIM").arg(key))
}

// ---------------------------------------------------------------- pub/sub, scripts, server

/// <https://redis.io/docs/latest/commands/publish/>
pub fn publish(channel: impl ToArg, message: impl ToArg) -> Cmd {
    cmd("PUBLISH").arg(channel).arg(message)
}

/// <https://redis.io/docs/latest/commands/eval/>; prefer [`Script`](super::Script) and
/// [`Client::eval`](super::Client::eval).
pub fn eval<K: ToArg, A: ToArg>(
    source: &str,
    keys: impl IntoIterator<Item = K>,
    args: impl IntoIterator<Item = A>,
) -> Cmd {
    super::Script::new(source).eval_cmd(keys, args)
}

/// <https://redis.io/docs/latest/commands/evalsha/>
pub fn evalsha<K: ToArg, A: ToArg>(
    sha1: &str,
    keys: impl IntoIterator<Item = K>,
    args: impl IntoIterator<Item = A>,
) -> Cmd {
    let keys: Vec<Vec<u8>> = keys.into_iter().fold(Vec::new(), |mut v, k| {
        k.write_arg(&mut v);
        v
    });
    cmd("EVALSHA")
        .arg(sha1)
        .arg(keys.len())
        .args_from(&keys)
        .args_from(args)
}

/// <https://redis.io/docs/latest/commands/script-load/>: replies with the SHA1.
pub fn script_load(source: &str) -> Cmd {
    cmd("SCRIPT").arg("LOAD").arg(source)
}

/// <https://redis.io/docs/latest/commands/script-exists/>: one 1/0 per hash.
pub fn script_exists<S: ToArg>(sha1s: impl IntoIterator<Item = S>) -> Cmd {
    cmd("SCRIPT").arg("EXISTS").args_from(sha1s)
}

/// <https://redis.io/docs/latest/commands/ping/>
pub fn ping() -> Cmd {
    cmd("PING")
}

/// <https://redis.io/docs/latest/commands/time/>: `(seconds, microseconds)`, read as `(u64, u64)`.
pub fn time() -> Cmd {
    cmd("TIME")
}

#[cfg(test)]
mod tests;

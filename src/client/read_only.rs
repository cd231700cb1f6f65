//! Which Redis commands only read: one table for the client's retry rule and the gateway's read-only
//! tokens.
//!
//! Both questions have the same answer. A command whose response was lost may be sent again only if
//! the first attempt cannot have changed anything, and a read-only token may run only commands that
//! cannot change anything. Keeping one table means a command the gateway lets a read-only token run is
//! exactly a command the client retries, and a Redis release that adds commands cannot widen either:
//! a name the table does not know counts as a write.
//!
//! Scripts and functions (`EVAL`, `FCALL`) can write, so only their `_RO` variants are listed; `SORT` and
//! `GEORADIUS` can store, so only their `_RO` variants are listed too. `SCRIPT` is decided by its
//! subcommand: `SCRIPT EXISTS` reads; `SCRIPT LOAD` fills the server's script cache, which every client
//! shares, and `SCRIPT FLUSH` empties it, so both count as writes.

/// Commands that never modify data; sorted, upper case.
pub const READ_ONLY: &[&str] = &[
    "BITCOUNT",
    "BITFIELD_RO",
    "BITPOS",
    "COMMAND",
    "DBSIZE",
    "DUMP",
    "ECHO",
    "EVALSHA_RO",
    "EVAL_RO",
    "EXISTS",
    "EXPIRETIME",
    "FCALL_RO",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUSBYMEMBER_RO",
    "GEORADIUS_RO",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HTTL",
    "HVALS",
    "KEYS",
    "LCS",
    "LINDEX",
    "LLEN",
    "LOLWUT",
    "LPOS",
    "LRANGE",
    "MGET",
    "OBJECT",
    "PEXPIRETIME",
    "PFCOUNT",
    "PING",
    "PTTL",
    "PUBSUB",
    "RANDOMKEY",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SINTERCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SORT_RO",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUBSTR",
    "SUNION",
    "TIME",
    "TOUCH",
    "TTL",
    "TYPE",
    "XINFO",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREAD",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZDIFF",
    "ZINTER",
    "ZINTERCARD",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNION",
];

/// Whether a command (its name, in any case, followed by its arguments) only reads. An empty command
/// and an unknown name count as writes.
pub fn is_read_only<A: AsRef<[u8]>>(command: &[A]) -> bool {
    let Some(name) = command.first().map(AsRef::as_ref) else {
        return false;
    };
    if name.eq_ignore_ascii_case(b"SCRIPT") {
        return command
            .get(1)
            .is_some_and(|sub| sub.as_ref().eq_ignore_ascii_case(b"EXISTS"));
    }
    is_read_only_name(name)
}

/// Whether a command name (in any case) is in [`READ_ONLY`]. Names decided by their subcommand, such
/// as `SCRIPT`, are not: use [`is_read_only`] for a whole command.
pub fn is_read_only_name(name: &[u8]) -> bool {
    // The table is upper case, so comparing against the upper-cased name needs no allocation.
    READ_ONLY
        .binary_search_by(|probe| probe.bytes().cmp(name.iter().map(u8::to_ascii_uppercase)))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_upper_case() {
        assert!(READ_ONLY.windows(2).all(|w| w[0] < w[1]));
        assert!(READ_ONLY.iter().all(|n| *n == n.to_ascii_uppercase()));
        // Every entry is found, so the binary search agrees with the table's order.
        assert!(READ_ONLY.iter().all(|n| is_read_only_name(n.as_bytes())));
    }

    #[test]
    fn reads_are_read_only_in_any_case() {
        for read in [
            "GET", "get", "MGET", "ZRANGE", "SCAN", "PING", "TTL", "XRANGE", "eval_ro", "PfCount",
        ] {
            assert!(is_read_only(&[read, "k"]), "{read}");
        }
    }

    #[test]
    fn writes_and_unknown_names_are_not() {
        for write in [
            "SET", "INCR", "DEL", "EVAL", "EVALSHA", "EXPIRE", "LPUSH", "XADD", "SORT", "FOO", "",
            "GETS", "GE",
        ] {
            assert!(!is_read_only(&[write, "k"]), "{write:?}");
        }
        assert!(!is_read_only::<&str>(&[]));
    }

    #[test]
    fn script_is_decided_by_its_subcommand() {
        assert!(is_read_only(&["SCRIPT", "EXISTS", "abc"]));
        assert!(is_read_only(&["script", "exists"]));
        assert!(!is_read_only(&["SCRIPT", "LOAD", "return 1"]));
        assert!(!is_read_only(&["SCRIPT", "FLUSH"]));
        assert!(!is_read_only(&["SCRIPT"]));
        assert!(!is_read_only_name(b"SCRIPT"));
    }
}

//! Static tables of Redis command names: which ones only read, which ones write, and which ones an HTTP
//! gateway refuses by default.
//!
//! The tables serve two purposes. Read-only tokens may run only the commands of [`READ_ONLY`], the
//! library's table (an allow-list: a command it does not know is treated as a write, so a new Redis
//! release cannot open a hole). And logs name a command only when one of the tables knows it, so a value sent where a
//! command name belongs (`/my-secret`) never reaches a log line.

// Commands that never modify data: the library's table, so that read-only tokens here and the client's
// retry rule agree.
pub use redge::client::read_only::READ_ONLY;

/// Commands that modify data or server state; sorted, upper case. Only used to name commands in logs.
pub const WRITES: &[&str] = &[
    "APPEND",
    "BITFIELD",
    "BITOP",
    "COPY",
    "DECR",
    "DECRBY",
    "DEL",
    "EVAL",
    "EVALSHA",
    "EXPIRE",
    "EXPIREAT",
    "FCALL",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "GEOADD",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GEOSEARCHSTORE",
    "GETDEL",
    "GETEX",
    "GETSET",
    "HDEL",
    "HEXPIRE",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HMSET",
    "HPERSIST",
    "HPEXPIRE",
    "HSET",
    "HSETNX",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "LINSERT",
    "LMOVE",
    "LMPOP",
    "LPOP",
    "LPUSH",
    "LPUSHX",
    "LREM",
    "LSET",
    "LTRIM",
    "MSET",
    "MSETNX",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PFADD",
    "PFMERGE",
    "PSETEX",
    "PUBLISH",
    "RENAME",
    "RENAMENX",
    "RPOP",
    "RPOPLPUSH",
    "RPUSH",
    "RPUSHX",
    "SADD",
    "SCRIPT",
    "SDIFFSTORE",
    "SET",
    "SETBIT",
    "SETEX",
    "SETNX",
    "SETRANGE",
    "SINTERSTORE",
    "SMOVE",
    "SORT",
    "SPOP",
    "SPUBLISH",
    "SREM",
    "SUNIONSTORE",
    "UNLINK",
    "XACK",
    "XADD",
    "XAUTOCLAIM",
    "XCLAIM",
    "XDEL",
    "XGROUP",
    "XREADGROUP",
    "XSETID",
    "XTRIM",
    "ZADD",
    "ZDIFFSTORE",
    "ZINCRBY",
    "ZINTERSTORE",
    "ZMPOP",
    "ZPOPMAX",
    "ZPOPMIN",
    "ZRANGESTORE",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZUNIONSTORE",
];

/// Commands that cannot work over stateless HTTP, or that an operator would not expose.
///
/// Besides blocking and connection-state commands and server administration: `MIGRATE` makes Redis
/// connect to any host and port and send credentials there, `RESTORE` (and `RESTORE-ASKING`) loads a
/// serialized value Redis checks only partly, `SWAPDB` and `MOVE` reach other databases than the
/// one the gateway was configured for, and `PFDEBUG`, `PFSELFTEST` and `REPLCONF` are debugging and
/// replication internals.
pub const DEFAULT_REFUSED: &[&str] = &[
    "ACL",
    "AUTH",
    "BGREWRITEAOF",
    "BGSAVE",
    "BLMOVE",
    "BLMPOP",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BZMPOP",
    "BZPOPMAX",
    "BZPOPMIN",
    "CLIENT",
    "CLUSTER",
    "CONFIG",
    "DEBUG",
    "DISCARD",
    "EXEC",
    "FAILOVER",
    "HELLO",
    "MIGRATE",
    "MODULE",
    "MONITOR",
    "MOVE",
    "MULTI",
    "PFDEBUG",
    "PFSELFTEST",
    "PSUBSCRIBE",
    "PSYNC",
    "PUNSUBSCRIBE",
    "QUIT",
    "REPLCONF",
    "REPLICAOF",
    "RESET",
    "RESTORE",
    "RESTORE-ASKING",
    "SAVE",
    "SELECT",
    "SHUTDOWN",
    "SLAVEOF",
    "SSUBSCRIBE",
    "SUBSCRIBE",
    "SUNSUBSCRIBE",
    "SWAPDB",
    "SYNC",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
    "WAITAOF",
    "WATCH",
];

/// Subcommands refused by default while their command is not: `(COMMAND, SUBCOMMAND)`, sorted, upper
/// case. `FUNCTION LOAD`, `DELETE`, `FLUSH` and `RESTORE` change the server's function libraries, which
/// persist and replicate (unlike `SCRIPT LOAD`'s cache) and are shared by every client of the server;
/// `FUNCTION LIST`, `STATS`, `DUMP` and `KILL` only read or stop a running function and stay allowed.
pub const DEFAULT_REFUSED_SUBCOMMANDS: &[(&str, &str)] = &[
    ("FUNCTION", "DELETE"),
    ("FUNCTION", "FLUSH"),
    ("FUNCTION", "LOAD"),
    ("FUNCTION", "RESTORE"),
];

/// The tables that name commands in logs and metrics, in the order of [`known`]'s indexes.
const NAMED: [&[&str]; 3] = [READ_ONLY, WRITES, DEFAULT_REFUSED];

/// How many command names the tables know: [`known`] answers indexes below this.
pub const KNOWN: usize = READ_ONLY.len() + WRITES.len() + DEFAULT_REFUSED.len();

/// A (upper-case) command name the tables know: a dense index below [`KNOWN`] (for tables of counters)
/// and the table's own copy of the name.
pub fn known(name: &str) -> Option<(usize, &'static str)> {
    let mut offset = 0;
    for table in NAMED {
        if let Ok(i) = table.binary_search(&name) {
            return Some((offset + i, table[i]));
        }
        offset += table.len();
    }
    None
}

/// The name at an index of [`known`].
pub fn known_name(mut index: usize) -> Option<&'static str> {
    for table in NAMED {
        if let Some(name) = table.get(index) {
            return Some(name);
        }
        index -= table.len();
    }
    None
}

/// The name to put in a log line: the command if a table knows it, `"unknown"` otherwise.
pub fn loggable(name: &str) -> &'static str {
    known(name).map_or("unknown", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_upper_case_and_disjoint() {
        for table in [READ_ONLY, WRITES, DEFAULT_REFUSED] {
            assert!(table.windows(2).all(|w| w[0] < w[1]), "{:?}", table);
            assert!(table.iter().all(|n| *n == n.to_ascii_uppercase()));
        }
        for name in READ_ONLY {
            assert!(
                !WRITES.contains(name) && !DEFAULT_REFUSED.contains(name),
                "{name}"
            );
        }
        for name in WRITES {
            assert!(!DEFAULT_REFUSED.contains(name), "{name}");
        }
        let subcommands = DEFAULT_REFUSED_SUBCOMMANDS;
        assert!(subcommands.windows(2).all(|w| w[0] < w[1]));
        for (name, sub) in subcommands {
            assert!(WRITES.contains(name) && !DEFAULT_REFUSED.contains(name));
            assert_eq!(*sub, sub.to_ascii_uppercase());
        }
    }

    #[test]
    fn names_known_commands_only() {
        assert_eq!(loggable("SET"), "SET");
        assert_eq!(loggable("MY-SECRET-VALUE"), "unknown");
    }

    #[test]
    fn every_known_name_has_its_own_index() {
        for index in 0..KNOWN {
            let name = known_name(index).unwrap();
            assert_eq!(known(name), Some((index, name)));
        }
        assert_eq!(known_name(KNOWN), None);
        assert_eq!(known("MY-SECRET-VALUE"), None);
    }
}

//! Where a command's keys live on a Redis Cluster: the pure part of routing in cluster mode.
//!
//! A cluster splits the key space into 16384 hash slots, each served by one master. The gateway has to
//! know a command's slot itself, before anything is sent, in three places: to split a pipeline into one
//! pipeline per slot, to refuse a script or transaction whose keys hash to different slots with a
//! clear 400 (Redis would refuse it too, but only after the gateway had picked a node, and a
//! transaction would then be half queued), and to name the slot a `SCAN` cursor is on. The client
//! library routes single commands by a table of its own that it does not expose, so the gateway keeps
//! this one: where each command's keys are ([`key_indexes`]), the slot of a key ([`slot`], redge's),
//! and the arithmetic of the cluster-wide `SCAN` cursor ([`ScanCursor`]).

use std::fmt;

/// The slot function and slot count are the library's own (`redge::slot`), so the gateway and the keys
/// redge builds agree by construction.
pub use redge::slot::{SLOTS, slot};

/// Commands that take no key (or whose first argument is not a key): in cluster mode they are routed
/// by the client library's table (one node, every master, or any node).
const KEYLESS: &[&str] = &[
    "COMMAND",
    "DBSIZE",
    "ECHO",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "INFO",
    "KEYS",
    "LASTSAVE",
    "LATENCY",
    "LOLWUT",
    "PING",
    "PUBLISH",
    "PUBSUB",
    "RANDOMKEY",
    "SCAN",
    "SCRIPT",
    "SLOWLOG",
    "TIME",
];

/// The positions in `args` of the command's keys (`args[0]` is the command; `name` its upper-case
/// form). Commands not listed take their key at position 1, as Redis's own commands mostly do; a
/// malformed key count gives no keys (Redis refuses the command itself).
pub fn key_indexes(name: &str, args: &[Vec<u8>]) -> Vec<usize> {
    let n = args.len();
    let sub = || {
        args.get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_uppercase())
            .unwrap_or_default()
    };
    match name {
        _ if KEYLESS.contains(&name) => Vec::new(),
        "MGET" | "DEL" | "EXISTS" | "UNLINK" | "TOUCH" | "WATCH" | "SINTER" | "SUNION"
        | "SDIFF" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" | "PFCOUNT" | "PFMERGE" => {
            (1..n).collect()
        }
        "MSET" | "MSETNX" => (1..n).step_by(2).collect(),
        "RENAME" | "RENAMENX" | "COPY" | "SMOVE" | "LMOVE" | "RPOPLPUSH" | "GEOSEARCHSTORE"
        | "ZRANGESTORE" | "LCS" => (1..n.min(3)).collect(),
        "BITOP" => (2..n).collect(),
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" => counted(args, 2),
        "ZUNION" | "ZINTER" | "ZDIFF" | "ZINTERCARD" | "SINTERCARD" | "LMPOP" | "ZMPOP" => {
            counted(args, 1)
        }
        "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" if n > 1 => {
            std::iter::once(1).chain(counted(args, 2)).collect()
        }
        "XREAD" | "XREADGROUP" => streams(args),
        "OBJECT" | "XINFO" | "XGROUP" | "MEMORY" => match (name, sub().as_str()) {
            ("MEMORY", "USAGE")
            | ("OBJECT", "ENCODING" | "FREQ" | "IDLETIME" | "REFCOUNT")
            | ("XINFO", "STREAM" | "GROUPS" | "CONSUMERS")
            | ("XGROUP", "CREATE" | "SETID" | "DESTROY" | "CREATECONSUMER" | "DELCONSUMER")
                if n > 2 =>
            {
                vec![2]
            }
            _ => Vec::new(),
        },
        _ if n > 1 => vec![1],
        _ => Vec::new(),
    }
}

/// `numkeys key [key ...]` with the count at `at`.
fn counted(args: &[Vec<u8>], at: usize) -> Vec<usize> {
    let count = args
        .get(at)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let first = at + 1;
    (first..args.len().min(first.saturating_add(count))).collect()
}

/// `... STREAMS key [key ...] id [id ...]`: the first half of what follows `STREAMS`.
fn streams(args: &[Vec<u8>]) -> Vec<usize> {
    let Some(at) = args.iter().position(|a| a.eq_ignore_ascii_case(b"STREAMS")) else {
        return Vec::new();
    };
    let rest = args.len() - at - 1;
    (at + 1..at + 1 + rest / 2).collect()
}

/// Two keys of one request that hash to different slots: the request cannot run on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossSlot {
    pub first: (String, u16),
    pub other: (String, u16),
}

impl fmt::Display for CrossSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ((a, slot_a), (b, slot_b)) = (&self.first, &self.other);
        write!(
            f,
            "keys '{a}' (slot {slot_a}) and '{b}' (slot {slot_b}) hash to different slots of the \
             Redis Cluster; a script or a transaction runs on one node, so all its keys must share \
             a slot: give them a common hash tag, e.g. '{{tag}}{a}' and '{{tag}}{b}' (only the part \
             between '{{' and '}}' is hashed)"
        )
    }
}

/// A key as the error message shows it: lossy UTF-8, at most 64 characters.
fn shown(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.into_owned(),
    }
}

/// The one slot every key of `commands` hashes to: `Ok(None)` when they have no key at all, an error
/// naming two keys when they span slots. `commands` yields each command with its upper-case name.
pub fn common_slot<'a>(
    commands: impl IntoIterator<Item = (&'a str, &'a [Vec<u8>])>,
) -> Result<Option<u16>, CrossSlot> {
    let mut found: Option<(&[u8], u16)> = None;
    for (name, args) in commands {
        for index in key_indexes(name, args) {
            let key = args[index].as_slice();
            let key_slot = slot(key);
            match found {
                None => found = Some((key, key_slot)),
                Some((first, first_slot)) if first_slot != key_slot => {
                    return Err(CrossSlot {
                        first: (shown(first), first_slot),
                        other: (shown(key), key_slot),
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(found.map(|(_, s)| s))
}

/// One part of a pipeline split for a cluster: the commands (positions in the request) sent together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The slot of every key of these commands; `None` for a single command without keys or whose keys
    /// span slots, which the client library routes (and splits, for `MGET`, `DEL` ...) by itself.
    pub slot: Option<u16>,
    /// Positions in the request, in request order.
    pub commands: Vec<usize>,
}

/// Splits a pipeline into waves of parts. Within a wave, the commands of one slot form one part, in
/// their request order, and the parts may run concurrently: commands on different slots cannot see each
/// other's keys. A command without a key, or whose keys span slots (`MGET a b`, `DBSIZE`, `PING`), can
/// see keys of any slot, so it is a wave of its own: it runs after every command before it and before
/// every command after it, and the request keeps its order wherever a command could tell.
pub fn split(names: &[String], commands: &[Vec<Vec<u8>>]) -> Vec<Vec<Part>> {
    let mut waves: Vec<Vec<Part>> = Vec::new();
    let mut wave: Vec<Part> = Vec::new();
    let mut by_slot: std::collections::HashMap<u16, usize> = std::collections::HashMap::new();
    for (i, (name, args)) in names.iter().zip(commands).enumerate() {
        match common_slot([(name.as_str(), args.as_slice())]) {
            Ok(Some(s)) => match by_slot.get(&s) {
                Some(&part) => wave[part].commands.push(i),
                None => {
                    by_slot.insert(s, wave.len());
                    wave.push(Part {
                        slot: Some(s),
                        commands: vec![i],
                    });
                }
            },
            Ok(None) | Err(_) => {
                if !wave.is_empty() {
                    waves.push(std::mem::take(&mut wave));
                    by_slot.clear();
                }
                waves.push(vec![Part {
                    slot: None,
                    commands: vec![i],
                }]);
            }
        }
    }
    if !wave.is_empty() {
        waves.push(wave);
    }
    waves
}

/// A position in a `SCAN` over every master: the master that serves `slot` (the lowest slot of that
/// master when the gateway made the cursor), and that master's own cursor.
///
/// On the wire it is one decimal number, `node * 16384 + slot`, so a scan starts at `0` (the master of
/// slot 0, its cursor 0) and a client that loops until `0` comes back sees every master in turn. A
/// Redis cursor is a 64-bit number; the product needs up to 78 bits, hence `u128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    pub slot: u16,
    pub node: u64,
}

impl ScanCursor {
    /// Reads a client's cursor; `None` when it is not one the gateway can have made.
    pub fn parse(text: &[u8]) -> Option<ScanCursor> {
        let value: u128 = std::str::from_utf8(text).ok()?.parse().ok()?;
        let node = u64::try_from(value / u128::from(SLOTS)).ok()?;
        let slot = (value % u128::from(SLOTS)) as u16;
        Some(ScanCursor { slot, node })
    }

    /// The decimal form.
    pub fn encode(self) -> String {
        (u128::from(self.node) * u128::from(SLOTS) + u128::from(self.slot)).to_string()
    }
}

/// The master to scan after the one that serves `slot`: the master whose lowest slot comes next in
/// slot order. `ranges` are `(first, last, master id)` as `CLUSTER SLOTS` reports them. `None` when
/// the master of `slot` is the last one (the scan is complete).
pub fn next_master(ranges: &[(u16, u16, String)], slot: u16) -> Option<u16> {
    let mut lowest: std::collections::HashMap<&str, u16> = std::collections::HashMap::new();
    for (first, _, id) in ranges {
        let entry = lowest.entry(id.as_str()).or_insert(*first);
        *entry = (*entry).min(*first);
    }
    let current = ranges
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&slot))
        .and_then(|(_, _, id)| lowest.get(id.as_str()).copied())
        .unwrap_or(slot);
    lowest.values().copied().filter(|&l| l > current).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn keys(items: &[&str]) -> Vec<usize> {
        let args = args(items);
        key_indexes(&items[0].to_ascii_uppercase(), &args)
    }

    #[test]
    fn keys_are_found_where_each_command_has_them() {
        assert_eq!(keys(&["GET", "k"]), [1]);
        assert_eq!(keys(&["PING"]), Vec::<usize>::new());
        assert_eq!(keys(&["PUBLISH", "ch", "m"]), Vec::<usize>::new());
        assert_eq!(keys(&["MSET", "a", "1", "b", "2"]), [1, 3]);
        assert_eq!(keys(&["DEL", "a", "b"]), [1, 2]);
        assert_eq!(keys(&["EVAL", "return 1", "2", "a", "b", "arg"]), [3, 4]);
        assert_eq!(keys(&["EVALSHA", "abc", "0", "arg"]), Vec::<usize>::new());
        assert_eq!(
            keys(&["EVAL", "s", "9", "a"]),
            [3],
            "a count past the end stops there"
        );
        assert_eq!(keys(&["EVAL", "s", "x", "a"]), Vec::<usize>::new());
        assert_eq!(
            keys(&["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS"]),
            [1, 3, 4]
        );
        assert_eq!(keys(&["LMPOP", "2", "a", "b", "LEFT"]), [2, 3]);
        assert_eq!(
            keys(&["XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0"]),
            [4, 5]
        );
        assert_eq!(keys(&["XINFO", "STREAM", "s"]), [2]);
        assert_eq!(keys(&["XINFO", "HELP"]), Vec::<usize>::new());
        assert_eq!(keys(&["BITOP", "AND", "d", "a", "b"]), [2, 3, 4]);
        assert_eq!(keys(&["LMOVE", "a", "b", "LEFT", "RIGHT"]), [1, 2]);
    }

    #[test]
    fn a_request_across_slots_names_two_keys_and_the_fix() {
        let one = args(&["EVAL", "s", "2", "{t}a", "{t}b"]);
        assert_eq!(
            common_slot([("EVAL", one.as_slice())]),
            Ok(Some(slot(b"t")))
        );
        let none = args(&["PING"]);
        assert_eq!(common_slot([("PING", none.as_slice())]), Ok(None));
        let (set, get) = (args(&["SET", "a", "1"]), args(&["GET", "b"]));
        let error = common_slot([("SET", set.as_slice()), ("GET", get.as_slice())]).unwrap_err();
        assert_eq!(error.first, ("a".into(), slot(b"a")));
        assert_eq!(error.other, ("b".into(), slot(b"b")));
        let text = error.to_string();
        assert!(
            text.contains("different slots") && text.contains("{tag}a"),
            "{text}"
        );
        let long = "x".repeat(100);
        assert_eq!(shown(long.as_bytes()).len(), 67);
    }

    #[test]
    fn pipelines_split_by_slot_keeping_order() {
        let commands = vec![
            args(&["SET", "{a}1", "x"]),
            args(&["PING"]),
            args(&["SET", "{b}1", "y"]),
            args(&["GET", "{a}2"]),
            args(&["MGET", "{a}1", "{b}1"]),
            args(&["INCR", "{b}2"]),
        ];
        let names: Vec<String> = commands
            .iter()
            .map(|c| String::from_utf8_lossy(&c[0]).to_ascii_uppercase())
            .collect();
        let waves = split(&names, &commands);
        let (a, b) = (Some(slot(b"a")), Some(slot(b"b")));
        let part = |slot, commands: &[usize]| Part {
            slot,
            commands: commands.to_vec(),
        };
        // PING and the cross-slot MGET are waves of their own: what comes before them runs first.
        assert_eq!(
            waves,
            [
                vec![part(a, &[0])],
                vec![part(None, &[1])],
                vec![part(b, &[2]), part(a, &[3])],
                vec![part(None, &[4])],
                vec![part(b, &[5])],
            ]
        );
    }

    #[test]
    fn scan_cursors_round_trip_and_start_at_zero() {
        assert_eq!(
            ScanCursor::parse(b"0"),
            Some(ScanCursor { slot: 0, node: 0 })
        );
        let cursor = ScanCursor {
            slot: 5461,
            node: u64::MAX,
        };
        assert_eq!(ScanCursor::parse(cursor.encode().as_bytes()), Some(cursor));
        assert_eq!(ScanCursor::parse(b"-1"), None);
        assert_eq!(ScanCursor::parse(b"abc"), None);
        let too_big = (u128::from(u64::MAX) + 1) * u128::from(SLOTS);
        assert_eq!(ScanCursor::parse(too_big.to_string().as_bytes()), None);
    }

    #[test]
    fn masters_are_visited_in_slot_order() {
        let ranges = vec![
            (0, 5460, "m1".to_owned()),
            (10923, 16383, "m3".to_owned()),
            (5461, 10922, "m2".to_owned()),
        ];
        assert_eq!(next_master(&ranges, 0), Some(5461));
        assert_eq!(next_master(&ranges, 5461), Some(10923));
        assert_eq!(next_master(&ranges, 10923), None);
        // A master with two ranges is visited once, from its lowest slot.
        let split = vec![
            (0, 99, "m1".to_owned()),
            (100, 199, "m2".to_owned()),
            (200, 299, "m1".to_owned()),
        ];
        assert_eq!(next_master(&split, 0), Some(100));
        assert_eq!(next_master(&split, 100), None);
        assert_eq!(next_master(&split, 250), Some(100));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Commands with names the table treats specially, and arguments that look like key counts.
    fn arb_command() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let name = prop_oneof![
            Just("EVAL"),
            Just("FCALL"),
            Just("ZUNIONSTORE"),
            Just("LMPOP"),
            Just("XREAD"),
            Just("MSET"),
            Just("XINFO"),
            Just("GET"),
            Just("PING"),
            Just("BITOP"),
            Just("DEL"),
        ];
        let arg = prop_oneof![
            "[0-9]{1,2}".prop_map(String::into_bytes),
            Just(b"STREAMS".to_vec()),
            Just(b"{t}k".to_vec()),
            vec(any::<u8>(), 0..6),
        ];
        (name, vec(arg, 0..8)).prop_map(|(name, mut args)| {
            args.insert(0, name.as_bytes().to_vec());
            args
        })
    }

    proptest! {
        #![proptest_config(crate::wire_tests::config())]

        #[test]
        fn key_positions_are_always_arguments(args in arb_command()) {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            let keys = key_indexes(&name, &args);
            prop_assert!(keys.iter().all(|&i| i >= 1 && i < args.len()));
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn cursors_round_trip(slot in 0..SLOTS, node in any::<u64>()) {
            let cursor = ScanCursor { slot, node };
            prop_assert_eq!(ScanCursor::parse(cursor.encode().as_bytes()), Some(cursor));
        }

        #[test]
        fn a_split_pipeline_holds_every_command_once_in_order(
            commands in vec(arb_command(), 1..12),
        ) {
            let names: Vec<String> = commands
                .iter()
                .map(|c| String::from_utf8_lossy(&c[0]).to_ascii_uppercase())
                .collect();
            let waves = split(&names, &commands);
            // Waves follow request order: every command of a wave comes after every command of
            // the waves before it.
            let bounds: Vec<(usize, usize)> = waves
                .iter()
                .map(|w| {
                    let all = w.iter().flat_map(|p| p.commands.iter().copied());
                    (all.clone().min().unwrap_or(0), all.max().unwrap_or(0))
                })
                .collect();
            prop_assert!(bounds.windows(2).all(|w| w[0].1 < w[1].0));
            prop_assert!(waves.iter().all(|w| !w.is_empty()));
            let parts: Vec<Part> = waves.into_iter().flatten().collect();
            let mut seen: Vec<usize> = parts.iter().flat_map(|p| p.commands.clone()).collect();
            prop_assert!(parts.iter().all(|p| p.commands.windows(2).all(|w| w[0] < w[1])));
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..commands.len()).collect::<Vec<_>>());
            for part in &parts {
                match part.slot {
                    Some(s) => {
                        let on_slot = |i: usize| {
                            common_slot([(names[i].as_str(), commands[i].as_slice())]) == Ok(Some(s))
                        };
                        let all_on_slot = part.commands.iter().all(|&i| on_slot(i));
                        prop_assert!(all_on_slot);
                    }
                    None => prop_assert_eq!(part.commands.len(), 1),
                }
            }
        }
    }
}

//! Redis Cluster hash slots: which of the 16384 slots a key belongs to.
//!
//! A Redis Cluster refuses a command or a script whose keys fall in different slots (`CROSSSLOT`) and
//! sends a script to the node that owns the slot of its declared `KEYS`. So every redge operation that
//! touches several keys builds them around one hash tag (the part between the first `{` and the next
//! `}`), chosen per identifier, per user or per cache entry: the keys of one operation share a slot,
//! and different identifiers, users and entries spread over the cluster.
//!
//! The library computes slots itself for the one decision that depends on them at run time: a
//! rate-limit check of several identifiers is sent as one script per slot (see
//! [`ratelimit`](crate::ratelimit)), and a cache read groups an entry and its tags' counters by slot.
//! The tests use the same function to check that every script's keys share one slot.

/// The number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// The part of `key` Redis hashes: the bytes between the first `{` and the first `}` after it, when
/// that part is not empty; otherwise the whole key.
///
/// ```
/// use redge::slot::hash_tag;
/// assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
/// assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
/// ```
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.iter().position(|&b| b == b'}')
            && close > 0
        {
            return &rest[..close];
        }
    }
    key
}

/// The hash slot of `key`: CRC16 (XMODEM) of its [`hash_tag`], modulo [`SLOTS`].
///
/// ```
/// use redge::slot::slot;
/// assert_eq!(slot(b"foo"), 12182);
/// assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
/// ```
pub fn slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// CRC16 with polynomial 0x1021, initial value 0 and no reflection (XMODEM), the variant Redis Cluster
/// uses.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `prefix` with its braces percent-encoded (`{` as `%7B`, `}` as `%7D`), so that a configured key
/// prefix can never hold the hash tag that redge places after it: a prefix such as `rl:{limits}` would
/// otherwise put every key of the service in one slot.
pub fn plain_prefix(prefix: &str) -> String {
    prefix.replace('{', "%7B").replace('}', "%7D")
}

/// Whether every key in `keys` falls in one slot (true for none or one).
pub fn same_slot<K: AsRef<[u8]>>(keys: &[K]) -> bool {
    let mut slots = keys.iter().map(|k| slot(k.as_ref()));
    match slots.next() {
        Some(first) => slots.all(|s| s == first),
        None => true,
    }
}

/// What a Redis Cluster would say about one command, for the native tests of every capability: the
/// keys of `args` (a command as sent: name first), `Err` with the reason a cluster would refuse it.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) fn cluster_keys(args: &[String]) -> std::result::Result<Vec<String>, String> {
    let name = args
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    let keys: Vec<String> = match name.as_str() {
        "EVAL" | "EVALSHA" => {
            let n: usize = args
                .get(2)
                .and_then(|n| n.parse().ok())
                .ok_or("ERR numkeys")?;
            if n == 0 {
                return Err("a script with no KEYS cannot be routed on a cluster".into());
            }
            args.get(3..3 + n).ok_or("ERR numkeys")?.to_vec()
        }
        "MGET" | "DEL" | "UNLINK" | "EXISTS" => args[1..].to_vec(),
        "GET" | "SET" | "INCR" | "PTTL" | "PEXPIRE" | "HGETALL" | "HGET" | "ZCARD" => {
            args.get(1).into_iter().cloned().collect()
        }
        other => return Err(format!("no key rule for {other}")),
    };
    if same_slot(&keys) {
        Ok(keys)
    } else {
        Err(format!(
            "CROSSSLOT Keys in request don't hash to the same slot: {keys:?}"
        ))
    }
}

/// `inner`, behind a check that refuses every command a Redis Cluster would refuse
/// ([`cluster_keys`]), recording each command's slot in `slots`.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) fn cluster_checked(
    slots: std::rc::Rc<std::cell::RefCell<Vec<(String, u16)>>>,
    inner: impl Fn(&[String]) -> std::result::Result<crate::client::Reply, String>,
) -> impl Fn(&[String]) -> std::result::Result<crate::client::Reply, String> {
    move |args: &[String]| {
        let keys = cluster_keys(args)?;
        slots.borrow_mut().push((
            args[0].clone(),
            keys.first().map_or(0, |k| slot(k.as_bytes())),
        ));
        inner(args)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // The check value of CRC16/XMODEM, and slots Redis's own documentation gives.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b""), 0);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // As a redis-server 7.0 answered CLUSTER KEYSLOT for each.
        for (key, expected) in [
            ("hello", 866),
            ("user:1000", 1649),
            ("{user1000}.following", 3443),
            ("a{}b", 13694),
            ("rate:{ip:1.2.3.4}:min", 5271),
            ("ü", 9552),
        ] {
            assert_eq!(slot(key.as_bytes()), expected, "{key}");
        }
        assert_eq!(slot(b"a{b}{c}"), slot(b"b"), "only the first tag counts");
    }

    #[test]
    fn hash_tag_rules() {
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(
            hash_tag(b"{}foo"),
            b"{}foo",
            "an empty tag hashes the whole key"
        );
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar");
        assert_eq!(hash_tag(b"foo}bar{x}"), b"x");
        assert_eq!(plain_prefix("rl:{limits}"), "rl:%7Blimits%7D");
        assert!(same_slot::<&[u8]>(&[]));
        assert!(same_slot(&["a{t}", "b{t}", "{t}"]));
        assert!(!same_slot(&["foo", "bar"]));
    }

    proptest! {
        #[test]
        fn a_tag_decides_the_slot(tag in "[a-z0-9]{1,12}", a in "[^{}]{0,12}", b in "[^{}]{0,12}") {
            let one = format!("{a}{{{tag}}}{b}");
            let two = format!("{b}{{{tag}}}:{a}");
            prop_assert_eq!(slot(one.as_bytes()), slot(tag.as_bytes()));
            prop_assert_eq!(slot(one.as_bytes()), slot(two.as_bytes()));
            prop_assert!(slot(one.as_bytes()) < SLOTS);
        }
    }
}

use super::*;

fn text(c: &Cmd) -> Vec<String> {
    c.args()
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[test]
fn strings() {
    assert_eq!(text(&get("k")), ["GET", "k"]);
    assert_eq!(text(&set("k", "v")), ["SET", "k", "v"]);
    let all = SetOptions::default().px(1500).xx().get();
    assert_eq!(
        text(&set_with("k", "v", all)),
        ["SET", "k", "v", "PX", "1500", "XX", "GET"]
    );
    let keep = SetOptions::default().keep_ttl().nx();
    assert_eq!(
        text(&set_with("k", "v", keep)),
        ["SET", "k", "v", "KEEPTTL", "NX"]
    );
    let at = SetOptions {
        expiry: Some(Expiry::AtMillis(9)),
        ..SetOptions::default()
    };
    assert_eq!(
        text(&set_with("k", "v", at)),
        ["SET", "k", "v", "PXAT", "9"]
    );
    assert_eq!(
        text(&getex("k", GetExpiry::Seconds(5))),
        ["GETEX", "k", "EX", "5"]
    );
    assert_eq!(
        text(&getex("k", GetExpiry::Persist)),
        ["GETEX", "k", "PERSIST"]
    );
    assert_eq!(text(&getdel("k")), ["GETDEL", "k"]);
    assert_eq!(text(&mget(["a", "b"])), ["MGET", "a", "b"]);
    assert_eq!(
        text(&mset([("a", 1), ("b", 2)])),
        ["MSET", "a", "1", "b", "2"]
    );
    assert_eq!(text(&incrby("k", -3)), ["INCRBY", "k", "-3"]);
    assert_eq!(text(&decr("k")), ["DECR", "k"]);
    assert_eq!(text(&append("k", "x")), ["APPEND", "k", "x"]);
}

#[test]
fn keys() {
    assert_eq!(text(&del(["a", "b"])), ["DEL", "a", "b"]);
    assert_eq!(text(&unlink(vec![String::from("a")])), ["UNLINK", "a"]);
    assert_eq!(text(&exists(["a"])), ["EXISTS", "a"]);
    assert_eq!(text(&expire("k", 10)), ["EXPIRE", "k", "10"]);
    assert_eq!(text(&pexpire("k", 10)), ["PEXPIRE", "k", "10"]);
    assert_eq!(text(&key_type("k")), ["TYPE", "k"]);
    let options = ScanOptions {
        pattern: Some("s:*".into()),
        count: Some(100),
        key_type: Some("hash".into()),
    };
    assert_eq!(
        text(&scan("17", &options)),
        ["SCAN", "17", "MATCH", "s:*", "COUNT", "100", "TYPE", "hash"]
    );
    assert_eq!(text(&scan("0", &ScanOptions::default())), ["SCAN", "0"]);
}

#[test]
fn hashes_lists_sets() {
    assert_eq!(
        text(&hset("h", [("f", "v"), ("g", "w")])),
        ["HSET", "h", "f", "v", "g", "w"]
    );
    assert_eq!(text(&hmget("h", ["f", "g"])), ["HMGET", "h", "f", "g"]);
    assert_eq!(text(&hincrby("h", "f", 2)), ["HINCRBY", "h", "f", "2"]);
    assert_eq!(text(&lpush("l", ["a", "b"])), ["LPUSH", "l", "a", "b"]);
    assert_eq!(text(&ltrim("l", 0, -2)), ["LTRIM", "l", "0", "-2"]);
    assert_eq!(text(&lrange("l", 0, -1)), ["LRANGE", "l", "0", "-1"]);
    assert_eq!(text(&sadd("s", ["x"])), ["SADD", "s", "x"]);
}

#[test]
fn sorted_sets() {
    assert_eq!(
        text(&zadd("z", [(1.5, "a"), (2.0, "b")])),
        ["ZADD", "z", "1.5", "a", "2", "b"]
    );
    let options = ZRangeOptions {
        by: ZRangeBy::Score,
        rev: true,
        limit: Some((0, 10)),
        with_scores: true,
    };
    assert_eq!(
        text(&zrange_with("z", "+inf", "(5", options)),
        [
            "ZRANGE",
            "z",
            "+inf",
            "(5",
            "BYSCORE",
            "REV",
            "LIMIT",
            "0",
            "10",
            "WITHSCORES"
        ]
    );
    assert_eq!(text(&zrange("z", 0, -1)), ["ZRANGE", "z", "0", "-1"]);
    assert_eq!(
        text(&zremrangebyscore("z", "-inf", 100)),
        ["ZREMRANGEBYSCORE", "z", "-inf", "100"]
    );
}

#[test]
fn streams() {
    assert_eq!(text(&xadd("s", [("f", "v")])), ["XADD", "s", "*", "f", "v"]);
    let maxlen = Trim::MaxLen {
        approx: true,
        len: 1000,
    };
    assert_eq!(
        text(&xadd_with("s", "*", Some(&maxlen), [("f", "v")])),
        ["XADD", "s", "MAXLEN", "~", "1000", "*", "f", "v"]
    );
    let minid = Trim::MinId {
        approx: false,
        id: "17-0".into(),
    };
    assert_eq!(
        text(&xtrim("s", &minid)),
        ["XTRIM", "s", "MINID", "=", "17-0"]
    );
    assert_eq!(
        text(&xrange("s", "-", "+", Some(2))),
        ["XRANGE", "s", "-", "+", "COUNT", "2"]
    );
    assert_eq!(text(&xlen("s")), ["XLEN", "s"]);
}

#[test]
fn scripts_and_server() {
    assert_eq!(
        text(&eval("return 1", ["k"], ["a"])),
        ["EVAL", "return 1", "1", "k", "a"]
    );
    assert_eq!(
        text(&evalsha("abc", ["k"], [1])),
        ["EVALSHA", "abc", "1", "k", "1"]
    );
    assert_eq!(
        text(&script_load("return 1")),
        ["SCRIPT", "LOAD", "return 1"]
    );
    assert_eq!(
        text(&script_exists(["a", "b"])),
        ["SCRIPT", "EXISTS", "a", "b"]
    );
    assert_eq!(text(&publish("c", "m")), ["PUBLISH", "c", "m"]);
    assert_eq!(text(&ping()), ["PING"]);
    assert_eq!(text(&time()), ["TIME"]);
}

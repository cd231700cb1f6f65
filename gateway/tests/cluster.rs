//! The gateway in front of a real Redis Cluster (three masters, three replicas), over HTTP.
//!
//! One cluster serves every test of this file but the failover test, which kills a master of a
//! cluster of its own. The shared tests take turns ([`SERIAL`]): some flush the cluster or count its
//! keys, and `SCAN` promises every key exactly once only while nobody else writes.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::cluster::http::{batch, gateway, results, run, run_at};
use common::cluster::{Cluster, on};
use common::{Events, TOKEN, gateway_with};
use redge_gateway::{AppState, Config};
use serde_json::{Value, json};

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
}

#[tokio::test]
async fn commands_reach_keys_on_every_master() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let keys = cluster.key_per_master("every");
    assert_eq!(keys.len(), 3);
    for (key, master) in &keys {
        let value = format!("on {master}");
        assert_eq!(
            run(&gw, json!(["SET", key, value])).await,
            (200, json!({"result": "OK"}))
        );
        assert_eq!(
            run(&gw, json!(["GET", key])).await.1,
            json!({ "result": value })
        );
        // It is stored on the master that serves its slot.
        assert_eq!(on(*master, &["GET", key]).trim(), value);
    }
    // Multi-key commands across slots are split by the client library and put back together.
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let mut mget = vec!["MGET"];
    mget.extend(&names);
    let values: Vec<String> = keys.iter().map(|(_, m)| format!("on {m}")).collect();
    assert_eq!(run(&gw, json!(mget)).await.1, json!({ "result": values }));
    let mut del = vec!["DEL"];
    del.extend(&names);
    assert_eq!(run(&gw, json!(del)).await.1, json!({"result": 3}));
}

#[tokio::test]
async fn keyless_commands_have_a_cluster_meaning() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    assert_eq!(run(&gw, json!(["PING"])).await.1, json!({"result": "PONG"}));
    assert_eq!(
        run(&gw, json!(["ECHO", "hi"])).await.1,
        json!({"result": "hi"})
    );
    let (status, time) = run(&gw, json!(["TIME"])).await;
    assert_eq!(status, 200);
    assert_eq!(time["result"].as_array().map(Vec::len), Some(2));
    // INFO: one entry per master, its address then its text.
    let (status, info) = run(&gw, json!(["INFO", "server"])).await;
    assert_eq!(status, 200);
    let entries = info["result"].as_array().expect("INFO entries");
    assert_eq!(entries.len(), 2 * cluster.masters().len(), "{info}");
    assert!(entries[1].as_str().unwrap().contains("redis_version"));
}

#[tokio::test]
async fn a_pipeline_spanning_every_master_is_answered_in_request_order() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let keys = cluster.key_per_master("span");
    let (a, b, c) = (&keys[0].0, &keys[1].0, &keys[2].0);
    let (status, answer) = batch(
        &gw,
        "pipeline",
        json!([
            ["SET", a, "1"],
            ["SET", b, "2"],
            ["SET", c, "3"],
            ["GET", c],
            ["GET", a],
            ["PING"],
            ["GET", b],
            ["INCR", a],
            ["MGET", a, b, c],
            ["HSET", b, "f", "v"],
            ["GET", b],
            ["DEL", a, b, c],
        ]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let results = results(&answer);
    assert_eq!(
        results[..9],
        [
            json!("OK"),
            json!("OK"),
            json!("OK"),
            json!("3"),
            json!("1"),
            json!("PONG"),
            json!("2"),
            json!(2),
            json!(["2", "2", "3"]),
        ]
    );
    assert!(
        error_of(&answer[9]).starts_with("WRONGTYPE"),
        "an error entry stays in its place: {answer}"
    );
    assert_eq!(results[10..], [json!("2"), json!(3)]);
}

#[tokio::test]
async fn commands_on_one_slot_keep_their_order_in_a_pipeline() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let others = cluster.key_per_master("order-other");
    let mut commands = vec![json!(["DEL", "{order}list", "{order}n"])];
    for i in 0..60 {
        commands.push(json!(["RPUSH", "{order}list", i.to_string()]));
        commands.push(json!(["SET", others[i % others.len()].0, i.to_string()]));
        commands.push(json!(["INCR", "{order}n"]));
    }
    commands.push(json!(["LRANGE", "{order}list", "0", "-1"]));
    let (status, answer) = batch(&gw, "pipeline", json!(commands)).await;
    assert_eq!(status, 200);
    let results = results(&answer);
    for i in 0..60 {
        assert_eq!(results[1 + 3 * i], json!(i + 1), "RPUSH {i}");
        assert_eq!(results[2 + 3 * i], json!("OK"));
        assert_eq!(results[3 + 3 * i], json!(i + 1), "INCR {i}");
    }
    let expected: Vec<String> = (0..60).map(|i| i.to_string()).collect();
    assert_eq!(results[181], json!(expected));
}

#[tokio::test]
async fn a_pipeline_follows_its_slot_to_a_new_master_after_resharding() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let (a, b) = ("{moving}a", "{moving}b");
    let (status, _) = batch(
        &gw,
        "pipeline",
        json!([["SET", a, "1"], ["SET", b, "kept"]]),
    )
    .await;
    assert_eq!(status, 200);
    // The gateway's connection has learnt where the slot is; now it moves.
    let slot = cluster.keyslots(&[a.to_owned()])[0];
    let from = cluster.master_of(slot);
    let to = cluster.masters().into_iter().find(|&m| m != from).unwrap();
    cluster.move_slot(slot, to);
    assert_eq!(
        on(to, &["GET", b]).trim(),
        "kept",
        "the keys moved with the slot"
    );

    for round in 0..2 {
        let (status, answer) = batch(
            &gw,
            "pipeline",
            json!([["INCR", a], ["GET", b], ["GET", a]]),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let expected = 2 + round;
        assert_eq!(
            results(&answer),
            [json!(expected), json!("kept"), json!(expected.to_string())],
            "round {round}: {answer}"
        );
    }
    assert_eq!(on(to, &["GET", a]).trim(), "3");
}

#[tokio::test]
async fn a_transaction_and_a_script_with_a_hash_tag_run_on_their_slot() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let (status, answer) = batch(
        &gw,
        "multi-exec",
        json!([
            ["SET", "{user7}:visits", "1"],
            ["INCR", "{user7}:visits"],
            ["SET", "{user7}:name", "ada"],
            ["MGET", "{user7}:visits", "{user7}:name"],
        ]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        results(&answer),
        [json!("OK"), json!(2), json!("OK"), json!(["2", "ada"]),]
    );
    let script = "redis.call('SET', KEYS[2], ARGV[1]); \
                  return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}";
    let (status, body) = run(
        &gw,
        json!(["EVAL", script, "2", "{user7}:visits", "{user7}:note", "hi"]),
    )
    .await;
    assert_eq!((status, body), (200, json!({"result": ["2", "hi"]})));
    // A keyless script runs too (on the master of slot 0).
    assert_eq!(
        run(&gw, json!(["EVAL", "return 'x'", "0"])).await,
        (200, json!({"result": "x"}))
    );
}

#[tokio::test]
async fn scripts_and_transactions_across_slots_are_refused_before_anything_runs() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let keys = cluster.key_per_master("cross");
    let (a, b) = (&keys[0].0, &keys[1].0);
    run(&gw, json!(["DEL", a, b])).await;

    let (status, body) = batch(&gw, "multi-exec", json!([["SET", a, "1"], ["SET", b, "1"]])).await;
    assert_eq!(status, 400);
    let message = error_of(&body);
    assert!(message.starts_with("CROSSSLOT "), "{message}");
    assert!(
        message.contains(&format!("'{a}'")) && message.contains(&format!("'{b}'")),
        "{message}"
    );
    assert!(
        message.contains("different slots") && message.contains("hash tag"),
        "{message}"
    );

    let (status, body) = run(&gw, json!(["EVAL", "return 1", "2", a, b])).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).starts_with("CROSSSLOT "), "{body}");

    // In a pipeline, the whole request is refused: its other commands do not run either.
    let (status, body) = batch(
        &gw,
        "pipeline",
        json!([["SET", a, "x"], ["EVAL", "return 1", "2", a, b]]),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_of(&body).starts_with("CROSSSLOT "), "{body}");
    assert_eq!(
        run(&gw, json!(["EXISTS", a, b])).await.1,
        json!({"result": 0})
    );
}

#[tokio::test]
async fn script_load_reaches_every_master_and_noscript_is_retried_as_eval() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let keys = cluster.key_per_master("noscript");
    let script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    let flush_everywhere = || {
        for node in &cluster.nodes {
            on(node.port, &["SCRIPT", "FLUSH"]);
        }
    };
    let exists_on = |port: u16, sha: &str| on(port, &["SCRIPT", "EXISTS", sha]).trim() == "1";

    // SCRIPT LOAD through the gateway: every master has it.
    flush_everywhere();
    let (status, body) = run(&gw, json!(["SCRIPT", "LOAD", script])).await;
    assert_eq!(status, 200);
    let sha = body["result"].as_str().unwrap().to_owned();
    for (_, master) in &keys {
        assert!(exists_on(*master, &sha), "master {master} lacks the script");
    }

    // Run through one master only (EVAL caches it there), then EVALSHA on another master's key: that
    // node answers NOSCRIPT, and the gateway runs the source it saw as EVAL there.
    flush_everywhere();
    let (first, other) = (&keys[0], &keys[1]);
    run(&gw, json!(["DEL", first.0, other.0])).await;
    assert_eq!(
        run(&gw, json!(["EVAL", script, "1", first.0, "5"])).await,
        (200, json!({"result": 5}))
    );
    assert!(exists_on(first.1, &sha));
    assert!(
        !exists_on(other.1, &sha),
        "the other master has not seen it yet"
    );
    assert_eq!(
        run(&gw, json!(["EVALSHA", sha, "1", other.0, "7"])).await,
        (200, json!({"result": 7}))
    );
    assert!(exists_on(other.1, &sha), "the retry cached it there");

    // Inside a pipeline and a transaction the known script goes as EVAL from the start.
    flush_everywhere();
    let (status, answer) = batch(
        &gw,
        "pipeline",
        json!([["EVALSHA", sha, "1", other.0, "1"], ["GET", other.0]]),
    )
    .await;
    assert_eq!(
        (status, results(&answer)),
        (200, vec![json!(8), json!("8")])
    );
    let (status, answer) = batch(
        &gw,
        "multi-exec",
        json!([["EVALSHA", sha, "1", first.0, "1"]]),
    )
    .await;
    assert_eq!((status, results(&answer)), (200, vec![json!(6)]));

    // A script the gateway never saw: Redis's NOSCRIPT reaches the client.
    let (status, body) = run(&gw, json!(["EVALSHA", "0".repeat(40), "1", first.0])).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).starts_with("NOSCRIPT"), "{body}");
}

#[tokio::test]
async fn a_script_past_the_deadline_is_stopped_on_the_master_that_runs_it() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let mut config = Config::cluster(&cluster.seeds(), TOKEN);
    config.deadline_ms = 300;
    let gw = gateway_with(config).await;
    // On the last master, so that a kill sent anywhere else (slot 0's master, any node) would not
    // stop it.
    let (key, master) = cluster.key_per_master("busy").pop().unwrap();
    let (status, body) = run(
        &gw,
        json!(["EVAL", "#!lua flags=no-writes\nwhile true do end", "1", key]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("killed"), "{body}");
    // The node serves again at once.
    assert_eq!(on(master, &["PING"]).trim(), "PONG");
    assert_eq!(run(&gw, json!(["GET", key])).await.0, 200);
    let scrape = common::scrape(&gw.url).await;
    assert_eq!(
        common::sample(&scrape, "redge_gateway_scripts_killed_total", &[]),
        1.0
    );
}

#[tokio::test]
async fn scan_visits_every_key_exactly_once_across_masters() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let expected: Vec<String> = (0..300).map(|i| format!("scan-{i:03}")).collect();
    let mut sets: Vec<Value> = expected.iter().map(|k| json!(["SET", k, "v"])).collect();
    sets.push(json!(["SET", "not-scanned", "v"]));
    assert_eq!(batch(&gw, "pipeline", json!(sets)).await.0, 200);

    let mut seen = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let (status, body) = run(
            &gw,
            json!(["SCAN", cursor, "MATCH", "scan-*", "COUNT", "40"]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        cursor = body["result"][0].as_str().unwrap().to_owned();
        seen.extend(
            body["result"][1]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned()),
        );
        if cursor == "0" {
            break;
        }
        cursors.push(cursor.parse::<u128>().expect("a decimal cursor"));
        assert!(cursors.len() < 1000, "the scan does not end");
    }
    seen.sort();
    assert_eq!(seen, expected, "every key exactly once");
    // The scan moved from master to master: the cursor names a slot of each of the later masters.
    let ranges = cluster.ranges();
    let masters_seen: std::collections::BTreeSet<u16> = cursors
        .iter()
        .map(|c| (c % 16384) as u16)
        .map(|slot| {
            ranges
                .iter()
                .find(|(f, l, _)| (*f..=*l).contains(&slot))
                .unwrap()
                .2
        })
        .collect();
    assert!(masters_seen.len() >= 2, "{cursors:?}");

    let (status, body) = run(&gw, json!(["SCAN", "not-a-cursor"])).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("invalid cursor"), "{body}");
}

#[tokio::test]
async fn dbsize_keys_and_flushall_cover_every_master() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    assert_eq!(
        run(&gw, json!(["FLUSHALL"])).await.1,
        json!({"result": "OK"})
    );
    let masters = cluster.masters();
    for master in &masters {
        assert_eq!(on(*master, &["DBSIZE"]).trim(), "0", "flushed on {master}");
    }
    let sets: Vec<Value> = (0..30)
        .map(|i| json!(["SET", format!("count-{i}"), i]))
        .collect();
    assert_eq!(batch(&gw, "pipeline", json!(sets)).await.0, 200);
    let per_master: Vec<u64> = masters
        .iter()
        .map(|m| on(*m, &["DBSIZE"]).trim().parse().unwrap())
        .collect();
    assert!(per_master.iter().all(|&n| n > 0), "{per_master:?}");
    assert_eq!(per_master.iter().sum::<u64>(), 30);
    assert_eq!(run(&gw, json!(["DBSIZE"])).await.1, json!({"result": 30}));
    let (_, keys) = run(&gw, json!(["KEYS", "count-*"])).await;
    assert_eq!(keys["result"].as_array().map(Vec::len), Some(30));
    // FLUSHDB means what FLUSHALL means: every master's keys go.
    assert_eq!(
        run(&gw, json!(["FLUSHDB"])).await.1,
        json!({"result": "OK"})
    );
    for master in &masters {
        assert_eq!(on(*master, &["DBSIZE"]).trim(), "0", "flushed on {master}");
    }
    assert_eq!(run(&gw, json!(["DBSIZE"])).await.1, json!({"result": 0}));
}

#[tokio::test]
async fn sse_subscribers_see_publishes_from_every_master() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let mut config = Config::cluster(&cluster.seeds(), TOKEN);
    config.heartbeat_ms = 100;
    let gw = gateway_with(config).await;
    let (_, _, mut channel) = Events::open(&format!("{}/subscribe/cluster-news", gw.url)).await;
    channel.until("data: subscribe,cluster-news,1\n\n").await;
    let (_, _, mut pattern) = Events::open(&format!("{}/psubscribe/cluster-*", gw.url)).await;
    pattern.until("data: psubscribe,cluster-*,1\n\n").await;
    // A publish on any node reaches both subscribers, whichever node each subscribed on.
    for node in &cluster.nodes {
        let message = format!("from {}", node.port);
        on(node.port, &["PUBLISH", "cluster-news", &message]);
        channel
            .until(&format!("data: message,cluster-news,{message}\n\n"))
            .await;
        pattern
            .until(&format!(
                "data: pmessage,cluster-*,cluster-news,{message}\n\n"
            ))
            .await;
    }
    let (status, _) = run(&gw, json!(["PUBLISH", "cluster-news", "via gateway"])).await;
    assert_eq!(status, 200);
    channel
        .until("data: message,cluster-news,via gateway\n\n")
        .await;
    pattern
        .until("data: pmessage,cluster-*,cluster-news,via gateway\n\n")
        .await;
}

#[tokio::test]
async fn readyz_and_metrics_report_the_cluster() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let ready = reqwest::get(format!("{}/readyz", gw.url)).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
    run(&gw, json!(["SET", "metered", "1"])).await;
    run(&gw, json!(["EVAL", "return 1", "2", "{m}a", "b"])).await;
    let scrape = common::scrape(&gw.url).await;
    let calls = common::sample(&scrape, "redge_gateway_redis_calls_total", &[]);
    assert!(calls >= 1.0, "{calls}");
}

#[tokio::test]
async fn the_binary_serves_a_cluster_from_its_environment_on_every_thread() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let seeds = cluster.seeds().join(",");
    // `spawn_binary` waits for /healthz to answer 200: every master answered PING.
    let (child, base) = common::spawn_binary(&[
        ("REDGE_GATEWAY_TOKENS", TOKEN),
        ("REDGE_REDIS_CLUSTER_NODES", &seeds),
        ("REDGE_GATEWAY_THREADS", "2"),
    ])
    .await;
    let keys = cluster.key_per_master("binary");
    // Concurrent requests, on connections the acceptor spreads over both threads.
    let requests = (0..20).map(|i| {
        let (base, key) = (base.clone(), keys[i % keys.len()].0.clone());
        async move { run_at(&base, json!(["SET", key, i])).await.0 }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let (status, body) = run_at(&base, json!(["EVAL", "return #KEYS", "1", keys[0].0])).await;
    assert_eq!((status, body), (200, json!({"result": 1})));
    common::sigterm(&child);
    let logs = common::logs_of(child);
    assert!(logs.contains("listening"), "{logs}");
}

#[tokio::test]
async fn a_cluster_that_is_down_gets_503_with_the_reason() {
    // Nothing listens on these ports: the gateway starts all the same, and answers each request.
    let seeds = vec![
        "redis://127.0.0.1:1".to_owned(),
        "redis://127.0.0.1:2".to_owned(),
    ];
    let gw = gateway_with(Config::cluster(&seeds, TOKEN)).await;
    let (status, body) = run(&gw, json!(["GET", "k"])).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_of(&body).starts_with("ERR Redis is unavailable"),
        "{body}"
    );
    let (status, body) = batch(&gw, "pipeline", json!([["SET", "a", 1], ["GET", "b"]])).await;
    assert_eq!(status, 503, "{body}");
    let (status, _) = batch(&gw, "multi-exec", json!([["SET", "{t}a", 1]])).await;
    assert_eq!(status, 503);
    let ready = reqwest::get(format!("{}/readyz", gw.url)).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "unready");
}

#[tokio::test]
async fn invalid_seed_nodes_are_named_by_position_never_by_value() {
    let seeds = vec![
        "redis://:hunter2@127.0.0.1:7000".to_owned(),
        "http://:hunter2@127.0.0.1:7001".to_owned(),
    ];
    let error = AppState::from_config(&Config::cluster(&seeds, TOKEN))
        .err()
        .expect("an invalid seed is refused");
    assert!(
        error.contains("entry 2 of --redis-cluster-nodes"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_and_commands_work_again() {
    let mut cluster = tokio::task::block_in_place(Cluster::start);
    let gw = gateway(&cluster).await;
    // A second gateway with a short deadline, whose connection for stopping scripts is opened before
    // the failure (by a script that ends in time).
    let mut config = Config::cluster(&cluster.seeds(), TOKEN);
    config.deadline_ms = 300;
    let stopper = gateway_with(config).await;
    let keys = cluster.key_per_master("failover");
    for (key, _) in &keys {
        assert_eq!(run(&gw, json!(["SET", key, "before"])).await.0, 200);
    }
    let (victim_key, victim) = keys[0].clone();
    // Scripts that overlap, so that several connections for transactions and scripts are open and
    // idle when the master dies: each holds a socket to it.
    let slow_incr = "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] \
                     repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 20000 \
                     return redis.call('INCR', KEYS[1])";
    // On the victim's slot: its hash tag is the whole of `victim_key`.
    let counter = format!("{{{victim_key}}}:n");
    let overlapping = (0..8).map(|_| run(&gw, json!(["EVAL", slow_incr, 1, counter])));
    for (status, body) in futures_util::future::join_all(overlapping).await {
        assert_eq!(status, 200, "{body}");
    }
    let quick = json!(["EVAL", "#!lua flags=no-writes\nreturn 1", 1, counter]);
    assert_eq!(run(&stopper, quick).await, (200, json!({"result": 1})));
    // Its replica has the values (replication is asynchronous: wait for it, as a test must).
    let replica = cluster
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|&p| on(p, &["INFO", "replication"]).contains(&format!("master_port:{victim}")))
        .expect("the master has a replica");
    tokio::task::block_in_place(|| cluster.caught_up(victim, replica));

    let killed = Instant::now();
    cluster.kill(victim);
    // Until a replica takes over, some slots have no master: not ready, with the reason.
    let unready = loop {
        let response = reqwest::get(format!("{}/readyz", gw.url)).await.unwrap();
        if response.status() == 503 {
            break response.json::<Value>().await.unwrap();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "/readyz never noticed the dead master"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(unready["status"], "unready", "{unready}");
    let mut failures = 0;
    let recovered = loop {
        let (status, body) = run(&gw, json!(["SET", victim_key, "after"])).await;
        if status == 200 {
            break killed.elapsed();
        }
        failures += 1;
        // Unavailable, never the redirect itself (which a client would read as its own error).
        assert_eq!(status, 503, "during the failover: {body}");
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "commands still fail a minute after the master died: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "failover: writes to the killed master's slots succeeded again after {:.2} s ({failures} \
         failed attempts)",
        recovered.as_secs_f64()
    );
    assert_eq!(
        cluster.master_of(cluster.keyslots(std::slice::from_ref(&victim_key))[0]),
        replica
    );
    assert_eq!(
        run(&gw, json!(["GET", victim_key])).await.1,
        json!({"result": "after"})
    );
    // Once one request went through, none fails for a socket to the dead master kept by another
    // connection (a thread's shared one, an idle one for scripts): a write sent on such a socket
    // would be answered 503, since its outcome could not be told from a lost answer.
    for n in 0..20 {
        let (status, body) = run(
            &gw,
            json!(["EVAL", "return redis.call('INCR', KEYS[1])", 1, counter]),
        )
        .await;
        assert_eq!(status, 200, "script {n} after the failover: {body}");
        let (status, body) = run(&gw, json!(["INCR", counter])).await;
        assert_eq!(status, 200, "command {n} after the failover: {body}");
    }
    assert_eq!(
        run(&gw, json!(["GET", counter])).await.1,
        json!({"result": "48"}),
        "8 before the failover, 40 after: each ran once"
    );
    // The other masters' keys, and a pipeline across every master, work as before.
    let mut pipeline: Vec<Value> = keys.iter().map(|(k, _)| json!(["GET", k])).collect();
    pipeline.push(json!(["DBSIZE"]));
    let (status, answer) = batch(&gw, "pipeline", json!(pipeline)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        results(&answer)[..3],
        [json!("after"), json!("before"), json!("before")]
    );
    tokio::task::block_in_place(|| cluster.wait_ok());
    let ready = reqwest::get(format!("{}/readyz", gw.url)).await.unwrap();
    assert_eq!(ready.status(), 200);
    // A script past its deadline on the promoted replica is stopped there: the gateway's connection
    // for stopping scripts follows the failover like the others (it would still know only the dead
    // master). The script ends by itself after 3 s, so a failed stop cannot wedge the node. This
    // gateway made no request during the failover, so its first script may find the connection it
    // kept closed by the dead node: 503, as documented (it cannot tell the script was never sent).
    let warm = json!(["EVAL", "#!lua flags=no-writes\nreturn 2", 1, counter]);
    let (status, body) = run(&stopper, warm.clone()).await;
    if status != 200 {
        assert_eq!(status, 503, "{body}");
        assert_eq!(run(&stopper, warm).await, (200, json!({"result": 2})));
    }
    let busy = "#!lua flags=no-writes\nlocal t = redis.call('TIME') local start = t[1] \
                repeat t = redis.call('TIME') until t[1] - start >= 3 return 0";
    let (status, body) = run(&stopper, json!(["EVAL", busy, 1, counter])).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("killed"), "{body}");
    assert_eq!(on(replica, &["PING"]).trim(), "PONG");
}

//! On a real Redis Cluster, over HTTP: the gateway sends a command again only when Redis did not run
//! it (`MOVED`, `ASK`), and never a write whose connection broke after it was sent.
//!
//! How a write's answer is lost here, deterministically: the master is told to close any client
//! whose pending output passes 32 KiB (`client-output-buffer-limit normal`). A command that writes
//! and answers with a larger reply then runs, is replicated, and its connection is closed before
//! the answer leaves: exactly what a connection cut between the write and its answer looks like.
//! A resend would find the write already applied.
//!
//! The tests take turns ([`SERIAL`]): they change a master's limits and move slots.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::cluster::http::{batch, gateway, results, run};
use common::cluster::{Cluster, on, wait_until};
use common::{sample, scrape};
use serde_json::{Value, json};

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

/// A key's value on the node at `port`, read there directly.
fn value_on(port: u16, key: &str) -> String {
    on(port, &["GET", key]).trim().to_owned()
}

/// Asserts a 503 that says Redis is unavailable (the single-node wording for a broken connection).
fn assert_unavailable((status, body): (u16, Value), what: &str) {
    assert_eq!(status, 503, "{what}: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("ERR Redis is unavailable"),
        "{what}: {body}"
    );
}

/// Size of the replies that pass the output limit set by [`OutputLimit`].
const LARGE: &str = "1048576";

/// While alive, the master on `port` closes a client whose pending output passes 32 KiB.
struct OutputLimit(u16);

impl OutputLimit {
    fn set(port: u16) -> OutputLimit {
        let answer = on(
            port,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 32768 32768 0",
            ],
        );
        assert_eq!(answer.trim(), "OK", "{answer}");
        OutputLimit(port)
    }
}

impl Drop for OutputLimit {
    fn drop(&mut self) {
        on(
            self.0,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 0 0 0",
            ],
        );
    }
}

/// Stores a value of [`LARGE`] bytes under `key` on the master on `port`.
fn store_large(port: u16, key: &str) {
    let script = format!("redis.call('SET', KEYS[1], string.rep('x', {LARGE})) return 1");
    assert_eq!(on(port, &["EVAL", &script, "1", key]).trim(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_is_lost_runs_once_and_is_answered_503() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let (counter, large) = ("{lost}:counter", "{lost}:large");
    assert_eq!(run(&gw, json!(["SET", counter, "0"])).await.0, 200);
    let master = cluster.master_of(cluster.keyslots(&[counter.to_owned()])[0]);
    store_large(master, large);
    let limit = OutputLimit::set(master);

    // A pipeline part: the increment runs, the large read closes the connection.
    let pipeline = batch(&gw, "pipeline", json!([["INCR", counter], ["GET", large]])).await;
    assert_unavailable(pipeline, "pipeline");
    assert_eq!(
        value_on(master, counter),
        "1",
        "the pipeline's INCR ran once"
    );

    // A transaction, on a connection of its own.
    let transaction = batch(
        &gw,
        "multi-exec",
        json!([["INCR", counter], ["GET", large]]),
    )
    .await;
    assert_unavailable(transaction, "transaction");
    assert_eq!(value_on(master, counter), "2", "the transaction ran once");

    // A script.
    let script = format!("redis.call('INCR', KEYS[1]) return string.rep('y', {LARGE})");
    assert_unavailable(
        run(&gw, json!(["EVAL", script, "1", counter])).await,
        "script",
    );
    assert_eq!(value_on(master, counter), "3", "the script ran once");

    // A single command: `SET ... GET` answers the old (large) value. Sent again, it would answer
    // the new small one with 200, after a first run the client was never told about.
    assert_unavailable(
        run(&gw, json!(["SET", large, "small", "GET"])).await,
        "single command",
    );
    assert_eq!(value_on(master, large), "small", "the SET ran");
    drop(limit);

    // The gateway reconnected: the same key works again, and nothing ran in the meantime.
    assert_eq!(
        run(&gw, json!(["INCR", counter])).await,
        (200, json!({"result": 4}))
    );
    // The replica received every write once too. Replication is asynchronous: wait until the
    // replica has processed the master's whole stream as it is now, then read.
    let replica = cluster
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|&p| on(p, &["INFO", "replication"]).contains(&format!("master_port:{master}")))
        .expect("the master has a replica");
    let offset = |port: u16, field: &str| {
        on(port, &["INFO", "replication"])
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let written = offset(master, "master_repl_offset:");
    wait_until(Duration::from_secs(10), "the replica to catch up", || {
        offset(replica, "slave_repl_offset:") >= written
    });
    assert_eq!(read_on_replica(replica, counter), "4");
}

/// A key's value on the replica at `port` (`READONLY` first, on the same connection).
fn read_on_replica(port: u16, key: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "READONLY\nGET {key}").expect("redis-cli reads its input");
    drop(stdin);
    let output = child.wait_with_output().expect("redis-cli ends");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines().map(str::trim);
    assert_eq!(lines.next(), Some("OK"), "READONLY on the replica: {text}");
    lines.next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_connection_breaks_is_sent_again_and_a_write_is_not() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let key = "{broken}:visits";
    assert_eq!(run(&gw, json!(["SET", key, "7"])).await.0, 200);
    let master = cluster.master_of(cluster.keyslots(&[key.to_owned()])[0]);

    // Every connection of the gateway to that master is closed; the next command finds out.
    let killed = on(master, &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(killed.trim().parse::<u32>().unwrap_or(0) >= 1, "{killed}");
    assert_eq!(
        run(&gw, json!(["GET", key])).await,
        (200, json!({"result": "7"})),
        "a read is sent again on a new connection"
    );

    // A write on a broken connection may or may not have reached Redis: it is not sent again. The
    // read's broken connection started a new failure epoch, so a thread whose shared connection is
    // older opens a new one first (and the write then runs on it); one whose connection is of this
    // epoch sends on the killed socket and answers 503. Either way the write runs at most once.
    let killed = on(master, &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(killed.trim().parse::<u32>().unwrap_or(0) >= 1, "{killed}");
    let (status, body) = run(&gw, json!(["INCR", key])).await;
    let expected = match status {
        503 => {
            assert_unavailable((status, body), "a write on a closed connection");
            7
        }
        200 => {
            assert_eq!(body, json!({"result": 8}), "run once, on a new connection");
            8
        }
        other => panic!("a write on a closed connection answered {other}: {body}"),
    };
    assert_eq!(
        value_on(master, key),
        expected.to_string(),
        "the write ran at most once"
    );
    assert_eq!(
        run(&gw, json!(["INCR", key])).await,
        (200, json!({"result": expected + 1}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_is_followed_once_by_commands_pipelines_scripts_and_transactions() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let key = "{moved}:n";
    assert_eq!(run(&gw, json!(["SET", key, "0"])).await.0, 200);
    let slot = cluster.keyslots(&[key.to_owned()])[0];
    let from = cluster.master_of(slot);
    let to = cluster.masters().into_iter().find(|&m| m != from).unwrap();

    // Each kind of request runs once on the new master. One that reaches the old master first (a
    // connection whose slot map is older than the move) is answered MOVED and sent again once;
    // connections opened after a redirect learn the new map when they open and go straight there.
    let script = "return redis.call('INCR', KEYS[1])";
    let mut expected = 0;
    let mut resent = 0.0;
    for kind in ["command", "pipeline", "script", "transaction"] {
        let to_now = if cluster.master_of(slot) == from {
            to
        } else {
            from
        };
        cluster.move_slot(slot, to_now);
        expected += 1;
        let answer = match kind {
            "command" => run(&gw, json!(["INCR", key])).await,
            "pipeline" => {
                let (status, body) =
                    batch(&gw, "pipeline", json!([["INCR", key], ["GET", key]])).await;
                (status, json!({"result": results(&body)[0]}))
            }
            "script" => run(&gw, json!(["EVAL", script, "1", key])).await,
            _ => {
                let (status, body) = batch(&gw, "multi-exec", json!([["INCR", key]])).await;
                (status, json!({"result": results(&body)[0]}))
            }
        };
        assert_eq!(answer, (200, json!({"result": expected})), "{kind}");
        assert_eq!(value_on(to_now, key), expected.to_string(), "{kind}");
        let now = resends(&gw.url).await;
        assert_eq!(&now[1..], [0.0, 0.0], "{kind}: only MOVED was followed");
        let this = now[0] - resent;
        // The command's connection is the one the first SET used: it had the old map.
        let least = if kind == "command" { 1.0 } else { 0.0 };
        assert!(
            (least..=1.0).contains(&this),
            "{kind}: sent again {this} times"
        );
        resent = now[0];
    }
    assert_gave_up_none(&gw.url).await;
}

/// The gateway's counts of repeated sends by reason: moved, ask, wait.
async fn resends(base: &str) -> [f64; 3] {
    let metrics = scrape(base).await;
    ["moved", "ask", "wait"].map(|reason| {
        sample(
            &metrics,
            "redge_gateway_cluster_resends_total",
            &[("reason", reason)],
        )
    })
}

/// No request was answered 503 for a cluster that kept refusing it.
async fn assert_gave_up_none(base: &str) {
    let metrics = scrape(base).await;
    assert_eq!(
        sample(&metrics, "redge_gateway_cluster_gave_up_total", &[]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_migration_only_the_commands_redis_redirected_are_sent_again() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    let gw = gateway(cluster).await;
    let (moved, stays) = ("{migrating}:moved", "{migrating}:stays");
    let (status, _) = batch(
        &gw,
        "pipeline",
        json!([["SET", moved, "10"], ["SET", stays, "20"]]),
    )
    .await;
    assert_eq!(status, 200);
    let slot = cluster.keyslots(&[moved.to_owned()])[0];
    let to = cluster
        .masters()
        .into_iter()
        .find(|&m| m != cluster.master_of(slot))
        .unwrap();
    let from = cluster.begin_move(slot, to);
    cluster.migrate(from, to, &[moved]);

    // The old master runs the increment of the key it still has and answers ASK for the other:
    // only that one is sent again (after ASKING) to the new master.
    let (status, answer) = batch(
        &gw,
        "pipeline",
        json!([["INCR", moved], ["INCR", stays], ["GET", moved]]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        results(&answer),
        [json!(11), json!(21), json!("11")],
        "{answer}"
    );
    // A command, a script and a transaction on the moved key follow ASK the same way.
    assert_eq!(
        run(&gw, json!(["INCR", moved])).await,
        (200, json!({"result": 12}))
    );
    let script = "return redis.call('INCR', KEYS[1])";
    assert_eq!(
        run(&gw, json!(["EVAL", script, "1", moved])).await,
        (200, json!({"result": 13}))
    );
    let (status, answer) = batch(&gw, "multi-exec", json!([["INCR", moved]])).await;
    assert_eq!((status, results(&answer)), (200, vec![json!(14)]));

    // Each key is where it was, with each write applied once: nothing ran twice, and no copy of
    // the key still on the old master was written on the new one.
    assert_eq!(value_on(from, stays), "21");
    assert_eq!(
        on(to, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]).trim(),
        "1"
    );
    cluster.migrate(from, to, &[stays]);
    cluster.end_move(slot, to);
    assert_eq!(value_on(to, moved), "14");
    assert_eq!(value_on(to, stays), "21");
    // The pipeline, the command, the script and the transaction: each sent again once, after ASK.
    assert_eq!(resends(&gw.url).await, [0.0, 4.0, 0.0]);
    assert_gave_up_none(&gw.url).await;
}

//! Test harness: a real Redis Cluster of three masters and three replicas, each a redis-server on a
//! port of its own in a temporary directory, joined with `redis-cli --cluster create`.
//!
//! Each node runs under a small shell watchdog that stops it when the test process is gone, so a
//! cluster kept in a `static` for a whole test binary (never dropped) leaves nothing running behind.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the cluster waits before it calls a silent node failed: short, so that a failover takes
/// a couple of seconds.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// One node: its port and its watchdog process.
pub struct ClusterNode {
    pub port: u16,
    watchdog: Option<Child>,
}

/// A running cluster; stopped when dropped.
pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
    dir: tempfile::TempDir,
}

/// A port `p` such that `p` and its cluster bus port `p + 10000` are both free (the bus port must
/// stay below 65536, so `p` is taken from 20000-29999).
fn cluster_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + super::free_port() % 10_000;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
    panic!("no free pair of ports for a cluster node");
}

/// Runs redis-cli with `args` and answers what it printed.
pub fn cli(args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli is not installed: apt-get install redis-server");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The cluster id of the node at `port`.
fn node_id(port: u16) -> String {
    on(port, &["CLUSTER", "MYID"]).trim().to_owned()
}

/// Runs a command on the node at `port` with redis-cli.
pub fn on(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut all = vec!["-p", port.as_str()];
    all.extend_from_slice(args);
    cli(&all)
}

impl Cluster {
    /// Six nodes, three masters with one replica each, every slot covered, every node reporting
    /// `cluster_state:ok`.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..6 {
            let port = cluster_port();
            let watchdog = cluster.spawn(port);
            cluster.nodes.push(ClusterNode {
                port,
                watchdog: Some(watchdog),
            });
        }
        for node in &cluster.nodes {
            wait_until(Duration::from_secs(10), "a cluster node to answer", || {
                on(node.port, &["PING"]).trim() == "PONG"
            });
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let created = cli(&args);
        assert!(
            created.contains("[OK] All 16384 slots covered"),
            "redis-cli --cluster create failed:\n{created}"
        );
        cluster.wait_ok();
        // Every replica has finished its first sync, so that a failover can promote it.
        for node in &cluster.nodes {
            wait_until(Duration::from_secs(20), "replicas to sync", || {
                let info = on(node.port, &["INFO", "replication"]);
                info.contains("role:master") || info.contains("master_link_status:up")
            });
        }
        cluster
    }

    /// Starts redis-server on `port` under a watchdog shell that stops it once this process exits.
    fn spawn(&self, port: u16) -> Child {
        let node_dir = self.dir.path().join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("node directory");
        let script = r#"redis-server "$@" & r=$!
while kill -0 "$WATCHED" 2>/dev/null && kill -0 "$r" 2>/dev/null; do sleep 0.5; done
kill -9 "$r" 2>/dev/null
wait "$r" 2>/dev/null"#;
        Command::new("sh")
            .args(["-c", script, "sh"])
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(node_dir.join("nodes.conf"))
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // A replica may be promoted however long ago it last heard from its master.
            .args(["--cluster-replica-validity-factor", "0"])
            // A script past the gateway's deadline can be stopped after 100 ms rather than 5 s
            // (Redis reads other clients' commands, the kill among them, only past this threshold).
            .args(["--busy-reply-threshold", "100"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&node_dir)
            .env("WATCHED", std::process::id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh and redis-server are needed")
    }

    /// The seed URLs, one per node.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Nodes still running.
    fn alive(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.watchdog.is_some())
    }

    /// The ports of the masters that are up, in the order of the slots they serve.
    pub fn masters(&self) -> Vec<u16> {
        let mut masters = Vec::new();
        for node in self.alive() {
            let info = on(node.port, &["INFO", "replication"]);
            if info.contains("role:master") {
                masters.push(node.port);
            }
        }
        let lowest = |port: u16| {
            let nodes = on(port, &["CLUSTER", "NODES"]);
            nodes
                .lines()
                .find(|l| l.contains("myself"))
                .and_then(|l| l.split_whitespace().nth(8))
                .and_then(|range| range.split('-').next())
                .and_then(|first| first.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        };
        masters.sort_by_key(|&p| lowest(p));
        masters
    }

    /// `(first, last, master port)` of every slot range, as a running node reports them.
    pub fn ranges(&self) -> Vec<(u16, u16, u16)> {
        let node = self.alive().next().expect("a node is up");
        let slots = on(node.port, &["CLUSTER", "SLOTS"]);
        // redis-cli prints each range as: first, last, then the master's ip, port, id, then the
        // replicas. Ports here are above 16383, so a port is never taken for a slot.
        let lines: Vec<&str> = slots.lines().map(str::trim).collect();
        let mut ranges = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let parse = |at: usize| lines.get(at).and_then(|l| l.parse::<u16>().ok());
            if let (Ok(first), Some(last), Some(port)) =
                (line.parse::<u16>(), parse(i + 1), parse(i + 3))
                && first <= last
                && last < 16384
                && port >= 16384
            {
                ranges.push((first, last, port));
            }
        }
        ranges
    }

    /// The port of the master that serves `slot`.
    pub fn master_of(&self, slot: u16) -> u16 {
        self.ranges()
            .into_iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, port)| port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// The slot of each key, as the cluster computes it (`CLUSTER KEYSLOT`, in one redis-cli call).
    pub fn keyslots(&self, keys: &[String]) -> Vec<u16> {
        use std::io::Write as _;
        let node = self.alive().next().expect("a node is up");
        let mut child = Command::new("redis-cli")
            .args(["-p", &node.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        let mut stdin = child.stdin.take().expect("stdin");
        for key in keys {
            writeln!(stdin, "CLUSTER KEYSLOT \"{key}\"").expect("write to redis-cli");
        }
        drop(stdin);
        let output = child.wait_with_output().expect("redis-cli output");
        let slots: Vec<u16> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| l.trim().parse().expect("a slot number"))
            .collect();
        assert_eq!(slots.len(), keys.len());
        slots
    }

    /// For each master (in slot order), a key `<prefix>-<n>` that it serves.
    pub fn key_per_master(&self, prefix: &str) -> Vec<(String, u16)> {
        let candidates: Vec<String> = (0..200).map(|n| format!("{prefix}-{n}")).collect();
        let slots = self.keyslots(&candidates);
        let ranges = self.ranges();
        let owner = |slot: u16| {
            ranges
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&slot))
                .map(|(_, _, port)| *port)
        };
        self.masters()
            .into_iter()
            .map(|master| {
                let at = slots
                    .iter()
                    .position(|&s| owner(s) == Some(master))
                    .expect("some key lands on every master");
                (candidates[at].clone(), master)
            })
            .collect()
    }

    /// Moves `slot` and its keys to the master on `to`, as a resharding does: the target imports, the
    /// source migrates, the keys are `MIGRATE`d, then every master is told the slot's new owner.
    pub fn move_slot(&self, slot: u16, to: u16) {
        let from = self.begin_move(slot, to);
        loop {
            let keys = on(
                from,
                &["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "100"],
            );
            let keys: Vec<&str> = keys
                .lines()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect();
            if keys.is_empty() {
                break;
            }
            self.migrate(from, to, &keys);
        }
        self.end_move(slot, to);
    }

    /// Starts moving `slot` to the master on `to` (importing there, migrating on its master, which
    /// it answers); no key has moved yet. Commands on a key already moved are then answered `ASK`.
    pub fn begin_move(&self, slot: u16, to: u16) -> u16 {
        let from = self.master_of(slot);
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let slot = slot.to_string();
        on(
            to,
            &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &node_id(from)],
        );
        on(
            from,
            &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &node_id(to)],
        );
        from
    }

    /// Moves `keys` from the master on `from` to the one on `to` (during a move of their slot).
    pub fn migrate(&self, from: u16, to: u16, keys: &[&str]) {
        let to_port = to.to_string();
        let mut migrate = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
        migrate.extend(keys);
        let answer = on(from, &migrate);
        assert!(answer.contains("OK"), "MIGRATE failed: {answer}");
    }

    /// Ends a move: every master is told that `to` serves `slot`.
    pub fn end_move(&self, slot: u16, to: u16) {
        let to_id = node_id(to);
        let slot_text = slot.to_string();
        for master in self.masters() {
            on(master, &["CLUSTER", "SETSLOT", &slot_text, "NODE", &to_id]);
        }
        wait_until(Duration::from_secs(10), "the new owner to be known", || {
            self.alive().all(|node| {
                on(node.port, &["CLUSTER", "COUNTKEYSINSLOT", &slot_text])
                    .trim()
                    .parse::<u64>()
                    .is_ok()
            }) && self.master_of(slot) == to
        });
    }

    /// Kills the node on `port` (SIGKILL: no goodbye to the other nodes). A node busy with a script
    /// answers nothing but the few commands Redis allows meanwhile: it is shut down without saving.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        match on(port, &["INFO", "server"])
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .map(|p| p.trim().to_owned())
        {
            Some(pid) => {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
            None => {
                on(port, &["SHUTDOWN", "NOSAVE"]);
            }
        }
        if let Some(mut watchdog) = node.watchdog.take() {
            let _ = watchdog.wait();
        }
    }

    /// Waits until the replica on `replica` has every write its master on `master` has made so far.
    /// (`WAIT` would not do from a fresh connection: it waits for that connection's own writes.)
    pub fn caught_up(&self, master: u16, replica: u16) {
        let offset = |port: u16| -> u64 {
            on(port, &["INFO", "replication"])
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let written = offset(master);
        wait_until(Duration::from_secs(10), "the replica to catch up", || {
            offset(replica) >= written
        });
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub fn wait_ok(&self) {
        for node in self.alive() {
            wait_until(Duration::from_secs(30), "cluster_state:ok", || {
                on(node.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ports: Vec<u16> = self.alive().map(|n| n.port).collect();
        for port in ports {
            self.kill(port);
        }
    }
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Over HTTP, with plain JSON replies: what the cluster suites send through the gateway.
pub mod http {
    use serde_json::Value;

    use super::super::{Gateway, TOKEN, gateway_with, post};
    use super::Cluster;

    /// A gateway in cluster mode in front of `cluster`.
    pub async fn gateway(cluster: &Cluster) -> Gateway {
        gateway_with(redge_gateway::Config::cluster(&cluster.seeds(), TOKEN)).await
    }

    /// One command: status and body.
    pub async fn run(gw: &Gateway, args: Value) -> (u16, Value) {
        run_at(&gw.url, args).await
    }

    /// [`run`] on the gateway at `base`.
    pub async fn run_at(base: &str, args: Value) -> (u16, Value) {
        let answer = post(&format!("{base}/"), Some(TOKEN), false, args.to_string()).await;
        (answer.status, answer.json)
    }

    /// A batch on `/pipeline` or `/multi-exec`.
    pub async fn batch(gw: &Gateway, route: &str, commands: Value) -> (u16, Value) {
        let url = format!("{}/{route}", gw.url);
        let answer = post(&url, Some(TOKEN), false, commands.to_string()).await;
        (answer.status, answer.json)
    }

    /// The `result` of each entry of a batch answer.
    pub fn results(answer: &Value) -> Vec<Value> {
        answer
            .as_array()
            .unwrap_or_else(|| panic!("not a batch answer: {answer}"))
            .iter()
            .map(|entry| entry.get("result").cloned().unwrap_or(entry.clone()))
            .collect()
    }
}

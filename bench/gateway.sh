#!/usr/bin/env bash
# Benchmark: redge-gateway vs webdis vs redis-benchmark (the ceiling), GET and SET, at several concurrencies.
#
# Starts its own redis-server, the gateway as users build it (`cargo build --profile gateway -p
# redge-gateway`) and webdis on free loopback ports, runs wrk against both HTTP servers and
# redis-benchmark against Redis itself, and writes bench/results/gateway.md and
# bench/results/gateway.json. Not a test: numbers depend on the machine. webdis runs as its docs
# recommend, one thread per CPU; the gateway runs with its defaults (also one thread per CPU).
#
# Needs: cargo, redis-server, redis-cli, redis-benchmark, webdis, wrk, curl, python3 (for ports and the report).
# Each cell compares the same request shape where both servers have it: the gateway's path form
# (`GET /get/key`, `GET /set/key/value`) against webdis's (`GET /GET/key`, `GET /SET/key/value`), and the
# gateway's JSON form (`POST /` with `["GET","key"]`) against the same webdis numbers. The runs of one
# concurrency are interleaved, and with ROUNDS > 1 each cell is run that many times (interleaved again) and
# its median run is reported, so that a burst of load from elsewhere on the machine skews one run, not a
# whole column. Each run also records the server's CPU time per request (from /proc) and the share of the
# machine's CPU the hypervisor stole meanwhile; runs with heavy steal are left out of a cell's medians.
#
# Environment: DURATION (wrk seconds per run, default 10), CONCURRENCY (default "1 16 64"),
#              ROUNDS (runs per cell, median reported, default 1),
#              REQUESTS (redis-benchmark requests per run, default 200000), SKIP_BUILD=1 to reuse the binary,
#              GATEWAY_BIN (a gateway binary to measure instead of building one; the report says so),
#              POOL_SIZE (the gateway's --pool-size; its default when unset),
#              CLUSTER=1: the gateway in front of a local Redis Cluster (3 masters, 3 replicas) instead of
#              one redis-server, redis-benchmark with --cluster as the ceiling, no webdis (it speaks to one
#              Redis only); the report goes to bench/results/gateway-cluster.{md,json}.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
duration="${DURATION:-10}"
concurrency="${CONCURRENCY:-1 16 64}"
rounds="${ROUNDS:-1}"
requests="${REQUESTS:-200000}"
token="bench-token"
key="bench:key"
value="0123456789abcdef0123456789abcdef"

# The machine's load before anything of this script runs (the runs themselves load every CPU).
load_at_start="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "")"

tools=(redis-server redis-cli redis-benchmark wrk curl python3)
[[ "${CLUSTER:-0}" == 1 ]] || tools+=(webdis)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "gateway.sh: $tool is not installed" >&2; exit 1; }
done

if [[ -n "${GATEWAY_BIN:-}" ]]; then
  gateway_bin="$GATEWAY_BIN"
  gateway_build="the binary given as GATEWAY_BIN"
else
  gateway_build="cargo build --profile gateway -p redge-gateway"
  if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    # The build users run: the `gateway` profile is the release profile with opt-level 3 (release itself is
    # tuned for the Worker's wasm size).
    (cd "$root" && cargo build --profile gateway -p redge-gateway)
  fi
  target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  gateway_bin="$target_dir/gateway/redge-gateway"
fi
gateway_args=(--listen "127.0.0.1:PORT")
if [[ -n "${POOL_SIZE:-}" ]]; then gateway_args+=(--pool-size "$POOL_SIZE"); fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "gateway.sh: nothing listens on port $1" >&2
  exit 1
}

cluster="${CLUSTER:-0}"
report_name=gateway
[[ "$cluster" == 1 ]] && report_name=gateway-cluster
# A port whose cluster bus port (port + 10000) is free as well.
cluster_port() {
  python3 -c '
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
while True:
    p = random.randint(20000, 29999)
    if free(p) and free(p + 10000):
        print(p); break'
}

redis_port="$(free_port)"
gateway_port="$(free_port)"
webdis_port="$(free_port)"
cpus="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"

cluster_seeds=""
if [[ "$cluster" == 1 ]]; then
  nodes=()
  for i in 1 2 3 4 5 6; do
    port="$(cluster_port)"
    mkdir -p "$work/node-$port"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/node-$port" \
      --cluster-enabled yes --cluster-config-file "$work/node-$port/nodes.conf" --cluster-node-timeout 2000 \
      >"$work/redis-$port.log" 2>&1 &
    pids+=($!)
    wait_port "$port"
    nodes+=("127.0.0.1:$port")
    cluster_seeds+="${cluster_seeds:+,}redis://127.0.0.1:$port"
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$work/cluster-create.log"
  for node in "${nodes[@]}"; do
    until redis-cli -p "${node#*:}" CLUSTER INFO | grep -q cluster_state:ok; do sleep 0.2; done
  done
  redis_port="${nodes[0]#*:}"
else
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_port "$redis_port"
fi

# Per-request logs off (RUST_LOG=warn): webdis logs nothing at its default verbosity either.
RUST_LOG=warn REDGE_GATEWAY_TOKENS="$token" REDGE_REDIS_URL="redis://127.0.0.1:$redis_port" \
  REDGE_REDIS_CLUSTER_NODES="$cluster_seeds" \
  "$gateway_bin" "${gateway_args[@]/PORT/$gateway_port}" >"$work/gateway.log" 2>&1 &
pids+=($!)
gateway_pid=$!
wait_port "$gateway_port"

cat >"$work/webdis.json" <<JSON
{
  "redis_host": "127.0.0.1",
  "redis_port": $redis_port,
  "http_host": "127.0.0.1",
  "http_port": $webdis_port,
  "threads": $cpus,
  "pool_size_per_thread": 20,
  "daemonize": false,
  "websockets": false,
  "database": 0,
  "verbosity": 1,
  "logfile": "$work/webdis.log"
}
JSON
webdis_pid=""
if [[ "$cluster" != 1 ]]; then
  webdis "$work/webdis.json" >/dev/null 2>&1 &
  pids+=($!)
  webdis_pid=$!
  wait_port "$webdis_port"
fi

redis-cli -c -p "$redis_port" SET "$key" "$value" >/dev/null
# Sanity: both servers answer the GET with the value.
curl -sf -H "Authorization: Bearer $token" -d "[\"GET\",\"$key\"]" "http://127.0.0.1:$gateway_port/" | grep -q "$value"
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$gateway_port/get/$key" | grep -q "$value"
if [[ -n "$webdis_pid" ]]; then curl -sf "http://127.0.0.1:$webdis_port/GET/$key" | grep -q "$value"; fi

results="$work/results.jsonl"
# CPU time (user + system, all threads, in clock ticks) that a process has used so far, and the machine's
# stolen and total ticks (time the hypervisor gave to other guests): read around each run, they give the
# server's CPU cost per request, which noise from elsewhere on the machine moves far less than req/s.
process_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo null; }
machine_ticks() { awk '/^cpu /{t=0; for (i = 2; i <= NF; i++) t += $i; print $9, t; exit}' /proc/stat 2>/dev/null || echo "null null"; }
clock_ticks="$(getconf CLK_TCK 2>/dev/null || echo 100)"
run_wrk() { # server form op conc round method path body token url
  local server="$1" form="$2" op="$3" conc="$4" round="$5"
  if [[ "$server" == webdis && -z "$webdis_pid" ]]; then return 0; fi
  local threads=$(( conc < 2 ? 1 : 2 ))
  local pid="$gateway_pid"
  [[ "$server" == webdis ]] && pid="$webdis_pid"
  local line before after machine_before machine_after
  before="$(process_ticks "$pid")"
  machine_before="$(machine_ticks)"
  line="$(BENCH_METHOD="$6" BENCH_PATH="$7" BENCH_BODY="$8" BENCH_TOKEN="$9" \
    wrk -t "$threads" -c "$conc" -d "${duration}s" -s "$root/bench/gateway.lua" "${10}" | grep '^BENCH_JSON ')"
  after="$(process_ticks "$pid")"
  machine_after="$(machine_ticks)"
  echo "{\"server\":\"$server\",\"form\":\"$form\",\"op\":\"$op\",\"concurrency\":$conc,\"round\":$round,\"cpu_ticks\":[$before,$after],\"machine_ticks\":[${machine_before/ /,},${machine_after/ /,}],\"wrk\":${line#BENCH_JSON }}" >>"$results"
  echo "  $server $form $op c=$conc round $round done" >&2
}

run_redis_benchmark() { # conc round
  local before after
  before="$(machine_ticks)"
  local cluster_flag=()
  [[ "$cluster" == 1 ]] && cluster_flag=(--cluster)
  redis-benchmark "${cluster_flag[@]}" -p "$redis_port" -t get,set -c "$1" -n "$requests" -d "${#value}" --csv 2>/dev/null | grep '^"' >"$work/rb.csv"
  after="$(machine_ticks)"
  python3 -c '
import csv, json, sys
c, rnd, ticks = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
for row in csv.DictReader(open(sys.argv[4])):
    print(json.dumps({"server": "redis-benchmark", "op": row["test"], "concurrency": c, "round": rnd,
                      "machine_ticks": ticks, "rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
                      "p99_ms": float(row["p99_latency_ms"])}))
' "$1" "$2" "[${before/ /,},${after/ /,}]" "$work/rb.csv" >>"$results"
  echo "  redis-benchmark c=$1 round $2 done" >&2
}

for c in $concurrency; do
  gw="http://127.0.0.1:$gateway_port"
  wd="http://127.0.0.1:$webdis_port"
  for round in $(seq "$rounds"); do
    run_wrk redge-gateway path GET "$c" "$round" GET "/get/$key" "" "$token" "$gw"
    run_wrk webdis path GET "$c" "$round" GET "/GET/$key" "" "" "$wd"
    run_wrk redge-gateway json GET "$c" "$round" POST / "[\"GET\",\"$key\"]" "$token" "$gw"
    run_wrk redge-gateway path SET "$c" "$round" GET "/set/$key/$value" "" "$token" "$gw"
    run_wrk webdis path SET "$c" "$round" GET "/SET/$key/$value" "" "" "$wd"
    run_wrk redge-gateway json SET "$c" "$round" POST / "[\"SET\",\"$key\",\"$value\"]" "$token" "$gw"
    run_redis_benchmark "$c" "$round"
  done
done

gateway_version="$("$gateway_bin" --version)"
python3 - "$results" "$root/bench/results" "$duration" "$rounds" "${POOL_SIZE:-default}" "$gateway_version" "$clock_ticks" "$gateway_build" "$cpus" "$load_at_start" "$report_name" <<'PY'
import json, os, platform, statistics, sys, datetime
path, out_dir, duration, rounds, pool_size, version, clock_ticks, build, webdis_threads, load_at_start, name = sys.argv[1:12]
cluster = name == "gateway-cluster"
clock_ticks = int(clock_ticks)
rows = []
for line in open(path):
    r = json.loads(line)
    if "wrk" in r:
        w = r.pop("wrk")
        r["rps"] = w["requests"] / (w["duration_us"] / 1e6)
        r["p50_ms"] = w["p50_us"] / 1000
        r["p99_ms"] = w["p99_us"] / 1000
        r["errors"] = w["socket_errors"] + w["non_2xx"]
        ticks = r.pop("cpu_ticks", [None, None])
        if None not in ticks and w["requests"]:
            r["cpu_us_per_request"] = (ticks[1] - ticks[0]) / clock_ticks * 1e6 / w["requests"]
    m = r.pop("machine_ticks", [None] * 4)
    if None not in m and m[3] > m[1]:
        r["steal_pct"] = 100 * (m[2] - m[0]) / (m[3] - m[1])
    rows.append(r)
os.makedirs(out_dir, exist_ok=True)
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "cpus": os.cpu_count(), "system": platform.system(), "wrk_seconds": int(duration),
    "rounds": int(rounds), "gateway_pool_size": pool_size, "gateway": version, "gateway_build": build,
    "webdis_threads": int(webdis_threads),
    "load_average": list(os.getloadavg()),
    "load_average_at_start": [float(x) for x in load_at_start.split()],
}
meta["redis"] = "a local Redis Cluster, 3 masters + 3 replicas" if cluster else "one redis-server"
with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
    json.dump({"meta": meta, "results": rows}, f, indent=2)
    f.write("\n")
# Runs during which the hypervisor took more than this share of the machine's CPU are left out of a cell's
# medians, as long as at least QUIET_MIN runs of that cell remain; otherwise every run counts.
QUIET_STEAL_PCT, QUIET_MIN = 5.0, 2
def runs_of(server, op, c, form=None):
    runs = [r for r in rows if r["server"] == server and r["op"] == op and r["concurrency"] == c
            and (form is None or r.get("form") == form)]
    quiet = [r for r in runs if r.get("steal_pct", 0.0) <= QUIET_STEAL_PCT]
    return quiet if len(quiet) >= QUIET_MIN else runs
def median_run(server, op, c, form=None):
    runs = sorted(runs_of(server, op, c, form), key=lambda r: r["rps"])
    return runs[(len(runs) - 1) // 2] if runs else None
lines = [
    f"# redge-gateway benchmark ({meta['date']}, {meta['cpus']} CPUs, wrk {duration} s per run, "
    f"median of {rounds} interleaved run(s) per cell, gateway pool size {pool_size})",
    "",
    *(["In front of a local Redis Cluster (3 masters, 3 replicas, one machine): redis-benchmark runs with",
       "`--cluster`, and webdis is left out (it speaks to one Redis).", ""] if cluster else []),
    "Requests/s and latency. `path` rows compare the same request shape: gateway `GET /get/key` (bearer",
    "token) against webdis `GET /GET/key` (SET: `/set/key/value` against `/SET/key/value`). `json` rows are",
    "the gateway's `POST /` with a JSON command, against the same webdis runs. redis-benchmark talks RESP",
    "directly to the same redis-server (the ceiling), once per round. wrk, both servers and Redis share",
    "the machine's CPUs.",
    "",
    f"The gateway is `{version}`, built with `{build}`, with its default threads (one per CPU); webdis",
    f"runs {webdis_threads} thread(s), one per CPU as its documentation recommends.",
    "",
    "CPU µs/req is the server process's own CPU time (user + system, all threads) during a run divided by",
    "the requests served, median over the rounds: the cost of a request, which load from elsewhere on the",
    "machine moves far less than it moves req/s. webdis's columns are its path-form runs in every row.",
    f"Runs during which the hypervisor stole more than {QUIET_STEAL_PCT:.0f}% of the machine's CPU are left out",
    f"of a cell when at least {QUIET_MIN} others remain; `runs` counts the gateway's and webdis's runs that count.",
    "",
    "| op | form | concurrency | redge-gateway req/s | p50 ms | p99 ms | CPU µs/req | webdis req/s | p50 ms | p99 ms | CPU µs/req | runs | redis-benchmark req/s | gateway / webdis | gateway / redis-benchmark |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
def median_cpu(server, op, c, form=None):
    costs = [r["cpu_us_per_request"] for r in runs_of(server, op, c, form) if "cpu_us_per_request" in r]
    return f"{statistics.median(costs):.1f}" if costs else "n/a"
concs = sorted({r["concurrency"] for r in rows})
for op in ["GET", "SET"]:
    for form in ["path", "json"]:
        for c in concs:
            g = median_run("redge-gateway", op, c, form)
            w = median_run("webdis", op, c)
            b = median_run("redis-benchmark", op, c)
            if not (g and b and (w or cluster)):
                continue
            webdis = (f"| {w['rps']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {median_cpu('webdis', op, c)} "
                      if w else "| n/a | n/a | n/a | n/a ")
            lines.append(
                f"| {op} | {form} | {c} | {g['rps']:.0f} | {g['p50_ms']:.2f} | {g['p99_ms']:.2f} "
                f"| {median_cpu('redge-gateway', op, c, form)} "
                + webdis +
                f"| {len(runs_of('redge-gateway', op, c, form))}/{len(runs_of('webdis', op, c))} "
                f"| {b['rps']:.0f} "
                + (f"| {g['rps'] / w['rps']:.2f} " if w else "| n/a ")
                + f"| {g['rps'] / b['rps']:.0%} |")
lines += ["", "Load average (1, 5, 15 min) before the runs: "
          + (", ".join(f"{x:.2f}" for x in meta["load_average_at_start"]) or "unknown")
          + "; when the report was written (the runs' own load included): "
          + ", ".join(f"{x:.2f}" for x in meta["load_average"]) + "."]
steal = [r["steal_pct"] for r in rows if "steal_pct" in r]
if steal:
    lines += ["", f"CPU time stolen by the hypervisor during the runs: median {statistics.median(steal):.1f}%, "
              f"worst run {max(steal):.1f}% (above a few percent, req/s at low concurrency is noise)."]
errors = [r for r in rows if r.get("errors")]
if errors:
    lines += ["", "Runs with errors (socket errors or non-2xx answers): " +
              ", ".join(f"{r['server']} {r.get('form', '')} {r['op']} c={r['concurrency']}: {r['errors']}"
                        for r in errors)]
with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

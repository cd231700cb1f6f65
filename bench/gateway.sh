#!/usr/bin/env bash
# Benchmark: redge-gateway vs webdis vs redis-benchmark (the ceiling), GET and SET, at several concurrencies.
#
# Starts its own redis-server, the release gateway and webdis on free loopback ports, runs wrk against both
# HTTP servers and redis-benchmark against Redis itself, and writes bench/results/gateway.md and
# bench/results/gateway.json. Not a test: numbers depend on the machine.
#
# Needs: cargo, redis-server, redis-cli, redis-benchmark, webdis, wrk, curl, python3 (for ports and the report).
# Each cell compares the same request shape where both servers have it: the gateway's path form
# (`GET /get/key`, `GET /set/key/value`) against webdis's (`GET /GET/key`, `GET /SET/key/value`), and the
# gateway's JSON form (`POST /` with `["GET","key"]`) against the same webdis numbers. The runs of one
# concurrency are interleaved, and with ROUNDS > 1 each cell is run that many times (interleaved again) and
# its median run is reported, so that a burst of load from elsewhere on the machine skews one run, not a
# whole column.
#
# Environment: DURATION (wrk seconds per run, default 10), CONCURRENCY (default "1 16 64"),
#              ROUNDS (runs per cell, median reported, default 1),
#              REQUESTS (redis-benchmark requests per run, default 200000), SKIP_BUILD=1 to reuse the binary,
#              GATEWAY_BIN (a gateway binary to measure instead of building one),
#              POOL_SIZE (the gateway's --pool-size; its default when unset).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
duration="${DURATION:-10}"
concurrency="${CONCURRENCY:-1 16 64}"
rounds="${ROUNDS:-1}"
requests="${REQUESTS:-200000}"
token="bench-token"
key="bench:key"
value="0123456789abcdef0123456789abcdef"

for tool in redis-server redis-cli redis-benchmark webdis wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "gateway.sh: $tool is not installed" >&2; exit 1; }
done

if [[ -n "${GATEWAY_BIN:-}" ]]; then
  gateway_bin="$GATEWAY_BIN"
else
  if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    # The `gateway` profile is the release profile with opt-level 3 (release itself is tuned for wasm size).
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

redis_port="$(free_port)"
gateway_port="$(free_port)"
webdis_port="$(free_port)"

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"

# Per-request logs off (RUST_LOG=warn): webdis logs nothing at its default verbosity either.
RUST_LOG=warn REDGE_GATEWAY_TOKENS="$token" REDGE_REDIS_URL="redis://127.0.0.1:$redis_port" \
  "$gateway_bin" "${gateway_args[@]/PORT/$gateway_port}" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_port "$gateway_port"

cat >"$work/webdis.json" <<JSON
{
  "redis_host": "127.0.0.1",
  "redis_port": $redis_port,
  "http_host": "127.0.0.1",
  "http_port": $webdis_port,
  "threads": 4,
  "pool_size_per_thread": 20,
  "daemonize": false,
  "websockets": false,
  "database": 0,
  "verbosity": 1,
  "logfile": "$work/webdis.log"
}
JSON
webdis "$work/webdis.json" >/dev/null 2>&1 &
pids+=($!)
wait_port "$webdis_port"

redis-cli -p "$redis_port" SET "$key" "$value" >/dev/null
# Sanity: both servers answer the GET with the value.
curl -sf -H "Authorization: Bearer $token" -d "[\"GET\",\"$key\"]" "http://127.0.0.1:$gateway_port/" | grep -q "$value"
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$gateway_port/get/$key" | grep -q "$value"
curl -sf "http://127.0.0.1:$webdis_port/GET/$key" | grep -q "$value"

results="$work/results.jsonl"
run_wrk() { # server form op conc round method path body token url
  local server="$1" form="$2" op="$3" conc="$4" round="$5"
  local threads=$(( conc < 2 ? 1 : 2 ))
  local line
  line="$(BENCH_METHOD="$6" BENCH_PATH="$7" BENCH_BODY="$8" BENCH_TOKEN="$9" \
    wrk -t "$threads" -c "$conc" -d "${duration}s" -s "$root/bench/gateway.lua" "${10}" | grep '^BENCH_JSON ')"
  echo "{\"server\":\"$server\",\"form\":\"$form\",\"op\":\"$op\",\"concurrency\":$conc,\"round\":$round,\"wrk\":${line#BENCH_JSON }}" >>"$results"
  echo "  $server $form $op c=$conc round $round done" >&2
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
  done
  redis-benchmark -p "$redis_port" -t get,set -c "$c" -n "$requests" -d "${#value}" --csv 2>/dev/null |
    python3 -c '
import csv, json, sys
c = int(sys.argv[1])
for row in csv.DictReader(sys.stdin):
    print(json.dumps({"server": "redis-benchmark", "op": row["test"], "concurrency": c,
                      "rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
                      "p99_ms": float(row["p99_latency_ms"])}))
' "$c" >>"$results"
  echo "  redis-benchmark c=$c done" >&2
done

gateway_version="$("$gateway_bin" --version)"
python3 - "$results" "$root/bench/results" "$duration" "$rounds" "${POOL_SIZE:-default}" "$gateway_version" <<'PY'
import json, os, platform, statistics, sys, datetime
path, out_dir, duration, rounds, pool_size, version = sys.argv[1:7]
rows = []
for line in open(path):
    r = json.loads(line)
    if "wrk" in r:
        w = r.pop("wrk")
        r["rps"] = w["requests"] / (w["duration_us"] / 1e6)
        r["p50_ms"] = w["p50_us"] / 1000
        r["p99_ms"] = w["p99_us"] / 1000
        r["errors"] = w["socket_errors"] + w["non_2xx"]
    rows.append(r)
os.makedirs(out_dir, exist_ok=True)
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "cpus": os.cpu_count(), "system": platform.system(), "wrk_seconds": int(duration),
    "rounds": int(rounds), "gateway_pool_size": pool_size, "gateway": version,
    "load_average": list(os.getloadavg()),
}
with open(os.path.join(out_dir, "gateway.json"), "w") as f:
    json.dump({"meta": meta, "results": rows}, f, indent=2)
    f.write("\n")
def median_run(server, op, c, form=None):
    runs = [r for r in rows if r["server"] == server and r["op"] == op and r["concurrency"] == c
            and (form is None or r.get("form") == form)]
    if not runs:
        return None
    runs.sort(key=lambda r: r["rps"])
    return runs[(len(runs) - 1) // 2]
lines = [
    f"# redge-gateway benchmark ({meta['date']}, {meta['cpus']} CPUs, wrk {duration} s per run, "
    f"median of {rounds} interleaved run(s) per cell, gateway pool size {pool_size})",
    "",
    "Requests/s and latency. `path` rows compare the same request shape: gateway `GET /get/key` (bearer",
    "token) against webdis `GET /GET/key` (SET: `/set/key/value` against `/SET/key/value`). `json` rows are",
    "the gateway's `POST /` with a JSON command, against the same webdis runs. redis-benchmark talks RESP",
    "directly to the same redis-server (the ceiling). wrk, both servers and Redis share the machine's CPUs.",
    "",
    "| op | form | concurrency | redge-gateway req/s | p50 ms | p99 ms | webdis req/s | p50 ms | p99 ms | redis-benchmark req/s | gateway / webdis | gateway / redis-benchmark |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
concs = sorted({r["concurrency"] for r in rows})
for op in ["GET", "SET"]:
    for form in ["path", "json"]:
        for c in concs:
            g = median_run("redge-gateway", op, c, form)
            w = median_run("webdis", op, c)
            b = median_run("redis-benchmark", op, c)
            if not (g and w and b):
                continue
            lines.append(
                f"| {op} | {form} | {c} | {g['rps']:.0f} | {g['p50_ms']:.2f} | {g['p99_ms']:.2f} "
                f"| {w['rps']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {b['rps']:.0f} "
                f"| {g['rps'] / w['rps']:.2f} | {g['rps'] / b['rps']:.0%} |")
lines += ["", f"Load average (1, 5, 15 min) when the report was written: "
          + ", ".join(f"{x:.2f}" for x in meta["load_average"]) + "."]
errors = [r for r in rows if r.get("errors")]
if errors:
    lines += ["", "Runs with errors (socket errors or non-2xx answers): " +
              ", ".join(f"{r['server']} {r.get('form', '')} {r['op']} c={r['concurrency']}: {r['errors']}"
                        for r in errors)]
with open(os.path.join(out_dir, "gateway.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

// `npm run bench [-- part ...]`: redge's Worker routes against JavaScript Workers built on the official SDKs,
// the gateway against webdis and redis-benchmark, and the upload bundles. Not a test: every figure depends on
// the machine, so each is reported with the load average around it, and the comparisons as ratios.
//
// Parts (default: `routes bundle`, the 1 thousand key space only):
//   routes     the four routes (rate limit, session read, cache hit, dashboard) of redge and of the peer
//              (bench/peers/routes-upstash) at 1, 8 and 64 concurrent clients, in interleaved slices
//   bundle     gzipped upload size from `wrangler deploy --dry-run` for redge and every peer Worker
//   ratelimit  bench/ratelimit.mjs (throughput per algorithm, hot identifier, accuracy)
//   cache      bench/cache.mjs (hit, miss, memory tier; sequential)
//   gateway    bench/gateway.sh (redge-gateway vs webdis vs redis-benchmark), then CLUSTER=1 bench/gateway.sh
//              (the same gateway in front of a local Redis Cluster: the cost of cluster mode per request)
//   wan        bench/wan.mjs (the routes with the Redis service 0, 20 and 50 ms away through a delay proxy:
//              latency, throughput, critical and background round trips; the assets routing comparison)
//   all        every part, and the routes at both key spaces (1 thousand and 1 million)
// Environment: KEYSPACES (comma-separated, default 1000, `all`: 1000,1000000), CONCURRENCY (default 1,8,64),
// ROUNDS (interleaved slices per cell, default 4), SLICE_MS (default 1000).
//
// Results: bench/results/bench.json (merged: a part that is not run keeps its previous figures) and
// bench/results/bench.md, rendered from it.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { run } from '../scripts/lib/proc.mjs';
import { buildEnv, ensureToolchain, root } from '../scripts/lib/toolchain.mjs';
import {
  CACHE_TTL_MS, CLK_TCK, LIMIT, WINDOW_MS, commandstats, expected, growKeyspace, requestFor, seed, startBenchStack, ticksOf,
} from './lib/workers.mjs';

const args = process.argv.slice(2);
const ALL = args.includes('all');
const PARTS = new Set(ALL ? ['routes', 'bundle', 'ratelimit', 'cache', 'gateway', 'wan'] : args.length ? args : ['routes', 'bundle']);
for (const part of PARTS) {
  if (!['routes', 'bundle', 'ratelimit', 'cache', 'gateway', 'wan'].includes(part)) {
    console.error(`unknown part ${part}: choose from routes, bundle, ratelimit, cache, gateway, wan, all`);
    process.exit(2);
  }
}
const KEYSPACES = (process.env.KEYSPACES ?? (ALL ? '1000,1000000' : '1000')).split(',').map(Number);
const CONCURRENCY = (process.env.CONCURRENCY ?? '1,8,64').split(',').map(Number);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const SLICE_MS = Number(process.env.SLICE_MS ?? 1000);
const ROUTES = ['ratelimit', 'session', 'cache', 'dashboard'];
const resultsDir = join(root, 'bench', 'results');
const log = (m) => console.log(`[bench] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function slice(stack, which, route, concurrency, ms, keyspace, keys) {
  const w = stack[which];
  const raw = { n: 0, unexpected: 0, errors: 0, latencies: [], serverTrips: 0, serverTripsSeen: 0, samples: [] };
  const cpu0 = { workerd: ticksOf(w.processes.workerd), other: ticksOf(w.processes.other), gateway: ticksOf([stack.gateway.pid]), redis: ticksOf([stack.redis.proc.pid]), client: process.cpuUsage() };
  const gw0 = { ...stack.counters };
  const cs0 = commandstats(stack.cli);
  const t0 = performance.now();
  const client = async () => {
    while (performance.now() - t0 < ms) {
      const i = 1 + Math.floor(Math.random() * keyspace);
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const started = performance.now();
      try {
        const response = await w.request(requestFor(which, route, i, keys, ip));
        raw.latencies.push(performance.now() - started);
        raw.n++;
        if (!expected(route, response)) {
          raw.unexpected++;
          if (raw.samples.length < 2) raw.samples.push({ status: response.status, body: response.text.slice(0, 300) });
        }
        const trips = /redis;[^,]*desc="(\d+) round trip/.exec(response.headers['server-timing'] ?? '');
        if (trips) {
          raw.serverTrips += Number(trips[1]);
          raw.serverTripsSeen++;
        }
      } catch (error) {
        raw.errors++;
        if (raw.samples.length < 2) raw.samples.push({ error: String(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  raw.seconds = (performance.now() - t0) / 1000;
  await sleep(150); // the gateway's last log lines, and work the Workers finish after answering
  const cs1 = commandstats(stack.cli);
  const client1 = process.cpuUsage(cpu0.client);
  raw.cpu = {
    workerd: ticksOf(w.processes.workerd) - cpu0.workerd,
    other: ticksOf(w.processes.other) - cpu0.other,
    gateway: ticksOf([stack.gateway.pid]) - cpu0.gateway,
    redis: ticksOf([stack.redis.proc.pid]) - cpu0.redis,
    client_ms: (client1.user + client1.system) / 1000,
  };
  raw.trips = stack.counters.requests - gw0.requests;
  raw.httpCommands = stack.counters.commands - gw0.commands;
  raw.calls = cs1.calls - cs0.calls;
  raw.per = {};
  for (const [k, v] of Object.entries(cs1.per)) if (v - (cs0.per[k] ?? 0) > 0) raw.per[k] = v - (cs0.per[k] ?? 0);
  return raw;
}

function mergeRaw(a, b) {
  if (!a) return b;
  for (const k of ['n', 'unexpected', 'errors', 'seconds', 'serverTrips', 'serverTripsSeen', 'trips', 'httpCommands', 'calls']) a[k] += b[k];
  for (const k of Object.keys(a.cpu)) a.cpu[k] += b.cpu[k];
  a.latencies.push(...b.latencies);
  for (const [k, v] of Object.entries(b.per)) a.per[k] = (a.per[k] ?? 0) + v;
  if (a.samples.length < 2) a.samples.push(...b.samples.slice(0, 2 - a.samples.length));
  return a;
}

function summarize(raw) {
  const lat = raw.latencies.sort((x, y) => x - y);
  const q = (p) => Number((lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0).toFixed(2));
  const n = Math.max(1, raw.n);
  const per = (x, digits = 2) => Number((x / n).toFixed(digits));
  const msPer1000 = (ticks) => Number(((ticks * 1000) / CLK_TCK / n * 1000).toFixed(1));
  return {
    requests: raw.n,
    requests_per_s: Math.round(raw.n / raw.seconds),
    p50_ms: q(0.5),
    p99_ms: q(0.99),
    unexpected: raw.unexpected,
    errors: raw.errors,
    workerd_cpu_ms_per_1000: msPer1000(raw.cpu.workerd),
    wrangler_other_cpu_ms_per_1000: msPer1000(raw.cpu.other),
    gateway_cpu_ms_per_1000: msPer1000(raw.cpu.gateway),
    redis_cpu_ms_per_1000: msPer1000(raw.cpu.redis),
    client_cpu_ms_per_1000: Number(((raw.cpu.client_ms / n) * 1000).toFixed(1)),
    round_trips_per_request: per(raw.trips),
    round_trips_reported: raw.serverTripsSeen ? Number((raw.serverTrips / raw.serverTripsSeen).toFixed(2)) : null,
    http_commands_per_request: per(raw.httpCommands),
    redis_commands_per_request: per(raw.calls),
    redis_commands_by_name: Object.fromEntries(Object.entries(raw.per).map(([k, v]) => [k, per(v)])),
    samples: raw.samples,
  };
}

async function routesBench() {
  const stack = await startBenchStack();
  try {
    const out = { setup: {}, cells: [] };
    const ipCheckBefore = Number(stack.cli('DBSIZE').trim());
    const keys = await seed(stack);
    log('warming both Workers');
    for (const which of ['redge', 'peer']) for (const route of ROUTES) await slice(stack, which, route, 8, 1500, 1, keys);
    // Is the client IP the bench sends (CF-Connecting-IP) the one the dashboard's rate limit uses?
    const before = stack.cli('--scan', '--pattern', 'peer:rl*').split('\n').filter(Boolean).length;
    for (let k = 0; k < 5; k++) await stack.peer.request(requestFor('peer', 'dashboard', 1, keys, `192.0.2.${k + 1}`));
    const after = stack.cli('--scan', '--pattern', 'peer:rl*').split('\n').filter(Boolean).length;
    out.setup.client_ip_header_honoured = after > before;
    out.setup.keys_before_seed = ipCheckBefore;
    for (const keyspace of KEYSPACES) {
      await growKeyspace(stack, keys, keyspace);
      const info = stack.cli('INFO', 'memory');
      out.setup[`keyspace_${keyspace}`] = { dbsize: Number(stack.cli('DBSIZE').trim()), used_memory_human: /used_memory_human:(\S+)/.exec(info)?.[1] };
      for (const concurrency of CONCURRENCY) {
        const raws = {};
        const load0 = loadavg();
        for (let round = 0; round < ROUNDS; round++) {
          for (const route of ROUTES) {
            // Alternate which Worker goes first, so that neither always follows the other's trailing work.
            const order = round % 2 === 0 ? ['redge', 'peer'] : ['peer', 'redge'];
            for (const which of order) {
              const key = `${route}/${which}`;
              raws[key] = mergeRaw(raws[key], await slice(stack, which, route, concurrency, SLICE_MS, keyspace, keys));
            }
          }
        }
        for (const route of ROUTES) {
          const redge = summarize(raws[`${route}/redge`]);
          const peer = summarize(raws[`${route}/peer`]);
          out.cells.push({ keyspace, concurrency, route, load_average: load0.map((x) => Number(x.toFixed(2))), redge, peer });
          log(`keys ${keyspace} c=${concurrency} ${route}: redge ${redge.requests_per_s} req/s p50 ${redge.p50_ms} cpu ${redge.workerd_cpu_ms_per_1000} ms/1000 trips ${redge.round_trips_per_request} | peer ${peer.requests_per_s} req/s p50 ${peer.p50_ms} cpu ${peer.workerd_cpu_ms_per_1000} trips ${peer.round_trips_per_request}`);
        }
      }
    }
    out.rounds = ROUNDS;
    out.slice_ms = SLICE_MS;
    return out;
  } finally {
    await stack.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bundles

async function bundleBench() {
  const wrangler = join(root, 'node_modules', '.bin', 'wrangler');
  const workers = [
    { name: 'redge (Rust/wasm)', cwd: root, config: [] },
    { name: 'peer: routes (@upstash/ratelimit + @upstash/redis)', cwd: join(root, 'bench', 'peers', 'routes-upstash'), config: [] },
    { name: 'peer: rate limit (@upstash/ratelimit + @upstash/redis)', cwd: join(root, 'bench', 'peers', 'upstash-ratelimit'), config: [] },
    { name: 'peer: cache (@upstash/redis)', cwd: join(root, 'bench', 'peers', 'cache-upstash'), config: [] },
  ];
  const out = [];
  for (const w of workers) {
    const dir = mkdtempSync(join(tmpdir(), 'redge-bundle-'));
    try {
      const result = await run(wrangler, ['deploy', '--dry-run', '--outdir', dir, ...w.config], { cwd: w.cwd, env: buildEnv({ CI: 'true' }), echo: false });
      const m = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(result.output);
      if (result.code !== 0 || !m) throw new Error(`wrangler deploy --dry-run for ${w.name} failed:\n${result.output.slice(-2000)}`);
      const files = readdirSync(dir, { recursive: true })
        .map((f) => join(dir, f))
        .filter((f) => statSync(f).isFile() && !f.endsWith('.map') && !f.endsWith('README.md'));
      const own = files.map((f) => ({ file: f.slice(dir.length + 1), bytes: statSync(f).size, gzip_bytes: gzipSync(readFileSync(f), { level: 9 }).length }));
      out.push({ name: w.name, wrangler_total_kib: Number(m[1]), wrangler_gzip_kib: Number(m[2]), files: own });
      log(`bundle ${w.name}: ${m[1]} KiB, gzip ${m[2]} KiB`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The older benchmarks, run as they are

async function child(command, argv, what, env = {}) {
  log(`running ${what}`);
  const t = performance.now();
  const result = await run(command, argv, { cwd: root, env: buildEnv(env), echo: true });
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code})`);
  return { command: what, seconds: Math.round((performance.now() - t) / 1000) };
}

const readJson = (name) => JSON.parse(readFileSync(join(resultsDir, name), 'utf8'));

// ---------------------------------------------------------------------------------------------------------
// Report

const ratio = (a, b) => (b ? (a / b).toFixed(2) : 'n/a');

function routesTable(cells, keyspace) {
  const head = '| route | clients | redge req/s | peer req/s | redge / peer | redge p50 / p99 ms | peer p50 / p99 ms | redge workerd CPU ms / 1000 | peer workerd CPU ms / 1000 | redge / peer CPU | round trips redge / peer | Redis commands redge / peer | load avg |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const rows = cells
    .filter((c) => c.keyspace === keyspace)
    .map((c) => {
      const r = c.redge;
      const p = c.peer;
      return `| ${c.route} | ${c.concurrency} | ${r.requests_per_s} | ${p.requests_per_s} | ${ratio(r.requests_per_s, p.requests_per_s)} | ${r.p50_ms} / ${r.p99_ms} | ${p.p50_ms} / ${p.p99_ms} | ${r.workerd_cpu_ms_per_1000} | ${p.workerd_cpu_ms_per_1000} | ${ratio(r.workerd_cpu_ms_per_1000, p.workerd_cpu_ms_per_1000)} | ${r.round_trips_per_request} / ${p.round_trips_per_request} | ${r.redis_commands_per_request} / ${p.redis_commands_per_request} | ${c.load_average[0]} |`;
    });
  return [head, ...rows].join('\n');
}

function detailTable(cells, keyspace) {
  const head = '| route | clients | Worker | requests | unexpected | errors | round trips (gateway log) | round trips (Server-Timing) | HTTP commands | Redis commands by name | gateway CPU ms / 1000 | redis CPU ms / 1000 | wrangler (non-workerd) CPU ms / 1000 |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|';
  const rows = [];
  for (const c of cells.filter((x) => x.keyspace === keyspace)) {
    for (const which of ['redge', 'peer']) {
      const x = c[which];
      rows.push(`| ${c.route} | ${c.concurrency} | ${which} | ${x.requests} | ${x.unexpected} | ${x.errors} | ${x.round_trips_per_request} | ${x.round_trips_reported ?? ''} | ${x.http_commands_per_request} | ${JSON.stringify(x.redis_commands_by_name).replace(/"/g, '')} | ${x.gateway_cpu_ms_per_1000} | ${x.redis_cpu_ms_per_1000} | ${x.wrangler_other_cpu_ms_per_1000} |`);
    }
  }
  return [head, ...rows].join('\n');
}

function growthTable(cells) {
  const spaces = [...new Set(cells.map((c) => c.keyspace))].sort((a, b) => a - b);
  if (spaces.length < 2) return '';
  const [small, large] = [spaces[0], spaces[spaces.length - 1]];
  const head = `| route | clients | redge req/s ${small} → ${large} | peer req/s ${small} → ${large} | redge CPU ms/1000 ${small} → ${large} | peer CPU ms/1000 ${small} → ${large} |\n|---|---:|---:|---:|---:|---:|`;
  const rows = [];
  for (const c of cells.filter((x) => x.keyspace === small)) {
    const l = cells.find((x) => x.keyspace === large && x.route === c.route && x.concurrency === c.concurrency);
    if (!l) continue;
    rows.push(`| ${c.route} | ${c.concurrency} | ${c.redge.requests_per_s} → ${l.redge.requests_per_s} | ${c.peer.requests_per_s} → ${l.peer.requests_per_s} | ${c.redge.workerd_cpu_ms_per_1000} → ${l.redge.workerd_cpu_ms_per_1000} | ${c.peer.workerd_cpu_ms_per_1000} → ${l.peer.workerd_cpu_ms_per_1000} |`);
  }
  return [head, ...rows].join('\n');
}

function render(r) {
  const m = r.machine;
  const parts = [`# Benchmarks (\`npm run bench\`)

Machine: ${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB RAM, Linux ${m.kernel}, Node ${m.node}. Date: ${r.date}.
Load average (1, 5, 15 min) before: ${r.load_average_before.join(', ')}; after: ${r.load_average_after.join(', ')}.
The machine's two cores are shared with other work (builds), so absolute figures are noisy: every comparison
is run interleaved (redge and the peer alternate in short slices) and is best read as a ratio.
Command of the last run: \`${r.command}\`. Parts run then: ${r.parts_run.join(', ')}; the others keep their figures
from the run dated in their own section.${r.failed?.length ? `\n\n**Parts that failed in the last run:** ${r.failed.map((f) => `${f.part} (${f.error.split('\n')[0]})`).join('; ')}` : ''}`];

  if (r.routes) {
    const x = r.routes;
    parts.push(`## Worker routes: redge vs the official SDKs (${x.date})

\`npm run bench -- routes\` (key spaces from \`KEYSPACES\`; \`npm run bench -- all\` runs 1000 and 1000000).
redge's Worker and the peer (\`bench/peers/routes-upstash\`: \`@upstash/ratelimit\` 2.2.0 on \`@upstash/redis\` 1.39.0,
as their docs show them, with the SDK's default auto-pipelining) each run in \`wrangler dev\` (workerd) against one
redge-gateway (cargo profile gateway, as users build it) and one redis-server. For each number of concurrent clients (a closed loop from Node's
\`http\` with keep-alive) the ${ROUTES.length} routes × 2 Workers run in ${x.rounds} interleaved slices of ${x.slice_ms} ms.
Each request picks a random identifier from the key space: a rate-limit identifier, a session (cookie), an item.

| route | redge | peer |
|---|---|---|
| ratelimit | \`POST /api/ratelimit/api?id=k<i>\` (sliding window) | \`POST /api/ratelimit?id=k<i>\` (\`Ratelimit.slidingWindow\`) |
| session | \`GET /api/session\` (session script: one \`HGETALL\`, sliding refresh when due) | \`GET /api/session\`: \`GET\` of a JSON record, \`SET PX XX\` when less than half the idle time is left |
| cache | \`GET /api/lookup/<i>\` (hit: \`MGET\` of entry + 2 tag generations) | \`GET /api/lookup/<i>\`: cache-aside \`GET\` |
| dashboard | \`GET /api/dashboard?item=<i>\` (middleware's rate-limit check + session + item) | \`GET /api/dashboard?item=<i>\`: \`Promise.all\` of the three |

Settings: every rate limit is ${LIMIT} per ${WINDOW_MS / 1000} s, so every request is allowed (the benchmark measures decisions,
not refusals). redge: \`RATELIMIT_ROUTES\` limits only the dashboard group (the other three routes then measure one
capability each, as the peer's do), \`RATELIMIT_POLICIES\` one sliding-window \`api\` policy, its Redis deadlines
(\`RATELIMIT_TIMEOUT_MS\`, \`REDIS_TIMEOUT_MS\`, \`CACHE_DEADLINE_MS\`) raised to 5 s like the SDK's, so that a busy machine
measures slow answers rather than fallbacks; cache TTL 1 h and the demo origin at 0 ms on both; redge's memory tier off.
The dashboard's rate limit is keyed by \`CF-Connecting-IP\`; the bench sends one address per identifier
(wrangler dev passes it through: ${x.setup.client_ip_header_honoured ? 'yes' : 'no, so every dashboard request shares one key'}).
Key spaces: one session and one cache entry are created through each Worker, then copied inside Redis
(\`COPY\` through \`redis-cli --pipe\`) to n sessions and n items per Worker; rate-limit identifiers are not
pre-populated, so in the 1 million key space most are first seen (a new key each).
${Object.entries(x.setup).filter(([k]) => k.startsWith('keyspace_')).map(([k, v]) => `Key space ${k.slice(9)}: DBSIZE ${v.dbsize}, Redis memory ${v.used_memory_human}.`).join(' ')}

Figures: requests/s and latency percentiles at the client; **workerd CPU** = utime + stime of the Worker's workerd
process(es) (\`/proc/<pid>/stat\`, found under its \`wrangler dev\`) over the slice, per 1000 requests; round trips =
HTTP requests the gateway logged, per request (redge's own \`Server-Timing\` count is in the detail table);
Redis commands = \`INFO commandstats\` deltas per request, commands run inside scripts included.
An "unexpected" answer is anything but an allowed decision, a signed-in session and a cache hit.`);
    for (const ks of [...new Set(x.cells.map((c) => c.keyspace))]) {
      parts.push(`### Key space ${ks}\n\n${routesTable(x.cells, ks)}\n\n<details><summary>Detail: counts, round trips both ways, CPU of the other processes</summary>\n\n${detailTable(x.cells, ks)}\n\n</details>`);
    }
    const growth = growthTable(x.cells);
    if (growth) parts.push(`### How cost grows with the key space\n\n${growth}`);
  }

  if (r.bundle) {
    const rows = r.bundle.entries.map((b) => `| ${b.name} | ${b.wrangler_total_kib} | ${b.wrangler_gzip_kib} | ${b.files.map((f) => `${f.file} ${(f.gzip_bytes / 1024).toFixed(1)}`).join(', ')} |`);
    parts.push(`## Upload bundle (${r.bundle.date})

\`npm run bench -- bundle\`: \`wrangler deploy --dry-run --outdir <tmp>\` for each Worker; wrangler's own "Total Upload"
line, and each file gzipped (level 9) by the bench.

| Worker | upload KiB | gzip KiB (wrangler) | files, gzip KiB |
|---|---:|---:|---|
${rows.join('\n')}`);
  }

  for (const [part, file, title] of [
    ['ratelimit', 'ratelimit.md', 'Rate limiting, per algorithm, and accuracy'],
    ['cache', 'cache.md', 'Cached lookups, sequential'],
    ['gateway', 'gateway.md', 'The gateway against webdis and redis-benchmark'],
    ['wan', 'wan.md', 'Worker routes with the Redis service a round trip away'],
  ]) {
    if (r[part]) parts.push(`## ${title} (${r[part].date})\n\n\`npm run bench -- ${part}\` runs \`${r[part].command}\` (${r[part].seconds} s); full report: [${file}](${file}).\n\n${r[part].summary}`);
  }
  return `${parts.join('\n\n')}\n`;
}

function ratelimitSummary(j) {
  const rows = Object.entries(j.load ?? {}).map(([name, x]) => `| ${name} | ${x.requests_per_s} | ${x.p50_ms} / ${x.p99_ms} | ${x.round_trips_per_decision} | ${x.redis_commands_per_decision} |`);
  const a = j.accuracy;
  return `${j.concurrency} clients, every request allowed:\n\n| target | req/s | p50 / p99 ms | round trips | Redis commands |\n|---|---:|---:|---:|---:|\n${rows.join('\n')}\n\nAccuracy (${a.schedule}): sliding window exact ${a.sliding_window.exact_sliding_log}, redge ${a.sliding_window.redge}, @upstash/ratelimit ${a.sliding_window.upstash}; ${a.sliding_log ? `sliding log exact ${a.sliding_log.exact_sliding_log}, redge ${a.sliding_log.redge}; ` : ''}token bucket exact ${a.token_bucket.exact_continuous} (continuous) / ${a.token_bucket.exact_stepwise} (stepwise), redge ${a.token_bucket.redge}, @upstash/ratelimit ${a.token_bucket.upstash}.`;
}

function cacheSummary(j) {
  const rows = [];
  for (const op of ['hit', 'miss']) for (const [name, x] of Object.entries(j[op])) rows.push(`| ${op} | ${name} | ${x.client_ms.p50.toFixed(2)} | ${x.client_ms.p99.toFixed(2)} | ${x.round_trips.mean.toFixed(2)} |`);
  return `| op | Worker | client p50 ms | client p99 ms | round trips |\n|---|---|---:|---:|---:|\n${rows.join('\n')}`;
}

function gatewaySummary(j) {
  const find = (s, op, c) => j.results.find((x) => x.server === s && x.op === op && x.concurrency === c);
  const rows = [];
  for (const op of ['GET', 'SET']) {
    for (const c of [...new Set(j.results.map((x) => x.concurrency))].sort((a, b) => a - b)) {
      const g = find('redge-gateway', op, c);
      const w = find('webdis', op, c);
      const b = find('redis-benchmark', op, c);
      if (g && w && b) rows.push(`| ${op} | ${c} | ${g.rps.toFixed(0)} | ${w.rps.toFixed(0)} | ${b.rps.toFixed(0)} | ${(g.rps / w.rps).toFixed(2)} |`);
    }
  }
  return `| op | clients | redge-gateway req/s | webdis req/s | redis-benchmark req/s | gateway / webdis |\n|---|---:|---:|---:|---:|---:|\n${rows.join('\n')}`;
}

/** The cost of cluster mode: the gateway in front of one redis-server and in front of the 3-master cluster. */
function clusterSummary(single, cluster) {
  const pick = (j, server, op, c) => {
    const runs = j.results.filter((x) => x.server === server && x.op === op && x.concurrency === c && (x.form ?? 'path') === 'path');
    const sorted = runs.sort((a, b) => a.rps - b.rps);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  };
  const rows = [];
  for (const op of ['GET', 'SET']) {
    for (const c of [...new Set(cluster.results.map((x) => x.concurrency))].sort((a, b) => a - b)) {
      const one = pick(single, 'redge-gateway', op, c);
      const many = pick(cluster, 'redge-gateway', op, c);
      const ceiling = pick(cluster, 'redis-benchmark', op, c);
      if (!one || !many) continue;
      const cost = one.cpu_us_per_request !== undefined && many.cpu_us_per_request !== undefined ? (many.cpu_us_per_request - one.cpu_us_per_request).toFixed(1) : 'n/a';
      rows.push(`| ${op} | ${c} | ${one.rps.toFixed(0)} | ${many.rps.toFixed(0)} | ${(many.rps / one.rps).toFixed(2)} | ${one.cpu_us_per_request?.toFixed(1) ?? 'n/a'} | ${many.cpu_us_per_request?.toFixed(1) ?? 'n/a'} | ${cost} | ${ceiling ? ceiling.rps.toFixed(0) : 'n/a'} |`);
    }
  }
  return `The gateway (path form) in front of one redis-server and in front of a local Redis Cluster (3 masters, 3 replicas), same clients; CPU µs/req is the gateway process's own CPU time per request; full report: [gateway-cluster.md](gateway-cluster.md).\n\n| op | clients | 1 node req/s | cluster req/s | cluster / 1 node | 1 node CPU µs/req | cluster CPU µs/req | cluster mode costs (µs/req) | redis-benchmark --cluster req/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}`;
}

function wanSummary(j) {
  const rows = j.cells
    .filter((c) => c.route === 'dashboard')
    .map((c) => `| ${c.rtt_ms} | ${c.worker} | ${c.one_client.p50_ms} | ${c.one_client.p95_ms} | ${c.many_clients.requests_per_s} | ${c.round_trips.critical} (${c.round_trips.critical_depth} in sequence) | ${c.round_trips.background} |`);
  return `The dashboard (rate limit + session + item), ${j.settings.clients} clients for req/s:\n\n| RTT ms | Worker | p50 ms | p95 ms | req/s | critical round trips | background |\n|---:|---|---:|---:|---:|---:|---:|\n${rows.join('\n')}`;
}

async function main() {
  await ensureToolchain({ log });
  const previous = existsSync(join(resultsDir, 'bench.json')) ? JSON.parse(readFileSync(join(resultsDir, 'bench.json'), 'utf8')) : {};
  const results = { ...previous };
  const stamp = () => new Date().toISOString();
  results.date = stamp();
  results.command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}${process.env.KEYSPACES ? ` (KEYSPACES=${process.env.KEYSPACES})` : ''}`;
  results.parts_run = [...PARTS];
  results.machine = { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', memory_gib: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version };
  results.load_average_before = loadavg().map((x) => Number(x.toFixed(2)));

  // Each part is saved as soon as it is done, and a part that fails is reported without losing the others.
  const save = () => {
    results.load_average_after = loadavg().map((x) => Number(x.toFixed(2)));
    writeFileSync(join(resultsDir, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(resultsDir, 'bench.md'), render(results));
  };
  results.failed = [];
  const part = async (name, fn) => {
    if (!PARTS.has(name)) return;
    try {
      await fn();
    } catch (error) {
      console.error(error);
      results.failed.push({ part: name, error: String(error?.message ?? error).slice(0, 2000) });
    }
    save();
  };
  await part('routes', async () => {
    const t = performance.now();
    results.routes = { date: stamp(), ...(await routesBench()), seconds: Math.round((performance.now() - t) / 1000) };
  });
  await part('bundle', async () => {
    results.bundle = { date: stamp(), entries: await bundleBench() };
  });
  await part('ratelimit', async () => {
    const info = await child('node', ['bench/ratelimit.mjs'], 'node bench/ratelimit.mjs');
    const j = readJson('ratelimit.json');
    results.ratelimit = { date: stamp(), ...info, summary: ratelimitSummary(j), result: j };
  });
  await part('cache', async () => {
    const info = await child('node', ['bench/cache.mjs'], 'node bench/cache.mjs');
    const j = readJson('cache.json');
    results.cache = { date: stamp(), ...info, summary: cacheSummary(j), result: j };
  });
  await part('gateway', async () => {
    const info = await child('bash', ['bench/gateway.sh'], 'bash bench/gateway.sh');
    const j = readJson('gateway.json');
    // The same clients against the gateway in cluster mode (the binary the first run built).
    const clustered = await child('bash', ['bench/gateway.sh'], 'CLUSTER=1 SKIP_BUILD=1 bash bench/gateway.sh', { CLUSTER: '1', SKIP_BUILD: '1' });
    const c = readJson('gateway-cluster.json');
    info.command += `, then ${clustered.command}`;
    info.seconds += clustered.seconds;
    results.gateway = { date: stamp(), ...info, summary: `${gatewaySummary(j)}\n\n${clusterSummary(j, c)}`, result: j, cluster: c };
  });
  await part('wan', async () => {
    const info = await child('node', ['bench/wan.mjs'], 'node bench/wan.mjs');
    const j = readJson('wan.json');
    results.wan = { date: stamp(), ...info, summary: wanSummary(j) };
  });
  log(`wrote bench/results/bench.{json,md}${results.failed.length ? `; failed: ${results.failed.map((f) => f.part).join(', ')}` : ''}`);
  if (results.failed.length) process.exitCode = 1;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

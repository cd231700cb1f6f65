// `npm run bench -- wan` (or `node bench/wan.mjs`): the Worker routes with the HTTP Redis service a round
// trip away. A delay proxy (bench/lib/delay-proxy.mjs: rtt/2 before forwarding each request, rtt/2 before
// returning its response, keep-alive on both sides) sits between the Workers and redge-gateway; every
// Worker talks to Redis through it. For each RTT the bench measures, per route and Worker:
//   - latency at 1 client (closed loop, warm): p50 and p95;
//   - throughput at WAN_CLIENTS clients (closed loop): requests/s;
//   - round trips per request on the critical path and in the background. The proxy sees them all. A
//     separate pass sends requests one at a time with a pause after each; a proxied request that arrived
//     and was answered inside the client's request window is on the critical path, every other one is
//     background work (`ctx.waitUntil`) the request left behind. redge also reports its own count in
//     `Server-Timing` (`redis;desc="N round trips"` critical, `bg;desc="N round trips"` scheduled for
//     after the response), shown next to the proxy's.
// Then, at RTT 0, redge's Worker with its wrangler.toml as it is against the same Worker with the
// `[assets]` setting `run_worker_first` toggled (added as ["/api/*"] when absent, removed when present):
// what the static-assets lookup in front of the Worker costs on API requests.
//
// Workers: redge's demo Worker (wrangler.toml at the root) and bench/peers/routes-upstash (@upstash/ratelimit
// on @upstash/redis) for every route; for the dashboard the peer runs both ways the SDK docs write it:
// `Promise.all` of the three calls (auto-pipelining batches what is sent in one tick) and each call awaited
// in turn (`/api/dashboard/sequential`). Both Workers sit behind the same static-assets layer.
//
// Environment: WAN_RTTS (ms, default 0,20,50), WAN_CLIENTS (default 16), WAN_ROUNDS (interleaved slices per
// cell, default 2), WAN_SLICE_MS (default 2000), WAN_TRIPS (requests per Worker and route in the round-trip
// pass, default 12), WAN_FAST (0 leaves out redge with leases, the session cache and the colo tier on),
// WAN_ASSETS (0 skips the assets comparison; WAN_RTTS=none runs only that comparison). `--smoke`: RTTs 0 and 20, 300 ms slices,
// one round, 3 requests per trip pass, results in a temporary directory (checks that the bench runs).
//
// Results: bench/results/wan.json and bench/results/wan.md.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ensureToolchain, root } from '../scripts/lib/toolchain.mjs';
import { startDelayProxy } from './lib/delay-proxy.mjs';
import { LIMIT, WINDOW_MS, expected, growKeyspace, redgeVars, requestFor, seed, startBenchStack } from './lib/workers.mjs';

const SMOKE = process.argv.includes('--smoke');
const num = (name, fallback, smoke) => Number(process.env[name] ?? (SMOKE ? smoke : fallback));
const RTTS = process.env.WAN_RTTS === 'none' ? [] : (process.env.WAN_RTTS ?? (SMOKE ? '0,20' : '0,20,50')).split(',').map(Number);
const CLIENTS = num('WAN_CLIENTS', 16, 4);
const ROUNDS = num('WAN_ROUNDS', 2, 1);
const SLICE_MS = num('WAN_SLICE_MS', 2000, 300);
const TRIPS = num('WAN_TRIPS', 12, 3);
const ASSETS = process.env.WAN_ASSETS !== '0';
// The same redge Worker with the settings that answer without Redis where a stated bound allows:
// leased quota (its hot route on a fixed window of the same size), the session cache, the colo tier;
// measured on one hot key.
const FAST = process.env.WAN_FAST !== '0';
const fastVars = {
  ...redgeVars,
  RATELIMIT_POLICIES: JSON.stringify([{ name: 'api', algorithm: 'fixed_window', limit: LIMIT, period_ms: WINDOW_MS }]),
  RATELIMIT_LEASES: 'on',
  SESSION_CACHE_MS: '10000',
  CACHE_COLO_TTL_MS: '10000',
};
const KEYSPACE = 100;
const ROUTES = ['ratelimit', 'session', 'cache', 'dashboard'];
const resultsDir = SMOKE ? mkdtempSync(join(tmpdir(), 'redge-wan-smoke-')) : join(root, 'bench', 'results');
const log = (m) => console.log(`[wan] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clock = () => performance.timeOrigin + performance.now();
const load = () => loadavg().map((x) => Number(x.toFixed(2)));

/** The rate-limit route on one identifier (a hot key). */
const hot = (which, ip) => ({ method: 'POST', path: which === 'redge' ? '/api/ratelimit/api?id=khot' : '/api/ratelimit?id=khot', headers: { 'cf-connecting-ip': ip } });

/** The Workers compared on each route: [label, worker, how its requests are built]. */
function variants(route) {
  // One visitor, one item, one address: the hot case these settings are for (the other variants spread
  // over the key space; their latency does not depend on which key).
  const fast = FAST ? [['redge, hot key (leases, session cache, colo)', 'fast', (i, keys) => (route === 'ratelimit' ? hot('redge', '10.9.9.9') : requestFor('redge', route, 1, keys, '10.9.9.9'))]] : [];
  if (route === 'ratelimit') return [['redge', 'redge', (i, keys, ip) => hot('redge', ip)], ...fast, ['peer', 'peer', (i, keys, ip) => hot('peer', ip)]];
  const list = [
    ['redge', 'redge', (i, keys, ip) => requestFor('redge', route, i, keys, ip)],
    ...fast,
    [route === 'dashboard' ? 'peer (Promise.all)' : 'peer', 'peer', (i, keys, ip) => requestFor('peer', route, i, keys, ip)],
  ];
  if (route === 'dashboard') {
    list.push(['peer (await each)', 'peer', (i, keys, ip) => {
      const r = requestFor('peer', route, i, keys, ip);
      return { ...r, path: r.path.replace('/api/dashboard?', '/api/dashboard/sequential?') };
    }]);
  }
  return list;
}

/** A random identifier of the key space (sessions, items), and a client address of its own. */
function pick() {
  const i = 1 + Math.floor(Math.random() * KEYSPACE);
  return { i, ip: `10.0.${(i >> 8) & 255}.${i & 255}` };
}

/** The round trips a response reports in Server-Timing: `redis` (critical) and `bg` (scheduled after it). */
function reported(response) {
  const header = String(response.headers['server-timing'] ?? '');
  const count = (name) => {
    const m = new RegExp(`(?:^|,)\\s*${name};[^,]*desc="(\\d+) round trips?"`).exec(header);
    return m ? Number(m[1]) : null;
  };
  return { critical: count('redis'), background: count('bg') };
}

const quantile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null);
const round2 = (x) => (x === null || Number.isNaN(x) ? null : Number(x.toFixed(2)));

/** A closed loop of `clients` clients for `ms`: latencies, requests, unexpected answers, reported trips. */
async function loop(worker, build, route, clients, ms, keys, check = (res) => expected(route, res)) {
  const out = { n: 0, unexpected: 0, errors: 0, latencies: [], seconds: 0, samples: [], reported: { critical: 0, background: 0, seen: 0 } };
  const t0 = performance.now();
  const client = async () => {
    while (performance.now() - t0 < ms) {
      const { i, ip } = pick();
      const started = performance.now();
      try {
        const response = await worker.request(build(i, keys, ip));
        out.latencies.push(performance.now() - started);
        out.n++;
        if (!check(response)) {
          out.unexpected++;
          if (out.samples.length < 2) out.samples.push({ status: response.status, body: response.text.slice(0, 200) });
        }
        const r = reported(response);
        if (r.critical !== null) {
          out.reported.critical += r.critical;
          out.reported.background += r.background ?? 0;
          out.reported.seen++;
        }
      } catch (error) {
        out.errors++;
        if (out.samples.length < 2) out.samples.push({ error: String(error) });
        // A Worker that is gone (refused connections) ends the run instead of spinning.
        if (error.code === 'ECONNREFUSED') throw new Error(`${worker.name} refuses connections: is its wrangler dev still running?`);
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

function merge(a, b) {
  if (!a) return b;
  for (const k of ['n', 'unexpected', 'errors', 'seconds']) a[k] += b[k];
  for (const k of ['critical', 'background', 'seen']) a.reported[k] += b.reported[k];
  a.latencies.push(...b.latencies);
  if (a.samples.length < 2) a.samples.push(...b.samples.slice(0, 2 - a.samples.length));
  return a;
}

function summary(raw) {
  const sorted = raw.latencies.sort((x, y) => x - y);
  return {
    requests: raw.n,
    requests_per_s: Math.round(raw.n / Math.max(raw.seconds, 1e-9)),
    p50_ms: round2(quantile(sorted, 0.5)),
    p95_ms: round2(quantile(sorted, 0.95)),
    unexpected: raw.unexpected,
    errors: raw.errors,
    reported_critical: raw.reported.seen ? round2(raw.reported.critical / raw.reported.seen) : null,
    reported_background: raw.reported.seen ? round2(raw.reported.background / raw.reported.seen) : null,
    samples: raw.samples,
  };
}

/**
 * The round-trip pass: `TRIPS` requests one at a time, each followed by a pause long enough for its
 * background work; the proxy's log classifies every proxied request (see the header comment).
 */
async function tripPass(stack, worker, build, route, keys, rtt) {
  await sleep(rtt + 200);
  await stack.proxy.take();
  const windows = [];
  let reportedCritical = 0;
  let reportedBackground = 0;
  let seen = 0;
  for (let k = 0; k < TRIPS; k++) {
    const { i, ip } = pick();
    const start = clock();
    const response = await worker.request(build(i, keys, ip));
    windows.push([start, clock()]);
    const r = reported(response);
    if (r.critical !== null) {
      reportedCritical += r.critical;
      reportedBackground += r.background ?? 0;
      seen++;
    }
    await sleep(rtt + 60);
  }
  await sleep(rtt + 200);
  const { events, clock_offset_ms: offset } = await stack.proxy.take();
  // A proxied request is on a request's critical path when it arrived after the request left the client
  // and was answered before the response came back, with a little slack for the clocks of the two
  // processes (offset-corrected) and timer jitter: a quarter of the RTT, 1 to 5 ms. Background work
  // answers at least one RTT after it starts, so the slack cannot take it in once RTT > 0.
  const slack = Math.max(1, Math.min(5, rtt / 4));
  const inside = ([arrived, answered], [s, e]) => arrived >= s - slack && answered <= e + slack;
  const critical = events.filter((ev) => windows.some((w) => inside(ev, w))).length;
  // Sequential depth: how many of a request's critical round trips happened one after another (the most
  // that do not overlap), which is what the RTT multiplies; concurrent round trips count once.
  let depth = 0;
  for (const w of windows) {
    let end = -Infinity;
    for (const [arrived, answered] of events.filter((ev) => inside(ev, w)).sort((x, y) => x[1] - y[1])) {
      if (arrived >= end) {
        depth++;
        end = answered;
      }
    }
  }
  return {
    requests: TRIPS,
    proxy_round_trips: round2(events.length / TRIPS),
    critical: round2(critical / TRIPS),
    critical_depth: round2(depth / TRIPS),
    background: round2((events.length - critical) / TRIPS),
    reported_critical: seen ? round2(reportedCritical / seen) : null,
    reported_background: seen ? round2(reportedBackground / seen) : null,
    clock_offset_ms: round2(offset),
  };
}

async function wanCells(stack, keys) {
  const cells = [];
  for (const rtt of RTTS) {
    await stack.proxy.setRtt(rtt);
    log(`RTT ${rtt} ms: warming`);
    for (const route of ROUTES) for (const [, w, build] of variants(route)) await loop(stack.workers[w], build, route, 2, 300, keys);
    const load0 = load();
    const latency = {};
    const throughput = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const route of ROUTES) {
        const vs = variants(route);
        const order = round % 2 === 0 ? vs : [...vs].reverse();
        for (const [label, w, build] of order) latency[`${route}/${label}`] = merge(latency[`${route}/${label}`], await loop(stack.workers[w], build, route, 1, SLICE_MS, keys));
        for (const [label, w, build] of order) throughput[`${route}/${label}`] = merge(throughput[`${route}/${label}`], await loop(stack.workers[w], build, route, CLIENTS, SLICE_MS, keys));
      }
    }
    for (const route of ROUTES) {
      for (const [label, w, build] of variants(route)) {
        const trips = await tripPass(stack, stack.workers[w], build, route, keys, rtt);
        const cell = { rtt_ms: rtt, route, worker: label, load_average: load0, one_client: summary(latency[`${route}/${label}`]), many_clients: summary(throughput[`${route}/${label}`]), round_trips: trips };
        cells.push(cell);
        log(`RTT ${rtt} ${route} ${label}: p50 ${cell.one_client.p50_ms} p95 ${cell.one_client.p95_ms} ms, ${cell.many_clients.requests_per_s} req/s at ${CLIENTS}; trips critical ${trips.critical} (depth ${trips.critical_depth}) background ${trips.background} (reported ${trips.reported_critical}/${trips.reported_background})`);
      }
    }
  }
  return cells;
}

/** The root wrangler.toml with `run_worker_first` toggled, absolute paths, no build step (redge is built). */
/** The root's wrangler.toml for a Worker started from `dir` on the already built module (no build step). */
function prebuiltConfig() {
  return readFileSync(join(root, 'wrangler.toml'), 'utf8')
    .replace(/^main\s*=.*$/m, `main = ${JSON.stringify(join(root, 'demo', 'build', 'index.js'))}`)
    .replace(/^directory\s*=.*$/m, `directory = ${JSON.stringify(join(root, 'www'))}`)
    .replace(/^\[build\][\s\S]*?(?=^\[)/m, '');
}

function toggledConfig(dir) {
  const original = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  const has = /^\s*run_worker_first\s*=/m.test(original);
  let text = prebuiltConfig();
  text = has ? text.replace(/^\s*run_worker_first\s*=.*\n/m, '') : text.replace(/^\[assets\]\n/m, '[assets]\nrun_worker_first = ["/api/*"]\n');
  const file = join(dir, 'wrangler.toml');
  writeFileSync(file, text);
  return { file, rootHas: has };
}

const ASSET_ROUTES = {
  'GET /api/nope (404)': { req: () => ({ path: '/api/nope' }), check: (r) => r.status === 404 },
  'GET /api/health': { req: () => ({ path: '/api/health' }), check: (r) => r.status === 200 },
  'POST /api/ratelimit/api (hot key)': { req: () => hot('redge', '10.0.0.1'), check: (r) => r.status === 200 },
  'GET / (the page)': { req: () => ({ path: '/' }), check: (r) => r.status === 200 && r.text.includes('<title>redge demo</title>') },
};

async function assetsCells(stack, rootHas) {
  await stack.proxy.setRtt(0);
  const labels = { redge: rootHas ? 'run_worker_first = ["/api/*"]' : 'assets first (no run_worker_first)', alt: rootHas ? 'assets first (no run_worker_first)' : 'run_worker_first = ["/api/*"]' };
  const raws = {};
  const load0 = load();
  for (const [name, r] of Object.entries(ASSET_ROUTES)) for (const w of ['redge', 'alt']) await loop(stack.workers[w], r.req, name, 2, 300, null, r.check);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, r] of Object.entries(ASSET_ROUTES)) {
      for (const w of round % 2 === 0 ? ['redge', 'alt'] : ['alt', 'redge']) {
        raws[`${name}/${w}/1`] = merge(raws[`${name}/${w}/1`], await loop(stack.workers[w], r.req, name, 1, SLICE_MS, null, r.check));
        raws[`${name}/${w}/n`] = merge(raws[`${name}/${w}/n`], await loop(stack.workers[w], r.req, name, CLIENTS, SLICE_MS, null, r.check));
      }
    }
  }
  const cells = [];
  for (const name of Object.keys(ASSET_ROUTES)) {
    for (const w of ['redge', 'alt']) {
      cells.push({ route: name, setting: labels[w], in_wrangler_toml: w === 'redge', load_average: load0, one_client: summary(raws[`${name}/${w}/1`]), many_clients: summary(raws[`${name}/${w}/n`]) });
    }
  }
  return cells;
}

// ---------------------------------------------------------------------------------------------------------
// Report

const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : 'n/a');

function render(r) {
  const m = r.machine;
  const s = r.settings;
  const out = [`# Worker routes over a WAN (\`npm run bench -- wan\`)

Machine: ${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB RAM, Linux ${m.kernel}, Node ${m.node}. Date: ${r.date}.
Load average (1, 5, 15 min) before: ${r.load_average_before.join(', ')}; after: ${r.load_average_after.join(', ')}. The two cores
are shared with other work, so absolute figures are noisy: Workers alternate in short slices and the comparisons
are best read as ratios. Command: \`${r.command}\` (${r.seconds} s).

Setup: redis-server ← redge-gateway (release) ← **delay proxy** (\`bench/lib/delay-proxy.mjs\`, its own Node
process: each HTTP request waits RTT/2 before it is forwarded and its response RTT/2 before it is returned;
keep-alive connections on both sides, the delay is per request) ← both Workers in \`wrangler dev\` (workerd), each
behind the same static-assets layer (\`[assets]\` of its wrangler.toml). RTT 0 still goes through the proxy.
Settings: RTTs ${s.rtts_ms.join(', ')} ms; ${s.rounds} interleaved slice(s) of ${s.slice_ms} ms per cell; latency at 1 client
(closed loop, after a warm-up), throughput at ${s.clients} clients (closed loop); ${s.trips} requests per round-trip
pass; every rate limit high enough that every request is allowed; cache TTL 1 h, origin at 0 ms; ${s.keyspace}
sessions and items per Worker (random per request), the rate-limit route on one identifier (a hot key).

| route | redge | peer |
|---|---|---|
| ratelimit | \`POST /api/ratelimit/api?id=khot\` (sliding window) | \`POST /api/ratelimit?id=khot\` (\`Ratelimit.slidingWindow\`) |
| session | \`GET /api/session\` | \`GET /api/session\` (\`GET\`, \`SET XX\` when the idle TTL is half gone) |
| cache | \`GET /api/lookup/<i>\` (a hit) | \`GET /api/lookup/<i>\` (cache-aside \`GET\`, a hit) |
| dashboard | \`GET /api/dashboard?item=<i>\` (limit + session + item, one batch) | \`Promise.all\` of the three (\`/api/dashboard\`), or each awaited in turn (\`/api/dashboard/sequential\`) |

Round trips: **critical** = proxied requests that arrived and were answered while the client waited for the
response; **in sequence** = the most of those that did not overlap (what the RTT multiplies: concurrent round
trips cost one RTT together); **background** = the other requests the proxy saw during the pass (work left to \`ctx.waitUntil\`),
per request; **reported** = redge's own \`Server-Timing\` (\`redis\` / \`bg\`; the peer reports none).`];

  for (const rtt of s.rtts_ms) {
    const cells = r.cells.filter((c) => c.rtt_ms === rtt);
    const rows = cells.map((c) => {
      const base = cells.find((x) => x.route === c.route && x.worker === 'redge');
      const t = c.round_trips;
      return `| ${c.route} | ${c.worker} | ${c.one_client.p50_ms} | ${c.one_client.p95_ms} | ${ratio(c.one_client.p50_ms, base.one_client.p50_ms)} | ${c.many_clients.requests_per_s} | ${ratio(base.many_clients.requests_per_s, c.many_clients.requests_per_s)} | ${t.critical} | ${t.critical_depth} | ${t.background} | ${t.reported_critical === null ? '–' : `${t.reported_critical} / ${t.reported_background}`} | ${c.one_client.unexpected + c.many_clients.unexpected} / ${c.one_client.errors + c.many_clients.errors} | ${c.load_average[0]} |`;
    });
    out.push(`## RTT ${rtt} ms

| route | Worker | p50 ms (1 client) | p95 ms | p50 / redge's | req/s (${s.clients} clients) | redge's / this req/s | critical round trips | of them in sequence | background round trips | reported critical / bg | unexpected / errors | load avg |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}`);
  }

  if (r.assets) {
    const rows = r.assets.cells.map((c) => {
      const other = r.assets.cells.find((x) => x.route === c.route && x !== c);
      return `| ${c.route} | ${c.setting}${c.in_wrangler_toml ? ' (wrangler.toml)' : ''} | ${c.one_client.p50_ms} | ${c.one_client.p95_ms} | ${ratio(c.one_client.p50_ms, other.one_client.p50_ms)} | ${c.many_clients.requests_per_s} | ${ratio(c.many_clients.requests_per_s, other.many_clients.requests_per_s)} | ${c.one_client.unexpected + c.many_clients.unexpected} | ${c.load_average[0]} |`;
    });
    out.push(`## The Worker's fixed cost: static assets first, or the Worker first for /api/* (RTT 0)

redge's Worker as \`wrangler.toml\` configures it, against the same build with \`run_worker_first\` toggled in
\`[assets]\` (a generated copy of wrangler.toml). With \`run_worker_first = ["/api/*"]\` requests under /api/ go
straight to the Worker; without it every request first looks for a file in \`www/\`. \`GET /\` checks that the page
is still served from \`www/\` either way. Same slices as above, interleaved.

| request | setting | p50 ms (1 client) | p95 ms | p50 / other's | req/s (${s.clients} clients) | req/s / other's | unexpected | load avg |
|---|---|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}`);
  }
  return `${out.join('\n\n')}\n`;
}

async function main() {
  const t0 = performance.now();
  await ensureToolchain({ log });
  const result = {
    date: new Date().toISOString(),
    command: `${SMOKE ? 'node bench/wan.mjs --smoke' : 'npm run bench -- wan'}${process.env.WAN_RTTS ? ` (WAN_RTTS=${process.env.WAN_RTTS})` : ''}`,
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', memory_gib: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version },
    load_average_before: load(),
    settings: { rtts_ms: RTTS, clients: CLIENTS, rounds: ROUNDS, slice_ms: SLICE_MS, trips: TRIPS, keyspace: KEYSPACE, proxy_delay: 'RTT/2 before forwarding each request, RTT/2 before returning its response' },
  };
  const altDir = mkdtempSync(join(tmpdir(), 'redge-wan-assets-'));
  const alt = toggledConfig(altDir);
  const fastDir = mkdtempSync(join(tmpdir(), 'redge-wan-fast-'));
  writeFileSync(join(fastDir, 'wrangler.toml'), prebuiltConfig());
  const stack = await startBenchStack({
    front: ({ url }) => startDelayProxy({ target: url }),
    extra: [
      ...(ASSETS ? [{ name: 'alt', cwd: altDir, config: alt.file, vars: redgeVars }] : []),
      ...(FAST ? [{ name: 'fast', cwd: fastDir, config: join(fastDir, 'wrangler.toml'), vars: fastVars }] : []),
    ],
  });
  try {
    const keys = await seed(stack);
    await growKeyspace(stack, keys, KEYSPACE);
    result.cells = await wanCells(stack, keys);
    if (ASSETS) result.assets = { cells: await assetsCells(stack, alt.rootHas) };
  } finally {
    await stack.stop();
    rmSync(altDir, { recursive: true, force: true });
    rmSync(fastDir, { recursive: true, force: true });
  }
  result.load_average_after = load();
  result.seconds = Math.round((performance.now() - t0) / 1000);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, 'wan.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(resultsDir, 'wan.md'), render(result));
  log(`wrote ${join(resultsDir, 'wan.md')} (${result.seconds} s)`);
  const bad = [...result.cells, ...(result.assets?.cells ?? [])].filter((c) => c.one_client.errors + c.many_clients.errors > 0 || c.one_client.requests === 0);
  if (bad.length) {
    log(`cells with errors or no requests: ${bad.map((c) => `${c.rtt_ms ?? 'assets'} ${c.route} ${c.worker ?? c.setting}`).join('; ')}`);
    process.exitCode = 1;
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

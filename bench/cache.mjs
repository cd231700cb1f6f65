// Benchmark: cached lookups, redge's Worker (GET /api/lookup/{id}) against a JavaScript Worker doing the
// same cache-aside with the official @upstash/redis SDK (bench/peers/cache-upstash), both in wrangler dev,
// both against the same redge-gateway and redis-server, with the same demo origin set to answer at once
// (DEMO_ORIGIN_LATENCY_MS=0), so that what is measured is the cache's own cost.
//
// Requests are sequential and interleaved (redge, peer, redge, peer ...), so drift on a busy machine hits
// both alike. For each: client-side latency (Node's fetch to wrangler dev, round trip included), the
// Worker's own measure (took_ms) and the Redis round trips the Worker reports.
//
//   node bench/cache.mjs            writes bench/results/cache.md and bench/results/cache.json
//   HITS=500 MISSES=300 node bench/cache.mjs
//
// Not a test: numbers depend on the machine.
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { start } from '../scripts/lib/proc.mjs';
import { freePort, startGateway, startRedis } from '../scripts/lib/stack.mjs';
import { buildEnv, root } from '../scripts/lib/toolchain.mjs';

const HITS = Number(process.env.HITS ?? 500);
const MISSES = Math.min(Number(process.env.MISSES ?? 300), 300);
const WARMUP = 30;
const log = (message) => console.log(`[bench] ${message}`);

async function startWrangler(name, configArgs, vars) {
  const port = await freePort();
  const wrangler = join(root, 'node_modules', '.bin', 'wrangler');
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  const proc = start(wrangler, ['dev', ...configArgs, '--ip', '127.0.0.1', '--port', String(port), '--show-interactive-dev-session=false', ...varArgs], {
    name,
    cwd: root,
    env: buildEnv({ CI: 'true' }),
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20 * 60_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/api/lookup/1`, { signal: AbortSignal.timeout(5000) });
      await response.arrayBuffer();
      if (response.status === 200) return { url, proc };
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${name} did not start:\n${proc.tail()}`);
}

async function get(url, id) {
  const started = performance.now();
  const response = await fetch(`${url}/api/lookup/${id}`);
  const body = await response.json();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`${url}/api/lookup/${id}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return { ms, took: body.took_ms, trips: body.round_trips, status: body.status };
}

const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

function summarize(samples, expected) {
  const ms = samples.map((s) => s.ms);
  const took = samples.map((s) => s.took);
  const trips = samples.map((s) => s.trips);
  return {
    n: samples.length,
    unexpected_status: samples.filter((s) => s.status !== expected).length,
    client_ms: { p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), mean: ms.reduce((a, b) => a + b, 0) / ms.length },
    worker_ms: { p50: quantile(took, 0.5), p99: quantile(took, 0.99) },
    round_trips: { mean: trips.reduce((a, b) => a + b, 0) / trips.length, max: Math.max(...trips) },
  };
}

const redis = await startRedis();
let gateway;
const workers = [];
try {
  gateway = await startGateway({ redisUrl: redis.url, profile: 'release', log });
  const vars = { UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: gateway.token, DEMO_ORIGIN_LATENCY_MS: '0',
    // No route-group rate limit: the lookups measure the cache alone, and a sequential run stays under no budget.
    RATELIMIT_ROUTES: '{}' };
  log('starting redge Worker and the @upstash/redis peer in wrangler dev');
  const redge = await startWrangler('redge', [], vars);
  workers.push(redge);
  // The same Worker with its per-isolate memory tier on (1 s): a hot key then costs no round trip.
  const memory = await startWrangler('redge-memory', [], { ...vars, CACHE_MEMORY_TTL_MS: '1000' });
  workers.push(memory);
  const peer = await startWrangler('peer', ['-c', join(root, 'bench', 'peers', 'cache-upstash', 'wrangler.toml')], vars);
  workers.push(peer);
  const targets = { redge: redge.url, 'redge, memory tier 1 s': memory.url, '@upstash/redis': peer.url };

  for (let i = 0; i < WARMUP; i++) for (const url of Object.values(targets)) await get(url, 1);

  const samples = { hit: {}, miss: {} };
  for (const name of Object.keys(targets)) {
    samples.hit[name] = [];
    samples.miss[name] = [];
  }
  log(`${HITS} hits each`);
  for (let i = 0; i < HITS; i++) for (const [name, url] of Object.entries(targets)) samples.hit[name].push(await get(url, 1));
  log(`${MISSES} misses each (a new id every time, a separate id range per Worker: two share a namespace)`);
  for (let i = 0; i < MISSES; i++) {
    for (const [t, [name, url]] of Object.entries(targets).entries()) samples.miss[name].push(await get(url, 50 + t * 310 + i));
  }
  log(`${HITS} baseline requests each (no Redis)`);
  const baseline = {};
  for (const name of Object.keys(targets)) baseline[name] = [];
  for (let i = 0; i < HITS; i++) {
    for (const [name, url] of Object.entries(targets)) {
      const started = performance.now();
      const response = await fetch(`${url}/api/cache/metrics`);
      await response.arrayBuffer();
      baseline[name].push(performance.now() - started);
    }
  }

  const results = {
    date: new Date().toISOString(),
    cpus: cpus().length,
    node: process.version,
    origin_latency_ms: 0,
    hit: Object.fromEntries(Object.entries(samples.hit).map(([k, v]) => [k, summarize(v, 'hit')])),
    miss: Object.fromEntries(Object.entries(samples.miss).map(([k, v]) => [k, summarize(v, 'miss')])),
    baseline: Object.fromEntries(
      Object.entries(baseline).map(([k, ms]) => [k, { n: ms.length, client_ms: { p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), mean: ms.reduce((a, b) => a + b, 0) / ms.length } }]),
    ),
  };
  const f = (x) => x.toFixed(2);
  const rows = [];
  for (const op of ['hit', 'miss']) {
    for (const [name, r] of Object.entries(results[op])) {
      rows.push(`| ${op} | ${name} | ${r.n} | ${f(r.client_ms.p50)} | ${f(r.client_ms.p99)} | ${f(r.client_ms.mean)} | ${r.worker_ms.p50} | ${r.worker_ms.p99} | ${f(r.round_trips.mean)} | ${r.round_trips.max} | ${r.unexpected_status} |`);
    }
  }
  for (const [name, r] of Object.entries(results.baseline)) {
    rows.push(`| baseline | ${name} | ${r.n} | ${f(r.client_ms.p50)} | ${f(r.client_ms.p99)} | ${f(r.client_ms.mean)} | | | 0 | 0 | |`);
  }
  const md = `# Cached lookups: redge vs @upstash/redis cache-aside (${results.date}, ${results.cpus} CPUs, ${results.node})

Both Workers run in \`wrangler dev\` (workerd) on this machine, against the same redge-gateway (release) and
redis-server, with the demo origin answering at once. Sequential requests, interleaved between the two.
Client ms = Node \`fetch\` to the Worker and back; Worker ms = the Worker's own \`took_ms\` (\`Date.now()\`,
whole milliseconds); round trips = Redis HTTP requests the Worker made for that lookup.
redge: one \`MGET\` (entry + 2 tag generations) per hit; \`MGET\` then \`SET PX\` per miss.
Memory tier 1 s: the same Worker with \`CACHE_MEMORY_TTL_MS=1000\`: a hit within 1 s of the last Redis read is
served from the isolate's memory, without a round trip.
Peer: \`GET\` per hit; \`GET\` then \`SET PX\` per miss (no tags, no envelope, no grace).
Baseline: \`GET /api/cache/metrics\` on both, which touches no Redis: the cost of the Worker itself.

| op | Worker | n | client p50 ms | client p99 ms | client mean ms | Worker p50 ms | Worker p99 ms | round trips (mean) | round trips (max) | unexpected status |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}
`;
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', 'cache.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, 'bench', 'results', 'cache.md'), md);
  console.log(md);
} finally {
  for (const w of workers.reverse()) await w.proc.stop();
  await gateway?.stop();
  await redis.dispose();
}

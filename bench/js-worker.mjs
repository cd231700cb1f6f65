// Benchmark: the example JavaScript Worker on the `redge` npm package (examples/js-worker) vs the same
// routes on @upstash/ratelimit + @upstash/redis (bench/peers/js-worker-upstash), both in `wrangler dev`
// (the same workerd), against one release redge-gateway and one redis-server, in one run.
//
//   node bench/js-worker.mjs            (DURATION=10 seconds per load run, CONCURRENCY=16, ROUNDS=5)
//
// The request measured is the example's main route, GET /items/:id, signed in (a session cookie per
// client), rate-limited per client IP, and served from the cache (50 hot items, warmed first): session
// read, rate-limit check, cache read. The peer runs twice: as the SDKs' docs show it (one await after
// the other) and with the three reads issued at once on an auto-pipelining client. Measures requests/s and p50/p99 latency one client at a time and under
// a closed loop of CONCURRENCY clients, HTTP round trips to the gateway per request (its request log)
// and Redis commands per request (`INFO commandstats` deltas). Writes bench/results/js-worker.{json,md}.
// Not a test: numbers depend on the machine.
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { buildPackage, sizes } from '../scripts/build-js.mjs';
import { start } from '../scripts/lib/proc.mjs';
import { freePort, startRedis } from '../scripts/lib/stack.mjs';
import { buildEnv, root } from '../scripts/lib/toolchain.mjs';
import { commandStats } from './lib/redis.mjs';
import { startCountingGateway } from './lib/gateway.mjs';

const DURATION = Number(process.env.DURATION ?? 10) * 1000;
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ITEMS = 50;
const log = (m) => console.log(`[bench] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check, what, ms = 5 * 60_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`${what} not ready`);
}

async function main() {
  if (!existsSync(join(root, 'js', 'pkg', 'package.json'))) await buildPackage({ log });
  const redis = await startRedis();
  const { url: gatewayUrl, token, counters: gateway, proc: gw } = await startCountingGateway({ redisUrl: redis.url, log });

  const wrangler = join(root, 'node_modules', '.bin', 'wrangler');
  const vars = { UPSTASH_REDIS_REST_URL: gatewayUrl, UPSTASH_REDIS_REST_TOKEN: token, RATE_LIMIT_PER_MINUTE: '1000000', ORIGIN_LATENCY_MS: '50' };
  const dev = async (cwd, name, extra = {}) => {
    const port = await freePort();
    const all = { ...vars, ...extra };
    const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false', ...Object.entries(all).flatMap(([k, v]) => ['--var', `${k}:${v}`])];
    const proc = start(wrangler, args, { name, cwd, env: buildEnv({ CI: 'true' }) });
    const url = `http://127.0.0.1:${port}`;
    await waitUntil(async () => (await fetch(`${url}/health`)).ok, name);
    return { url, proc };
  };
  log('starting the Workers');
  const peerDir = join(root, 'bench', 'peers', 'js-worker-upstash');
  const workers = {
    'redge (npm package, one Batch)': await dev(join(root, 'examples', 'js-worker'), 'wrangler-redge'),
    '@upstash/ratelimit + @upstash/redis (awaits in turn)': await dev(peerDir, 'wrangler-peer'),
    '@upstash (Promise.all, auto-pipelining)': await dev(peerDir, 'wrangler-peer-parallel', { PEER_PARALLEL: 'true' }),
  };
  const targets = Object.fromEntries(Object.entries(workers).map(([name, w]) => [name, w.url]));

  // One signed-in user per client, and the hot items cached, on each target.
  const cookies = {};
  for (const [name, url] of Object.entries(targets)) {
    cookies[name] = [];
    for (let i = 0; i < CONCURRENCY; i++) {
      const response = await fetch(`${url}/sign-in`, { method: 'POST', body: JSON.stringify({ user: `bench-${i}` }) });
      if (!response.ok) throw new Error(`${name}: sign-in failed with ${response.status}: ${await response.text()}`);
      cookies[name].push(response.headers.get('set-cookie').split(';')[0]);
    }
    for (let id = 1; id <= ITEMS; id++) await (await fetch(`${url}/items/${id}`, { headers: { cookie: cookies[name][0] } })).arrayBuffer();
  }

  const commandstats = () => commandStats(redis.port);
  const errors = [];

  /** One closed-loop run; returns raw counts, merged across rounds. */
  async function load(name, url, { duration, concurrency }) {
    const raw = { latencies: [], ok: 0, failed: 0, hits: 0, seconds: 0, trips: 0, commands: 0, calls: 0, per: {} };
    const before = { ...gateway, redis: commandstats() };
    const startedAt = performance.now();
    let n = 0;
    const client = async (c) => {
      while (performance.now() - startedAt < duration) {
        const id = 1 + (n++ % ITEMS);
        const t = performance.now();
        try {
          const response = await fetch(`${url}/items/${id}`, { headers: { cookie: cookies[name][c], 'cf-connecting-ip': `10.0.0.${c}` } });
          const body = await response.text();
          raw.latencies.push(performance.now() - t);
          if (response.status === 200) raw.ok++;
          else {
            raw.failed++;
            if (errors.length < 10) errors.push({ name, status: response.status, body: body.slice(0, 300) });
          }
          if (response.headers.get('x-cache') === 'hit') raw.hits++;
        } catch (error) {
          raw.failed++;
          if (errors.length < 10) errors.push({ name, error: String(error) });
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
    raw.seconds = (performance.now() - startedAt) / 1000;
    await sleep(200); // the gateway's last log lines
    const after = commandstats();
    raw.trips = gateway.requests - before.requests;
    raw.commands = gateway.commands - before.commands;
    raw.calls = after.calls - before.redis.calls;
    for (const [k, v] of Object.entries(after.per)) raw.per[k] = v - (before.redis.per[k] ?? 0);
    return raw;
  }

  const merge = (a, b) => {
    if (!a) return b;
    for (const k of ['ok', 'failed', 'hits', 'seconds', 'trips', 'commands', 'calls']) a[k] += b[k];
    a.latencies.push(...b.latencies);
    for (const [k, v] of Object.entries(b.per)) a.per[k] = (a.per[k] ?? 0) + v;
    return a;
  };

  const summarize = (raw) => {
    const l = raw.latencies.sort((x, y) => x - y);
    const q = (p) => Number((l[Math.min(l.length - 1, Math.floor(p * l.length))] ?? 0).toFixed(2));
    const requests = Math.max(1, raw.ok + raw.failed);
    const per = (x) => Number((x / requests).toFixed(3));
    return {
      requests_per_s: Math.round(raw.ok / raw.seconds),
      p50_ms: q(0.5),
      p99_ms: q(0.99),
      requests: raw.ok,
      failed: raw.failed,
      cache_hit_ratio: per(raw.hits),
      round_trips_per_request: per(raw.trips),
      redis_commands_per_request: per(raw.calls),
      redis_commands_by_name: Object.fromEntries(Object.entries(raw.per).filter(([, v]) => v > 0).map(([k, v]) => [k, per(v)])),
    };
  };

  /** Every target in turn, ROUNDS slices each, so background load on the machine falls on all alike. */
  async function interleaved({ duration, concurrency }) {
    const raws = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, url] of Object.entries(targets)) raws[name] = merge(raws[name], await load(name, url, { duration: duration / ROUNDS, concurrency }));
    }
    return Object.fromEntries(Object.entries(raws).map(([name, raw]) => [name, summarize(raw)]));
  }

  for (const [name, url] of Object.entries(targets)) await load(name, url, { duration: 2000, concurrency: CONCURRENCY }); // warm
  const results = { machine: { cores: cpus().length, node: process.version }, duration_s: DURATION / 1000, concurrency: CONCURRENCY, rounds: ROUNDS, wasm: sizes(), load_average_before: loadavg() };
  results.sequential = await interleaved({ duration: DURATION / 2, concurrency: 1 });
  log(`sequential: ${JSON.stringify(results.sequential)}`);
  results.load = await interleaved({ duration: DURATION, concurrency: CONCURRENCY });
  log(`load: ${JSON.stringify(results.load)}`);
  results.load_average_after = loadavg();
  results.errors = errors;

  writeFileSync(join(root, 'bench', 'results', 'js-worker.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, 'bench', 'results', 'js-worker.md'), report(results));
  log('wrote bench/results/js-worker.{json,md}');
  for (const w of Object.values(workers)) await w.proc.stop();
  await gw.stop();
  await redis.dispose();
}

function report(r) {
  const head = '| target | req/s | p50 ms | p99 ms | round trips / request | Redis commands / request | by command | cache hits | failed |\n|---|---|---|---|---|---|---|---|---|';
  const rows = (table) =>
    Object.entries(table)
      .map(([name, x]) => `| ${name} | ${x.requests_per_s} | ${x.p50_ms} | ${x.p99_ms} | ${x.round_trips_per_request} | ${x.redis_commands_per_request} | ${JSON.stringify(x.redis_commands_by_name).replace(/"/g, '')} | ${x.cache_hit_ratio} | ${x.failed} |`)
      .join('\n');
  const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
  return `# The example JavaScript Worker: redge's npm package vs @upstash/ratelimit + @upstash/redis

Written by \`node bench/js-worker.mjs\`. The Workers (\`examples/js-worker\` on the \`redge\` package, and
\`bench/peers/js-worker-upstash\` on @upstash/ratelimit 2.2.0 + @upstash/redis 1.39.0, run twice) run in
\`wrangler dev\` (the same workerd) against one release redge-gateway and one redis-server on this machine
(${r.machine.cores} cores, Node ${r.machine.node}). The request is \`GET /items/:id\` signed in, rate-limited
per client IP (sliding window), over ${ITEMS} cached items: a session read, a rate-limit check and a cache
read. The redge Worker sends the three in one \`Batch\`; the peer awaits them in turn as the SDKs' docs
show, or issues them at once (\`Promise.all\`) on a client with \`enableAutoPipelining\`. Round trips are
counted from the gateway's request log and Redis commands from \`INFO commandstats\` deltas (commands
inside scripts included), per request.

Targets run in ${r.rounds} interleaved slices each (load average ${r.load_average_before.map((x) => x.toFixed(1)).join(' ')} before,
${r.load_average_after.map((x) => x.toFixed(1)).join(' ')} after). The package's wasm: ${kb(r.wasm.web.raw)} (${kb(r.wasm.web.gzip)} gzipped).

## One client at a time (latency without queueing)

${head}
${rows(r.sequential)}

## ${r.concurrency} concurrent clients, ${r.duration_s} s per target

${head}
${rows(r.load)}

"cache hits" is the share of answers with \`x-cache: hit\`. Both Workers keep items fresh for 30 s, so
during the run entries age: the redge Worker then serves the stale entry at once and refreshes it in the
background (one more round trip, through \`ctx.waitUntil\`), while the peer misses and waits for the
origin (50 ms) before writing.

What the redge Worker does in those round trips that the peer does not: the session token is verified
(SHA-256 of its secret, compared in constant time) and the session's idle expiry slides (written at most
once per half window) under an absolute cap; the cache read also reads the entry's tag generations, so
\`invalidateTag\` needs no scan, and a stale entry is served while one background refresh runs. The
rate limiters' accuracy is compared in \`bench/results/ratelimit.md\`.

${r.errors.length ? `## Errors seen\n\n\`\`\`\n${JSON.stringify(r.errors, null, 2)}\n\`\`\`\n` : 'No request failed.\n'}`;
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

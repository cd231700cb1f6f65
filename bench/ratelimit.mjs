// Benchmark: redge's rate-limit route vs a JavaScript Worker using @upstash/ratelimit (+ @upstash/redis),
// both in `wrangler dev` (the same workerd), against the same redge-gateway and redis-server, in one run.
//
//   node bench/ratelimit.mjs            (DURATION=10 seconds per load run, CONCURRENCY=16)
//
// Measures, per target: requests/s and p50/p99 latency under a closed loop of CONCURRENCY clients (every
// request allowed, distinct identifiers), HTTP round trips to the gateway and Redis commands per decision
// (the gateway's request log and `INFO commandstats` deltas), the same under a hot identifier that is
// refused (block caches at work), and accuracy: allowed count on a fixed schedule against the exact
// answer of the algorithm's definition. Writes bench/results/ratelimit.{json,md}. Not a test: numbers
// depend on the machine.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start } from '../scripts/lib/proc.mjs';
import { freePort, startRedis } from '../scripts/lib/stack.mjs';
import { buildEnv, root } from '../scripts/lib/toolchain.mjs';
import { commandStats } from './lib/redis.mjs';
import { startCountingGateway } from './lib/gateway.mjs';

const DURATION = Number(process.env.DURATION ?? 10) * 1000;
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const log = (m) => console.log(`[bench] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Accuracy: 10 per 2 s, one request every 50 ms for 6 s (4x the rate), one identifier.
const ACC = { limit: 10, period_ms: 2_000, every_ms: 50, count: 120 };
// Token bucket: 5 tokens every second (continuous for redge, in steps for the peer), 10 at most.
const BUCKET = { limit: 5, period_ms: 1_000, burst: 10 };
const BIG = { limit: 1_000_000, period_ms: 3_600_000 };

const redgePolicies = [
  { name: 'gcra', algorithm: 'gcra', ...BIG },
  { name: 'sliding', algorithm: 'sliding_window', ...BIG },
  { name: 'bucket', algorithm: 'token_bucket', ...BIG },
  { name: 'hot', algorithm: 'gcra', limit: 10, period_ms: 3_600_000 },
  { name: 'acc-sliding', algorithm: 'sliding_window', limit: ACC.limit, period_ms: ACC.period_ms },
  { name: 'acc-bucket', algorithm: 'token_bucket', ...BUCKET },
  { name: 'acc-log', algorithm: 'sliding_log', limit: ACC.limit, period_ms: ACC.period_ms },
];
const peerPolicies = [
  { name: 'sliding', algorithm: 'sliding_window', ...BIG },
  { name: 'bucket', algorithm: 'token_bucket', ...BIG, burst: BIG.limit },
  { name: 'hot', algorithm: 'sliding_window', limit: 10, period_ms: 3_600_000 },
  { name: 'acc-sliding', algorithm: 'sliding_window', limit: ACC.limit, period_ms: ACC.period_ms },
  { name: 'acc-bucket', algorithm: 'token_bucket', ...BUCKET },
];

function waitUntil(check, what, ms = 20 * 60_000) {
  const deadline = Date.now() + ms;
  return (async () => {
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      await sleep(250);
    }
    throw new Error(`${what} not ready`);
  })();
}

async function main() {
  const redis = await startRedis();
  log(`redis on ${redis.port}`);
  const { url: gatewayUrl, token, counters: gateway, proc: gw } = await startCountingGateway({ redisUrl: redis.url, log });

  const wrangler = join(root, 'node_modules', '.bin', 'wrangler');
  const vars = (extra) => [
    '--var', `UPSTASH_REDIS_REST_URL:${gatewayUrl}`, '--var', `UPSTASH_REDIS_REST_TOKEN:${token}`,
    ...Object.entries(extra).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
  ];
  const devArgs = async (port) => ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false'];
  const redgePort = await freePort();
  const redgeProc = start(wrangler, [...(await devArgs(redgePort)), ...vars({ RATELIMIT_POLICIES: JSON.stringify(redgePolicies), RATELIMIT_ROUTES: '{}', RATELIMIT_TIMEOUT_MS: '1000' })], {
    name: 'wrangler-redge', cwd: root, env: buildEnv({ CI: 'true' }),
  });
  const peerPort = await freePort();
  const peerProc = start(wrangler, [...(await devArgs(peerPort)), ...vars({ PEER_POLICIES: JSON.stringify(peerPolicies) })], {
    name: 'wrangler-peer', cwd: join(root, 'bench', 'peers', 'upstash-ratelimit'), env: buildEnv({ CI: 'true' }),
  });
  const redgeUrl = `http://127.0.0.1:${redgePort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  log('building and starting both Workers');
  await waitUntil(async () => (await fetch(`${redgeUrl}/api/ratelimit`)).ok, 'redge worker');
  await waitUntil(async () => (await fetch(`${peerUrl}/none`)).status === 404, 'peer worker');

  const targets = {
    'redge gcra': (id) => [`${redgeUrl}/api/ratelimit/gcra?id=${id}`, 'POST'],
    'redge sliding_window': (id) => [`${redgeUrl}/api/ratelimit/sliding?id=${id}`, 'POST'],
    'redge token_bucket': (id) => [`${redgeUrl}/api/ratelimit/bucket?id=${id}`, 'POST'],
    'upstash sliding_window': (id) => [`${peerUrl}/sliding?id=${id}`, 'POST'],
    'upstash token_bucket': (id) => [`${peerUrl}/bucket?id=${id}`, 'POST'],
  };
  // The same Workers answering without Redis or rate limiting at all: the runtime and framework floor.
  const floor = {
    'redge unknown route (404)': () => [`${redgeUrl}/api/nothing`, 'GET'],
    'peer unknown policy (404)': () => [`${peerUrl}/nothing`, 'GET'],
  };
  const hot = {
    'redge gcra': (id) => [`${redgeUrl}/api/ratelimit/hot?id=${id}`, 'POST'],
    'upstash sliding_window': (id) => [`${peerUrl}/hot?id=${id}`, 'POST'],
  };

  const results = { machine: { cores: (await import('node:os')).cpus().length, node: process.version }, duration_s: DURATION / 1000, concurrency: CONCURRENCY, rounds: ROUNDS, load: {}, hot: {}, accuracy: {}, errors: [] };
  const commandstats = () => commandStats(redis.port);

  /** One closed-loop run of `duration` ms; returns raw counts, to be merged across rounds. */
  async function load(name, target, { idFor, duration, concurrency = CONCURRENCY }) {
    const raw = { latencies: [], ok: 0, refused: 0, failed: 0, degraded: {}, seconds: 0, trips: 0, commands: 0, calls: 0, per: {} };
    const before = { ...gateway, redis: commandstats() };
    const startedAt = performance.now();
    let n = 0;
    const client = async () => {
      while (performance.now() - startedAt < duration) {
        const [url, method] = target(idFor(n++));
        const t = performance.now();
        try {
          const response = await fetch(url, { method });
          const text = await response.text();
          let body = null;
          try {
            body = JSON.parse(text);
          } catch {
            body = { not_json: text.slice(0, 300) };
          }
          raw.latencies.push(performance.now() - t);
          // A floor target answers 404 by design: that is its success.
          if (response.status === 200 || (response.status === 404 && name.endsWith('(404)'))) raw.ok++;
          else if (response.status === 429) raw.refused++;
          else {
            raw.failed++;
            if (results.errors.length < 10) results.errors.push({ name, status: response.status, body });
          }
          const reason = body?.decision?.reason;
          if (reason && /fail|fallback/.test(reason)) raw.degraded[reason] = (raw.degraded[reason] ?? 0) + 1;
        } catch (error) {
          raw.failed++;
          if (results.errors.length < 10) results.errors.push({ name, error: String(error) });
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, client));
    raw.seconds = (performance.now() - startedAt) / 1000;
    await sleep(200); // let the gateway's last log lines arrive
    const after = commandstats();
    raw.trips = gateway.requests - before.requests;
    raw.commands = gateway.commands - before.commands;
    raw.calls = after.calls - before.redis.calls;
    for (const [k, v] of Object.entries(after.per)) raw.per[k] = v - (before.redis.per[k] ?? 0);
    return raw;
  }

  function merge(a, b) {
    if (!a) return b;
    for (const k of ['ok', 'refused', 'failed', 'seconds', 'trips', 'commands', 'calls']) a[k] += b[k];
    a.latencies.push(...b.latencies);
    for (const [k, v] of Object.entries(b.degraded)) a.degraded[k] = (a.degraded[k] ?? 0) + v;
    for (const [k, v] of Object.entries(b.per)) a.per[k] = (a.per[k] ?? 0) + v;
    return a;
  }

  function summarize(raw) {
    const latencies = raw.latencies.sort((x, y) => x - y);
    const q = (p) => Number((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(2));
    const decisions = Math.max(1, raw.ok + raw.refused);
    const per = (x) => Number((x / decisions).toFixed(3));
    return {
      requests_per_s: Math.round((raw.ok + raw.refused) / raw.seconds),
      p50_ms: q(0.5),
      p99_ms: q(0.99),
      allowed: raw.ok,
      refused: raw.refused,
      failed: raw.failed,
      degraded: raw.degraded,
      round_trips_per_decision: per(raw.trips),
      http_commands_per_decision: per(raw.commands),
      redis_commands_per_decision: per(raw.calls),
      redis_commands_by_name: Object.fromEntries(Object.entries(raw.per).filter(([, v]) => v > 0).map(([k, v]) => [k, per(v)])),
    };
  }

  /** Runs every target in turn for ROUNDS slices each, so that the machine's background load hits all alike. */
  async function interleaved(table, { idFor, duration, concurrency }) {
    const raws = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, target] of Object.entries(table)) {
        raws[name] = merge(raws[name], await load(name, target, { idFor: idFor(name, round), duration: duration / ROUNDS, concurrency }));
      }
    }
    return Object.fromEntries(Object.entries(raws).map(([name, raw]) => [name, summarize(raw)]));
  }

  // Warm both (scripts loaded, isolates compiled), then measure.
  for (const [name, target] of Object.entries(targets)) await load(name, target, { idFor: (n) => `warm-${n}`, duration: 1500 });
  results.load_average_before = (await import('node:os')).loadavg();
  const run = `${Date.now()}`;
  results.sequential = await interleaved(targets, { idFor: (name, round) => (n) => `seq-${run}-${round}-${n}`, duration: DURATION / 2, concurrency: 1 });
  log(`sequential: ${JSON.stringify(results.sequential)}`);
  results.load = await interleaved(targets, { idFor: (name, round) => (n) => `load-${run}-${round}-${n}`, duration: DURATION });
  log(`load: ${JSON.stringify(results.load)}`);
  results.hot = await interleaved(hot, { idFor: (name) => () => `hot-${run}-${name}`, duration: Math.min(DURATION, 5000) });
  log(`hot: ${JSON.stringify(results.hot)}`);
  results.floor = await interleaved(floor, { idFor: () => () => '', duration: Math.min(DURATION, 5000) });
  log(`floor: ${JSON.stringify(results.floor)}`);
  results.load_average_after = (await import('node:os')).loadavg();

  // Accuracy on a fixed schedule, both targets at once (same timestamps).
  const schedule = async (url) => {
    const sent = [];
    const answers = [];
    const t0 = Date.now();
    for (let i = 0; i < ACC.count; i++) {
      const due = t0 + i * ACC.every_ms;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      sent.push(Date.now());
      answers.push(fetch(url, { method: 'POST' }).then((r) => r.status));
    }
    const statuses = await Promise.all(answers);
    return { sent, allowed: statuses.filter((s) => s === 200).length, other: statuses.filter((s) => s !== 200 && s !== 429).length };
  };
  const accRun = `${Date.now()}`;
  const [rs, ps, rb, pb, rl] = await Promise.all([
    schedule(`${redgeUrl}/api/ratelimit/acc-sliding?id=acc-${accRun}`),
    schedule(`${peerUrl}/acc-sliding?id=acc-${accRun}`),
    schedule(`${redgeUrl}/api/ratelimit/acc-bucket?id=acc-${accRun}`),
    schedule(`${peerUrl}/acc-bucket?id=acc-${accRun}`),
    schedule(`${redgeUrl}/api/ratelimit/acc-log?id=acc-${accRun}`),
  ]);
  results.accuracy = {
    schedule: `${ACC.count} requests, one every ${ACC.every_ms} ms, one identifier`,
    sliding_window: {
      quota: `${ACC.limit} per ${ACC.period_ms} ms`,
      exact_sliding_log: exactSlidingLog(rs.sent, ACC.limit, ACC.period_ms),
      redge: rs.allowed,
      upstash: ps.allowed,
      errors: rs.other + ps.other,
    },
    sliding_log: {
      quota: `${ACC.limit} per ${ACC.period_ms} ms`,
      exact_sliding_log: exactSlidingLog(rl.sent, ACC.limit, ACC.period_ms),
      redge: rl.allowed,
      errors: rl.other,
    },
    token_bucket: {
      quota: `${BUCKET.burst} tokens, refilled ${BUCKET.limit} per ${BUCKET.period_ms} ms`,
      exact_continuous: exactBucket(rb.sent, BUCKET, false),
      exact_stepwise: exactBucket(pb.sent, BUCKET, true),
      redge: rb.allowed,
      upstash: pb.allowed,
      errors: rb.other + pb.other,
    },
  };
  log(`accuracy: ${JSON.stringify(results.accuracy)}`);

  writeFileSync(join(root, 'bench', 'results', 'ratelimit.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, 'bench', 'results', 'ratelimit.md'), report(results));
  log('wrote bench/results/ratelimit.{json,md}');
  await redgeProc.stop();
  await peerProc.stop();
  await gw.stop();
  await redis.dispose();
}

/** How many requests a true sliding window (a log of every accepted request) allows; refused ones never count. */
function exactSlidingLog(sent, limit, period) {
  const accepted = [];
  for (const t of sent) {
    const inWindow = accepted.filter((a) => a > t - period).length;
    if (inWindow < limit) accepted.push(t);
  }
  return accepted.length;
}

/** A token bucket's exact count: continuous refill, or `limit` tokens at each whole period since the first request. */
function exactBucket(sent, { limit, period_ms, burst }, stepwise) {
  let tokens = burst;
  let last = sent[0];
  let allowed = 0;
  for (const t of sent) {
    if (stepwise) {
      const steps = Math.floor((t - last) / period_ms);
      tokens = Math.min(burst, tokens + steps * limit);
      last += steps * period_ms;
    } else {
      tokens = Math.min(burst, tokens + ((t - last) * limit) / period_ms);
      last = t;
    }
    if (tokens >= 1) {
      tokens -= 1;
      allowed++;
    }
  }
  return allowed;
}

function report(r) {
  const rows = (table = {}) =>
    Object.entries(table)
      .map(([name, x]) => `| ${name} | ${x.requests_per_s} | ${x.p50_ms} | ${x.p99_ms} | ${x.round_trips_per_decision} | ${x.redis_commands_per_decision} | ${JSON.stringify(x.redis_commands_by_name).replace(/"/g, '')} | ${x.failed} | ${JSON.stringify(x.degraded).replace(/"/g, '')} |`)
      .join('\n');
  const head = '| target | req/s | p50 ms | p99 ms | round trips / decision | Redis commands / decision | by command | failed | degraded |\n|---|---|---|---|---|---|---|---|---|';
  const a = r.accuracy;
  return `# Rate limiting: redge vs @upstash/ratelimit 2.2.0

Written by \`node bench/ratelimit.mjs\`. Both Workers run in \`wrangler dev\` (the same workerd) against one
release redge-gateway and one redis-server on this machine (${r.machine.cores} cores, Node ${r.machine.node}).
Closed loop: ${r.concurrency} concurrent clients for ${r.duration_s} s per target. Round trips are counted from
the gateway's request log; Redis commands from \`INFO commandstats\` deltas (commands run inside scripts
included), both divided by the number of decisions.

Targets run in ${r.rounds} interleaved slices each, so the machine's background load (load average ${r.load_average_before.map((x) => x.toFixed(1)).join(' ')}
before, ${r.load_average_after.map((x) => x.toFixed(1)).join(' ')} after) falls on every target alike.

## One client at a time (latency without queueing)

${head}
${rows(r.sequential)}

## Every request allowed (distinct identifiers)

${head}
${rows(r.load)}

## One hot identifier, limit 10 per hour (almost every request refused)

${head}
${rows(r.hot)}

## Floor: each Worker answering 404 without touching Redis

${head}
${rows(r.floor)}

## Accuracy on a fixed schedule (${a.schedule})

| algorithm | quota | exact | redge | @upstash/ratelimit |
|---|---|---|---|---|
| sliding window | ${a.sliding_window.quota} | ${a.sliding_window.exact_sliding_log} (true sliding log) | ${a.sliding_window.redge} (weighted two-bucket window) | ${a.sliding_window.upstash} |
| sliding log | ${a.sliding_log.quota} | ${a.sliding_log.exact_sliding_log} | ${a.sliding_log.redge} | (no such algorithm) |
| token bucket | ${a.token_bucket.quota} | ${a.token_bucket.exact_continuous} continuous (redge's definition) / ${a.token_bucket.exact_stepwise} stepwise (the peer's) | ${a.token_bucket.redge} | ${a.token_bucket.upstash} |

The official SDK ran against redge-gateway unchanged${r.errors.some((e) => e.name.startsWith('upstash')) ? ' but with the errors listed below' : ', without a single error'}.

${r.errors.length ? `## Errors seen\n\n\`\`\`\n${JSON.stringify(r.errors, null, 2)}\n\`\`\`\n` : ''}`;
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

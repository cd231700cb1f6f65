// The deployment's metrics: two Workers (two `wrangler dev`, so two isolates) on one gateway add their
// counters to one Redis hash in the background, and a scrape of either reports the totals of both.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { roundTrips, sleep } from './env.mjs';
import { redisCommand, startExtraWorker } from './workers.mjs';

const FLUSH_MS = 1_000;
const key = `e2e:metrics:${randomUUID()}`;
let a;
let b;
before(async () => {
  const vars = { METRICS_FLUSH_MS: String(FLUSH_MS), METRICS_KEY: key };
  [a, b] = [await startExtraWorker({ vars }), await startExtraWorker({ vars })];
});
after(async () => {
  await a?.stop();
  await b?.stop();
  await redisCommand('DEL', key);
});

/** Samples of a Prometheus text exposition: `{ name, labels, value }`. */
function parse(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, k, v] of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: match[1], labels, value: match[4] === '+Inf' ? Infinity : Number(match[4]) });
  }
  return samples;
}

const value = (samples, name, labels = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);

async function scrape(worker, scope) {
  const response = await fetch(`${worker.url}/api/metrics${scope ? `?scope=${scope}` : ''}`);
  assert.equal(response.status, 200);
  return { response, samples: parse(await response.text()) };
}

async function get(worker, path, times) {
  for (let i = 0; i < times; i++) await (await fetch(`${worker.url}${path}`)).arrayBuffer();
}

test('two isolates report one set of totals: what each counted, added up', async () => {
  // An id no other suite looks up (they use 2 to 999): the demo origin does not know it, so the
  // lookups are a miss, then remembered "not found" answers.
  const item = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  await get(a, '/api/health', 7);
  await get(b, '/api/health', 5);
  await get(a, `/api/lookup/${item}`, 2);
  await get(b, `/api/lookup/${item}`, 3);
  // Past one flush interval, one more request to each sends what it gained in the background.
  await sleep(FLUSH_MS + 200);
  await get(a, '/api/health', 1);
  await get(b, '/api/health', 1);
  await sleep(500);

  const [ownA, ownB] = [(await scrape(a, 'isolate')).samples, (await scrape(b, 'isolate')).samples];
  const { response, samples: total } = await scrape(a);
  assert.equal(response.headers.get('x-redge-metrics-scope'), 'deployment');
  assert.equal(roundTrips(response), 1, 'the scrape reads the totals in one round trip');

  const health = { route: '/api/health', status: '200' };
  const counted = value(ownA, 'redge_http_requests_total', health) + value(ownB, 'redge_http_requests_total', health);
  assert.ok(counted >= 14, `each isolate counted its requests: ${counted}`);
  assert.equal(value(total, 'redge_http_requests_total', health), counted, 'the totals are both isolates\' counts');
  for (const outcome of ['hit', 'miss', 'stale', 'negative', 'memory_hit', 'bypass']) {
    const labels = { group: 'lookup', outcome };
    assert.equal(
      value(total, 'redge_cache_lookups_total', labels),
      value(ownA, 'redge_cache_lookups_total', labels) + value(ownB, 'redge_cache_lookups_total', labels),
      outcome,
    );
  }
  const lookups = value(total, 'redge_cache_lookups_total', { group: 'lookup' });
  assert.equal(lookups, 5);
  const answered = ['hit', 'memory_hit', 'stale', 'negative']
    .reduce((sum, outcome) => sum + value(total, 'redge_cache_lookups_total', { group: 'lookup', outcome }), 0);
  assert.ok(Math.abs(value(total, 'redge_cache_hit_ratio', { group: 'lookup' }) - answered / lookups) < 1e-6);
  // Histograms add up too: every request of either isolate is in the +Inf bucket of the latency.
  const latency = { route: '/api/health', le: '+Inf' };
  assert.equal(
    value(total, 'redge_http_request_duration_seconds_bucket', latency),
    value(ownA, 'redge_http_request_duration_seconds_bucket', latency) + value(ownB, 'redge_http_request_duration_seconds_bucket', latency),
  );
  // Gauges describe one isolate: only `?scope=isolate` has them.
  assert.equal(total.some((s) => s.name === 'redge_isolate_start_time_seconds'), false);
  assert.equal(ownA.some((s) => s.name === 'redge_isolate_start_time_seconds'), true);
});

// The Worker as an application: problem details, CORS, Server-Timing, metrics. Real workerd, real gateway
// and redis-server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corsOrigin, workerUrl } from './env.mjs';

const api = (path, init) => fetch(`${workerUrl}${path}`, init);

/** `Server-Timing` parsed into { name: { dur, desc } }. */
function serverTiming(response) {
  const header = response.headers.get('server-timing');
  assert.ok(header, 'no Server-Timing header');
  const entries = {};
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().split(';');
    const entry = {};
    for (const param of params) {
      const [key, value] = param.split('=');
      entry[key] = key === 'dur' ? Number(value) : value.replace(/^"|"$/g, '');
    }
    entries[name] = entry;
  }
  return entries;
}

async function assertProblem(response, status) {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type'), /^application\/problem\+json/);
  const body = await response.json();
  assert.equal(body.status, status);
  assert.equal(body.type, 'about:blank');
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  return body;
}

test('health costs exactly one Redis round trip and says so in Server-Timing', async () => {
  const response = await api('/api/health');
  assert.equal(response.status, 200);
  const timing = serverTiming(response);
  assert.equal(timing.redis.desc, '1 round trip');
  // Background work this request scheduled: at most the isolate's metrics flush (one round trip).
  assert.match(timing.bg.desc, /^[01] round trips?$/);
  assert.ok(timing.redis.dur >= 0);
  assert.ok(timing.total.dur >= timing.redis.dur, JSON.stringify(timing));
  const body = await response.json();
  assert.equal(body.redis.latency_ms, timing.redis.dur);
});

test('routes without Redis report zero round trips, errors included', async () => {
  for (const path of ['/api', '/api/metrics?scope=isolate', '/api/nope']) {
    const response = await api(path);
    await response.arrayBuffer();
    assert.equal(serverTiming(response).redis.desc, '0 round trips', path);
  }
});

test('GET /api lists the route table', async () => {
  const response = await api('/api');
  assert.equal(response.status, 200);
  const { routes } = await response.json();
  const paths = routes.map((r) => `${r.method} ${r.path}`);
  assert.ok(paths.includes('GET /api/health'), paths.join(', '));
  assert.ok(paths.includes('GET /api/metrics'), paths.join(', '));
});

test('errors are problem details: unknown route, wrong method, bad path encoding', async () => {
  const missing = await assertProblem(await api('/api/no/such/route'), 404);
  assert.match(missing.detail, /\/api\/no\/such\/route/);
  const wrong = await api('/api/health', { method: 'DELETE' });
  const body = await assertProblem(wrong, 405);
  assert.equal(wrong.headers.get('allow'), 'GET, HEAD, OPTIONS');
  assert.match(body.detail, /DELETE/);
  await assertProblem(await api('/api/health', { method: 'PUT', body: '{}' }), 405);
  // Also on paths outside /api that match no static file: JSON, never an HTML error page.
  await assertProblem(await api('/no-such-file.html'), 404);
});

test('HEAD is answered by the GET route', async () => {
  const response = await api('/api/health', { method: 'HEAD' });
  assert.equal(response.status, 200);
  assert.equal((await response.arrayBuffer()).byteLength, 0);
});

test('a preflight from an allowed origin is a 204 with credentials', async () => {
  const response = await api('/api/health', {
    method: 'OPTIONS',
    headers: { origin: corsOrigin, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'content-type' },
  });
  assert.equal(response.status, 204);
  assert.equal(response.headers.get('access-control-allow-origin'), corsOrigin);
  assert.equal(response.headers.get('access-control-allow-credentials'), 'true');
  assert.match(response.headers.get('access-control-allow-methods'), /PATCH/);
  assert.match(response.headers.get('access-control-allow-headers'), /content-type/);
  assert.equal(response.headers.get('access-control-max-age'), '600');
  assert.match(response.headers.get('vary'), /Origin/);
});

test('a preflight from another origin is refused with a problem and no CORS grant', async () => {
  const response = await api('/api/health', {
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  const body = await assertProblem(response, 403);
  assert.match(body.detail, /CORS_ALLOWED_ORIGINS/);
  assert.equal(response.headers.get('access-control-allow-origin'), null);
  assert.equal(response.headers.get('access-control-allow-credentials'), null);
  assert.match(response.headers.get('vary'), /Origin/);
});

test('a preflight asking for a header the API does not take is refused', async () => {
  const response = await api('/api/health', {
    method: 'OPTIONS',
    headers: { origin: corsOrigin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-custom' },
  });
  const body = await assertProblem(response, 403);
  assert.match(body.detail, /x-custom/);
});

test('plain OPTIONS lists the methods of a path', async () => {
  const response = await api('/api/health', { method: 'OPTIONS' });
  assert.equal(response.status, 204);
  assert.equal(response.headers.get('allow'), 'GET, HEAD, OPTIONS');
});

test('responses grant CORS to allowed origins only, and always vary on Origin', async () => {
  const allowed = await api('/api/health', { headers: { origin: corsOrigin } });
  assert.equal(allowed.headers.get('access-control-allow-origin'), corsOrigin);
  assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
  assert.match(allowed.headers.get('access-control-expose-headers'), /Server-Timing/);
  assert.equal(allowed.headers.get('timing-allow-origin'), corsOrigin);
  assert.match(allowed.headers.get('vary'), /Origin/);

  for (const headers of [{ origin: 'https://evil.example' }, {}]) {
    const response = await api('/api/health', { headers });
    assert.equal(response.headers.get('access-control-allow-origin'), null);
    assert.equal(response.headers.get('access-control-allow-credentials'), null);
    assert.match(response.headers.get('vary'), /Origin/);
  }
  // Error responses carry the grant too, so a cross-origin caller can read the problem.
  const missing = await api('/api/nope', { headers: { origin: corsOrigin } });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('access-control-allow-origin'), corsOrigin);
});

/** Parses the text exposition into [{ name, labels, value }], checking each line's syntax. */
function parseMetrics(text) {
  const samples = [];
  const types = new Map();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const type = line.match(/^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/);
    if (type) {
      assert.ok(!types.has(type[1]), `TYPE twice for ${type[1]}`);
      types.set(type[1], type[2]);
      continue;
    }
    const match = line.match(sample);
    assert.ok(match, `not a sample line: ${line}`);
    const labels = {};
    for (const [, key, value] of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    const value = match[4] === '+Inf' ? Infinity : Number(match[4]);
    assert.ok(!Number.isNaN(value) || match[4] === 'NaN', line);
    samples.push({ name: match[1], labels, value });
  }
  return { samples, types };
}

// This isolate's counters and gauges (the deployment's totals are tested in metrics.test.mjs).
async function scrape() {
  const response = await api('/api/metrics?scope=isolate');
  assert.equal(response.status, 200);
  return parseMetrics(await response.text());
}

test('GET /api/metrics is the Prometheus text format with requests, round trips and latency', async () => {
  await (await api('/api/health')).arrayBuffer();
  await (await api('/api/definitely-missing')).arrayBuffer();
  const response = await api('/api/metrics?scope=isolate');
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-redge-metrics-scope'), 'isolate');
  assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const { samples, types } = parseMetrics(await response.text());
  assert.equal(types.get('redge_http_requests_total'), 'counter');
  assert.equal(types.get('redge_redis_round_trip_duration_seconds'), 'histogram');
  assert.equal(types.get('redge_isolate_start_time_seconds'), 'gauge');
  const find = (name, labels = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  const health = find('redge_http_requests_total', { route: '/api/health', status: '200', method: 'GET' });
  assert.equal(health.length, 1);
  assert.ok(health[0].value >= 1);
  // Unknown paths are one bounded series, never the raw path.
  assert.ok(find('redge_http_requests_total', { route: 'unmatched', status: '404' }).length === 1);
  assert.equal(samples.some((s) => s.labels.route === '/api/definitely-missing'), false);
  assert.ok(find('redge_redis_round_trips_total')[0].value >= 1);
  const inf = find('redge_redis_round_trip_duration_seconds_bucket', { le: '+Inf' })[0];
  const count = find('redge_redis_round_trip_duration_seconds_count')[0];
  assert.equal(inf.value, count.value);
});

test('the metrics show each health request costing exactly one round trip', async () => {
  const perRequest = ({ samples }, le) =>
    samples.find((s) => s.name === 'redge_redis_round_trips_per_request_bucket' && s.labels.route === '/api/health' && s.labels.le === le)?.value ?? 0;
  const before = await scrape();
  for (let i = 0; i < 5; i += 1) await (await api('/api/health')).arrayBuffer();
  const after = await scrape();
  // Five more observations, all in the le="1" bucket and none in le="0".
  assert.equal(perRequest(after, '+Inf') - perRequest(before, '+Inf'), 5);
  assert.equal(perRequest(after, '1') - perRequest(before, '1'), 5);
  assert.equal(perRequest(after, '0') - perRequest(before, '0'), 0);
});

test('the metrics count cache lookups by outcome and rate-limit decisions by policy', async () => {
  const value = ({ samples }, name, labels) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
  const id = 1_000 - Math.floor(Math.random() * 100);
  await (await api(`/api/lookup/${id}`, { method: 'DELETE', headers: { origin: new URL(workerUrl).origin } })).arrayBuffer();
  const before = await scrape();
  await (await api(`/api/lookup/${id}`)).arrayBuffer();
  await (await api(`/api/lookup/${id}`)).arrayBuffer();
  const after = await scrape();
  const lookups = (s, outcome) => value(s, 'redge_cache_lookups_total', { group: 'lookup', outcome });
  assert.equal(lookups(after, 'miss') - lookups(before, 'miss'), 1);
  assert.ok(lookups(after, 'hit') - lookups(before, 'hit') >= 1);
  assert.equal(after.types.get('redge_cache_lookups_total'), 'counter');
  const origin = (s) => value(s, 'redge_cache_origin_calls_total', { group: 'lookup' });
  assert.ok(origin(after) - origin(before) >= 1);
  assert.equal(value(after, 'redge_cache_breaker_state', { state: 'closed' }), 1);
  const decisions = (s) => value(s, 'redge_ratelimit_decisions_total', { policy: 'api', outcome: 'allowed', reason: 'within_limit' });
  assert.ok(decisions(after) - decisions(before) >= 2, 'the two lookups spent from the api policy');
  assert.equal(after.types.get('redge_ratelimit_blocked_identifiers'), 'gauge');
});

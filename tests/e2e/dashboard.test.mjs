// The combined route and the route middleware, in real workerd, against the real gateway and redis-server:
// GET /api/dashboard needs a rate-limit decision, the session and a cached item, for one round trip.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { redis, roundTrips, workerUrl } from './env.mjs';

const origin = new URL(workerUrl).origin;
const unique = (name) => `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
/** An item id of the demo origin (1..1000), invalidated first so that its first lookup is a miss. */
const freshItem = (() => {
  let next = 10 + Math.floor(Math.random() * 40);
  return async () => {
    const id = next++;
    const response = await fetch(`${workerUrl}/api/lookup/${id}`, { method: 'DELETE', headers: { origin } });
    assert.equal(response.status, 204);
    return id;
  };
})();

async function call(method, path, { cookie, body } = {}) {
  const headers = {};
  if (cookie) headers.cookie = cookie;
  if (method !== 'GET') headers.origin = origin;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${workerUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null, roundTrips: roundTrips(response) };
}

async function signIn(user) {
  const answer = await call('POST', '/api/session', { body: { user } });
  assert.equal(answer.status, 201);
  const [pair] = answer.headers.getSetCookie()[0].split(';');
  return { cookie: pair, session: answer.body.session };
}

/** A GET from another loopback address: the Worker sees it as another client IP. */
function fromAddress(localAddress, path) {
  return new Promise((resolve, reject) => {
    const url = new URL(path, workerUrl);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, localAddress }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('anonymous: the decision and the item, a miss then a hit; the hit is one round trip', async () => {
  const item = await freshItem();
  const miss = await call('GET', `/api/dashboard?item=${item}`);
  assert.equal(miss.status, 200);
  assert.equal(miss.body.signed_in, false);
  assert.equal(miss.body.session, null);
  assert.equal(miss.body.ratelimit.allowed, true);
  assert.equal(miss.body.ratelimit.policy, 'api');
  assert.equal(miss.body.item.id, item);
  assert.equal(miss.body.item.status, 'miss');
  assert.equal(miss.body.item.value.name, `Item ${item}`);
  assert.equal(miss.roundTrips, 2, 'check and read together, then the write of the origin\'s answer');
  assert.match(miss.headers.get('ratelimit-policy'), /^"api";q=1000;w=60$/);
  assert.match(miss.headers.get('ratelimit'), /^"api";r=\d+;t=\d+$/);

  const hit = await call('GET', `/api/dashboard?item=${item}`);
  assert.equal(hit.body.item.status, 'hit');
  assert.deepEqual(hit.body.item.value, miss.body.item.value);
  assert.equal(hit.roundTrips, 1);
  assert.equal(hit.body.round_trips, 1);
});

test('signed in: rate limit, session and cached item in ONE round trip', async () => {
  const item = await freshItem();
  await call('GET', `/api/dashboard?item=${item}`); // fills the cache
  const user = unique('dana');
  const { cookie, session } = await signIn(user);
  const answer = await call('GET', `/api/dashboard?item=${item}`, { cookie });
  assert.equal(answer.status, 200);
  assert.equal(answer.body.signed_in, true);
  assert.equal(answer.body.session.id, session.id);
  assert.equal(answer.body.session.user, user);
  assert.equal(answer.body.ratelimit.allowed, true);
  assert.equal(answer.body.item.status, 'hit');
  assert.equal(answer.roundTrips, 1, 'the three reads went out in one pipeline');
  const timing = answer.headers.get('server-timing');
  assert.match(timing, /redis;dur=\d+;desc="1 round trip"/);
  assert.match(timing, /cache;desc="hit"/);
});

test('a cookie that names no live session is an anonymous dashboard, and the cookie is cleared', async () => {
  const { cookie } = await signIn(unique('erin'));
  assert.equal((await call('DELETE', '/api/session', { cookie })).status, 204);
  const answer = await call('GET', '/api/dashboard', { cookie });
  assert.equal(answer.status, 200);
  assert.equal(answer.body.signed_in, false);
  assert.match(answer.headers.getSetCookie()[0] ?? '', /^redge_session=; Max-Age=0/);
});

test('bad item ids are 400 problems, still rate limited', async () => {
  for (const bad of ['abc', '0', '-1', '+3', '1.5', '99999999999999999999999']) {
    const answer = await call('GET', `/api/dashboard?item=${encodeURIComponent(bad)}`);
    assert.equal(answer.status, 400, bad);
    assert.match(answer.headers.get('content-type'), /application\/problem\+json/);
    assert.match(answer.body.detail, /positive integer/);
    assert.match(answer.headers.get('ratelimit') ?? '', /^"api";/, 'the check ran');
  }
});

test('the middleware refuses a client over its budget with 429, and only that client', async () => {
  // Another loopback address is another client IP: this test spends a budget nobody else uses.
  const address = `127.0.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
  const first = await fromAddress(address, '/api/dashboard');
  assert.equal(first.status, 200);
  const remaining = Number(/r=(\d+)/.exec(first.headers.ratelimit)[1]);
  assert.ok(remaining > 0 && remaining < 200, `remaining ${remaining}`);
  // The budget refills while the requests run (1000 per minute), so they go 25 at a time to outpace it.
  let refused = null;
  for (let sent = 0; sent < 2_000 && !refused; sent += 25) {
    const answers = await Promise.all(Array.from({ length: 25 }, () => fromAddress(address, '/api/lookup/1')));
    for (const answer of answers) {
      if (answer.status === 429) refused ??= answer;
      else assert.equal(answer.status, 200, 'the lookup routes spend from the same policy');
    }
  }
  assert.ok(refused, 'never refused');
  assert.match(refused.headers['content-type'], /application\/problem\+json/);
  assert.equal(refused.body.decision.allowed, false);
  assert.equal(refused.body.decision.policy, 'api');
  assert.ok(refused.body.decision.retry_after_ms > 0);
  assert.equal(refused.headers['retry-after'], String(Math.ceil(refused.body.decision.retry_after_ms / 1000)));
  assert.match(refused.headers.ratelimit, /^"api";r=0;t=\d+$/);
  assert.match(refused.body.detail, /retry in \d+ ms/);

  // The budget refills one request every 60 ms: a burst on the dashboard meets the same empty budget.
  const dashboards = await Promise.all(Array.from({ length: 25 }, () => fromAddress(address, '/api/dashboard')));
  assert.ok(dashboards.some((d) => d.status === 429), 'the dashboard spends from the same budget');
  for (const d of dashboards) assert.ok([200, 429].includes(d.status), String(d.status));
  // Every route with Redis work spends from it: the health check and the rate-limit demo too.
  for (const path of ['/api/health', '/api/ratelimit/api']) {
    const answers = await Promise.all(Array.from({ length: 10 }, () => fromAddress(address, path)));
    const refusal = answers.find((a) => a.status === 429);
    assert.ok(refusal, `${path} spends from the same budget`);
    assert.equal(refusal.body.decision.policy, 'api', path);
  }
  // A route without Redis work is never charged.
  assert.equal((await fromAddress(address, '/api')).status, 200, 'GET /api needs no Redis');
  assert.equal((await call('GET', '/api/dashboard')).status, 200, 'other clients are not affected');
});

test('Redis down: anonymous dashboards fail open, signed-in ones fail closed with the cookie kept', async () => {
  const item = await freshItem();
  const { cookie, session } = await signIn(unique('frank'));
  await redis('save');
  await redis('stop');
  try {
    const anonymous = await call('GET', `/api/dashboard?item=${item}`);
    assert.equal(anonymous.status, 200, JSON.stringify(anonymous.body));
    assert.equal(anonymous.body.item.value.name, `Item ${item}`, 'served by the origin');
    assert.equal(anonymous.body.ratelimit.allowed, true);
    assert.equal(anonymous.body.ratelimit.reason, 'local_fallback', 'the isolate\'s own limiter decided (RATELIMIT_FAILURE=local)');

    const signedIn = await call('GET', `/api/dashboard?item=${item}`, { cookie });
    assert.equal(signedIn.status, 503);
    assert.match(signedIn.body.detail, /session is kept/);
    assert.equal(signedIn.headers.getSetCookie().length, 0, 'the cookie is never cleared because Redis is down');
  } finally {
    await redis('start');
  }
  let back = null;
  for (let i = 0; i < 100 && !back; i++) {
    const answer = await call('GET', '/api/dashboard', { cookie });
    if (answer.status === 200 && answer.body.signed_in) back = answer;
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(back, 'the signed-in dashboard did not come back');
  assert.equal(back.body.session.id, session.id);
  // A restarted Redis has forgotten every script, and the first use of each costs one more round trip
  // (EVALSHA, NOSCRIPT, EVAL). Use the session scripts once, so that later tests count from a warm stack.
  const warm = await signIn(unique('warm'));
  assert.equal((await call('PATCH', '/api/session', { cookie: warm.cookie, body: { data: {} } })).status, 200);
  assert.equal((await call('GET', '/api/sessions', { cookie: warm.cookie })).status, 200);
  assert.equal((await call('DELETE', '/api/session', { cookie: warm.cookie })).status, 204);
});

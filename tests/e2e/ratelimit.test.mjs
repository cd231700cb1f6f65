// The rate-limit routes in real workerd, against the real gateway and redis-server, with the demo's
// default policies ("burst": GCRA, 5 per 10 s).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, test } from 'node:test';
import { eventually, redis, workerUrl } from './env.mjs';

const fresh = () => `e2e-${randomUUID()}`;

// Other suites restart Redis, which forgets the script this isolate has already run: its first call then
// costs one NOSCRIPT repair (src/client/script.rs). Run it once so the round-trip counts are the steady state.
before(async () => {
  const response = await fetch(`${workerUrl}/api/ratelimit/burst?id=${fresh()}`, { method: 'POST' });
  await response.arrayBuffer();
});

async function call(method, policy, id, body) {
  const init = { method };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`${workerUrl}/api/ratelimit/${policy}?id=${encodeURIComponent(id)}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

test('lists the configured policies', async () => {
  const response = await fetch(`${workerUrl}/api/ratelimit`);
  assert.equal(response.status, 200);
  const { policies } = await response.json();
  const burst = policies.find((p) => p.name === 'burst');
  assert.deepEqual(burst, { name: 'burst', algorithm: 'gcra', limit: 5, period_ms: 10_000, burst: 5 });
  for (const p of policies) assert.deepEqual(Object.keys(p).sort(), ['algorithm', 'burst', 'limit', 'name', 'period_ms']);
});

test('the 5th request passes, the 6th is a 429 problem with exact headers, the 7th costs no round trip', async () => {
  const id = fresh();
  for (let i = 1; i <= 5; i++) {
    const { status, body, headers } = await call('POST', 'burst', id);
    assert.equal(status, 200, `request ${i}`);
    assert.deepEqual(Object.keys(body.decision).filter((k) => k !== 'reset_ms').sort(),
      ['allowed', 'limit', 'policy', 'reason', 'remaining', 'reset_s', 'retry_after_ms']);
    assert.equal(body.decision.allowed, true);
    assert.equal(body.decision.remaining, 5 - i);
    assert.equal(body.round_trips, 1, 'one round trip per decision');
    assert.equal(headers.get('ratelimit-policy'), '"burst";q=5;w=10');
    assert.equal(headers.get('ratelimit'), `"burst";r=${5 - i};t=${body.decision.reset_s}`);
    assert.equal(headers.get('retry-after'), null);
  }
  const refused = await call('POST', 'burst', id);
  assert.equal(refused.status, 429);
  assert.match(refused.headers.get('content-type'), /application\/problem\+json/);
  assert.equal(refused.body.status, 429);
  const d = refused.body.decision;
  assert.equal(d.allowed, false);
  assert.equal(d.policy, 'burst');
  assert.equal(d.reason, 'limit_exceeded');
  assert.ok(d.retry_after_ms > 0 && d.retry_after_ms <= 2_000, `${d.retry_after_ms}`);
  assert.equal(refused.headers.get('retry-after'), String(Math.ceil(d.retry_after_ms / 1000)));
  assert.match(refused.headers.get('ratelimit'), /^"burst";r=0;t=\d+$/);

  const again = await call('POST', 'burst', id);
  assert.equal(again.status, 429);
  assert.equal(again.body.decision.reason, 'blocked_locally');
  assert.equal(again.body.round_trips, 0, 'refused from the block cache');
});

test('peeking never charges; reset gives the whole budget back', async () => {
  const id = fresh();
  await call('POST', 'burst', id, { cost: 3 });
  for (let i = 0; i < 3; i++) {
    const peek = await call('GET', 'burst', id);
    assert.equal(peek.status, 200);
    assert.equal(peek.body.decision.remaining, 2);
  }
  const reset = await call('DELETE', 'burst', id);
  assert.equal(reset.status, 204);
  const peek = await call('GET', 'burst', id);
  assert.equal(peek.body.decision.remaining, 5);
});

test('bad costs are 400 problems, a cost above the burst too; unknown policies are 404', async () => {
  const id = fresh();
  for (const body of [{ cost: -1 }, { cost: 1.5 }, { cost: 'two' }, 'not json', [1]]) {
    const answer = await call('POST', 'burst', id, body);
    assert.equal(answer.status, 400, JSON.stringify(body));
    assert.match(answer.headers.get('content-type'), /application\/problem\+json/);
  }
  const tooMuch = await call('POST', 'burst', id, { cost: 6 });
  assert.equal(tooMuch.status, 400);
  assert.match(tooMuch.body.detail, /more than rate-limit policy "burst" allows at once \(5\)/);
  const ok = await call('POST', 'burst', id, { cost: 5 });
  assert.equal(ok.status, 200, 'nothing was charged by the refused requests');
  const unknown = await call('POST', 'nope', id);
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.detail, /burst/);
});

test('with Redis down the isolate limits locally (the default failure policy), then Redis takes over again', async () => {
  const id = fresh();
  await redis('stop');
  try {
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await call('POST', 'burst', id));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 429]);
    for (const a of answers) assert.equal(a.body.decision.reason, 'local_fallback');
  } finally {
    await redis('start');
  }
  const back = await eventually(async () => {
    const answer = await call('POST', 'burst', fresh());
    return answer.body?.decision?.reason === 'within_limit' ? answer : null;
  });
  assert.ok(back, 'Redis decides again after it restarted');
});

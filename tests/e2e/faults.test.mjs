// Faults the other suites do not inject: the gateway stopped and restarted, and Redis paused (SIGSTOP,
// a Redis that hangs without closing its connections) then resumed. During each fault every capability
// must follow its failure policy (sessions 503 with the cookie kept, rate limits decided locally, lookups
// answered by the origin, health 503); afterwards all of them recover without restarting the Worker,
// everything acknowledged before the fault is still there, and nothing answered 503 was applied.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Browser } from './browser.mjs';
import { eventually, gateway, redis, workerUrl } from './env.mjs';

const unique = (name) => `${name}-${randomUUID()}`;

/** Lookup ids no other test uses (the cache suite takes 100..899 and 5100..5899). */
const freshId = (() => {
  let next = 900 + Math.floor(Math.random() * 50);
  return () => next++;
})();

async function getJson(path, init) {
  const response = await fetch(`${workerUrl}${path}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

const lookup = (id) => getJson(`/api/lookup/${id}`);
const spend = (id) => getJson(`/api/ratelimit/burst?id=${encodeURIComponent(id)}`, { method: 'POST' });

/** A signed-in browser whose session holds one acknowledged write, and a cached lookup. */
async function before() {
  // Start from a healthy stack: an earlier suite may have restarted Redis moments ago.
  assert.ok(await eventually(async () => (await getJson('/api/health')).status === 200), 'the stack is not healthy');
  const browser = new Browser();
  const signedIn = await browser.signIn(unique('fault'));
  assert.equal(signedIn.status, 201);
  const saved = await browser.call('PATCH', '/api/session', { body: { data: { step: 'before' }, version: 0 } });
  assert.equal(saved.status, 200);
  assert.equal(saved.body.session.version, 1);
  const cachedId = freshId();
  assert.equal((await getJson(`/api/lookup/${cachedId}`, { method: 'DELETE' })).status, 204);
  assert.equal((await lookup(cachedId)).body.status, 'miss');
  assert.equal((await lookup(cachedId)).body.status, 'hit');
  return { browser, id: signedIn.body.session.id, cookie: browser.cookie, cachedId };
}

/** What every capability must answer while Redis cannot be reached. */
async function duringFault({ browser, cookie }) {
  const health = await getJson('/api/health');
  assert.equal(health.status, 503);
  assert.match(health.headers.get('content-type'), /application\/problem\+json/);
  assert.equal(health.body.redis.ok, false);

  // Sessions fail closed, and never log the visitor out.
  for (const [method, path, body] of [
    ['GET', '/api/session'],
    ['PATCH', '/api/session', { data: { step: 'during' }, version: 1 }],
  ]) {
    const answer = await browser.call(method, path, { body });
    assert.equal(answer.status, 503, `${method} ${path}`);
    assert.match(answer.headers.get('content-type'), /application\/problem\+json/);
    assert.match(answer.body.detail, /session is kept/);
    assert.equal(answer.headers.get('retry-after'), '1');
    assert.equal(answer.setCookies.length, 0, `${method} ${path} touched the cookie`);
    assert.equal(browser.cookie, cookie);
  }
  // Signing in again (as someone else) would replace this session. It is answered 503, and the browser
  // keeps its cookie; it must not be applied later either (see `recovered`).
  const switched = await browser.signIn(unique('switch'));
  assert.equal(switched.status, 503);
  assert.equal(switched.setCookies.length, 0);
  assert.equal(browser.cookie, cookie);
  const lastWriteAt = Date.now();
  // A newcomer cannot sign in, and gets no cookie.
  const newcomer = new Browser();
  const refused = await newcomer.signIn(unique('newcomer'));
  assert.equal(refused.status, 503);
  assert.match(refused.body.detail, /try again shortly/);
  assert.equal(refused.setCookies.length, 0);

  // Rate limiting falls back to the isolate's own limiter (the default failure policy), which still limits.
  const id = unique('fault-rl');
  const decisions = [];
  for (let i = 0; i < 6; i++) decisions.push(await spend(id));
  assert.deepEqual(decisions.map((d) => d.status), [200, 200, 200, 200, 200, 429]);
  for (const d of decisions) assert.equal(d.body.decision.reason, 'local_fallback');

  // Lookups fail open to the origin.
  const itemId = freshId();
  const bypass = await lookup(itemId);
  assert.equal(bypass.status, 200);
  assert.equal(bypass.body.status, 'bypass');
  assert.equal(bypass.body.value.id, itemId);
  assert.equal(bypass.body.value.name, `Item ${itemId}`);
  return { lastWriteAt };
}

/** Everything works again, with the state from before the fault. */
async function recovered({ browser, id, cookie, cachedId }) {
  const back = await eventually(async () => {
    const answer = await browser.call('GET', '/api/session');
    return answer.status === 200 ? answer : null;
  }, { timeoutMs: 20_000, intervalMs: 250 });
  assert.ok(back, 'the session did not come back');
  assert.equal(back.body.session.id, id);
  assert.equal(browser.cookie, cookie, 'the same cookie works');
  // The write acknowledged before the fault is there, and the writes answered 503 were not applied:
  // a hung Redis that resumes after a write's deadline runs it as a no-op.
  const { version, data } = back.body.session;
  assert.deepEqual({ version, data }, { version: 1, data: { step: 'before' } });
  const next = await browser.call('PATCH', '/api/session', { body: { data: { step: 'after' }, version } });
  assert.equal(next.status, 200, 'writes work again');
  assert.equal(next.body.session.version, version + 1);

  const decided = await eventually(async () => {
    const answer = await spend(unique('after-rl'));
    return answer.body?.decision?.reason === 'within_limit' ? answer : null;
  }, { timeoutMs: 20_000, intervalMs: 250 });
  assert.ok(decided, 'Redis did not decide rate limits again');

  assert.ok(await eventually(async () => (await getJson('/api/health')).status === 200), 'health did not recover');

  // The breaker skips Redis for a few seconds after the failures, then the entry cached before is used.
  const hit = await eventually(async () => {
    const answer = await lookup(cachedId);
    return answer.body.status === 'hit' ? answer : null;
  }, { timeoutMs: 20_000, intervalMs: 500 });
  assert.ok(hit, 'the entry cached before the fault was not served again');
  assert.equal(hit.body.value.id, cachedId);
}

test('gateway stopped: each capability follows its failure policy; restarted: all recover, nothing acknowledged lost', async () => {
  const state = await before();
  await gateway('stop');
  try {
    await duringFault(state);
  } finally {
    await gateway('start');
  }
  await recovered(state);
});

test('Redis paused (SIGSTOP): each capability answers within its deadline per its policy; resumed: all recover', async () => {
  const state = await before();
  await redis('pause');
  try {
    const { lastWriteAt } = await duringFault(state);
    // Hung past the last write's deadline (the Worker's 1 s Redis timeout + 0.5 s of clock slack),
    // so that Redis reaches every write of the fault late.
    const wait = lastWriteAt + 2_500 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  } finally {
    await redis('resume');
  }
  await recovered(state);
});

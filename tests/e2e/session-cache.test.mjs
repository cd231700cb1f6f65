// SESSION_CACHE_MS in real workerd: a Worker that serves sessions it read recently from the isolate,
// next to the suite's Worker (another isolate, no cache) on the same Redis.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Browser } from './browser.mjs';
import { eventually } from './env.mjs';
import { startExtraWorker } from './workers.mjs';

const CACHE_MS = 8_000;
const unique = (name) => `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
let cached;
before(async () => {
  cached = await startExtraWorker({ vars: { SESSION_CACHE_MS: String(CACHE_MS) } });
});
after(async () => {
  await cached?.stop();
});

/** This isolate's session-cache counter for `outcome` (`hit` or `miss`). */
async function reads(outcome) {
  const text = await (await fetch(`${cached.url}/api/metrics?scope=isolate`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`redge_session_cache_reads_total{outcome="${outcome}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a session read again within SESSION_CACHE_MS is answered from the isolate', async () => {
  const browser = new Browser(cached.url);
  assert.equal((await browser.signIn(unique('ada'))).status, 201);
  const [hits, misses] = [await reads('hit'), await reads('miss')];
  const first = await browser.call('GET', '/api/session');
  assert.equal(first.status, 200);
  assert.equal(await reads('miss'), misses + 1, 'the first read goes to Redis');
  const second = await browser.call('GET', '/api/session');
  assert.equal(second.status, 200);
  assert.deepEqual(second.body.session, first.body.session);
  assert.equal(await reads('hit'), hits + 1, 'the second is served from memory');
});

test('a sign-out through this Worker takes effect at once', async () => {
  const browser = new Browser(cached.url);
  assert.equal((await browser.signIn(unique('bob'))).status, 201);
  assert.equal((await browser.call('GET', '/api/session')).status, 200);
  const cookie = browser.cookie;
  assert.equal((await browser.call('DELETE', '/api/session')).status, 204);
  browser.cookie = cookie;
  assert.equal((await browser.call('GET', '/api/session')).status, 401);
});

test('a sign-out through another isolate is seen here within SESSION_CACHE_MS', async () => {
  const here = new Browser(cached.url);
  assert.equal((await here.signIn(unique('cy'))).status, 201);
  assert.equal((await here.call('GET', '/api/session')).status, 200);
  // The suite's Worker (no cache, another isolate) ends the session.
  const elsewhere = new Browser();
  elsewhere.cookie = here.cookie;
  const ended = Date.now();
  assert.equal((await elsewhere.call('DELETE', '/api/session')).status, 204);
  assert.equal((await elsewhere.call('GET', '/api/session')).status, 401, 'ended in Redis at once');
  // Here it lasts until the cached read is SESSION_CACHE_MS old, never much longer.
  const seen = await eventually(async () => (await here.call('GET', '/api/session')).status === 401, { timeoutMs: CACHE_MS + 5_000, intervalMs: 250 });
  assert.ok(seen, `still signed in ${Date.now() - ended} ms after the sign-out`);
});

// An example Worker (examples/js-worker, and in a second run examples/ts-worker: the same Worker in
// TypeScript) in `wrangler dev`, on the built package, against the real gateway and Redis: a
// rate-limited, session-aware, cached route end to end.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

const base = process.env.REDGE_JS_WORKER_URL;
if (!base) throw new Error('REDGE_JS_WORKER_URL is not set: run the JavaScript suite with `npm run test:js`');

/** A client IP of its own per test (workerd passes `cf-connecting-ip` through in `wrangler dev`), so
 * that signed-out requests of different tests do not share a rate-limit budget. */
const freshIp = () => `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 256)).join('.')}`;
const get = (path, { cookie, ip = freshIp() } = {}) => fetch(`${base}${path}`, { headers: { 'cf-connecting-ip': ip, ...(cookie ? { cookie } : {}) } });
const trips = (response) => Number(response.headers.get('x-redis-round-trips'));

/** An item id no earlier test touched (the cache keeps items for 30 s). */
const anyItem = () => 1 + Math.floor(Math.random() * 1000);

async function signIn(user) {
  const response = await fetch(`${base}/sign-in`, { method: 'POST', body: JSON.stringify({ user }) });
  assert.equal(response.status, 200);
  const setCookie = response.headers.get('set-cookie');
  assert.match(setCookie, /^redge_session=[^;]+; Max-Age=1800; Path=\/; HttpOnly; SameSite=Lax$/);
  return { cookie: setCookie.split(';')[0], body: await response.json() };
}

test('signed out: a miss fetches from the origin, the next request is a cached hit', async () => {
  const ip = freshIp();
  const id = anyItem();
  const first = await get(`/items/${id}`, { ip });
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { item: { id, name: `Item ${id}`, priceCents: (id * 137) % 10_000 }, user: null, remaining: 4 });
  assert.equal(first.headers.get('x-cache'), 'miss');
  assert.equal(first.headers.get('ratelimit-policy'), '"default";q=5;w=60');
  assert.equal(trips(first), 2, 'rate limit and cache read together, then the write after the miss');
  const second = await get(`/items/${id}`, { ip });
  assert.equal(second.headers.get('x-cache'), 'hit');
  assert.equal(trips(second), 1);
  assert.equal((await second.json()).item.name, `Item ${id}`);
});

test('signed in: session, rate limit and cached hit in one round trip; the sixth request in a minute is refused', async () => {
  const user = `ada-${randomUUID()}`;
  const { cookie, body } = await signIn(user);
  assert.equal(body.user, user);
  const ip = freshIp();
  const statuses = [];
  let last;
  for (let i = 0; i < 6; i++) {
    last = await get('/items/12', { cookie, ip });
    statuses.push(last.status);
    if (last.status === 200) assert.equal((await last.json()).user, user);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
  assert.match(last.headers.get('retry-after'), /^\d+$/);
  assert.match(last.headers.get('ratelimit'), /^"default";r=0;t=\d+$/);
  assert.equal(last.headers.get('x-cache'), null, 'a refused request does not touch the cache');
  const refused = await last.json();
  assert.equal(refused.error, 'too many requests');
  assert.ok(refused.retryAfterMs > 0);
  // Another client has its own budget; a signed-in cached hit is one round trip.
  const other = await signIn(`grace-${randomUUID()}`);
  const hit = await get('/items/12', { cookie: other.cookie });
  assert.equal(hit.status, 200);
  assert.equal(hit.headers.get('x-cache'), 'hit');
  assert.equal(trips(hit), 1);
  assert.equal((await hit.json()).user, other.body.user);
});

test('signing out ends the session and clears the cookie', async () => {
  const { cookie } = await signIn(`eve-${randomUUID()}`);
  const out = await fetch(`${base}/sign-out`, { method: 'POST', headers: { cookie } });
  assert.deepEqual(await out.json(), { ended: 1 });
  assert.match(out.headers.get('set-cookie'), /^redge_session=; Max-Age=0;/);
  const after = await get('/items/13', { cookie });
  assert.equal((await after.json()).user, null, 'the old cookie no longer opens a session');
});

test('unknown items are 404 and remembered; bad input is 400', async () => {
  const ip = freshIp();
  const missing = 1001 + Math.floor(Math.random() * 1e9);
  const first = await get(`/items/${missing}`, { ip });
  assert.equal(first.status, 404);
  assert.equal(first.headers.get('x-cache'), 'miss');
  const second = await get(`/items/${missing}`, { ip });
  assert.equal(second.headers.get('x-cache'), 'negative');
  assert.equal((await get('/items/abc')).status, 400);
  const badSignIn = await fetch(`${base}/sign-in`, { method: 'POST', body: 'not json' });
  assert.equal(badSignIn.status, 400);
  const unknown = await get('/nowhere');
  assert.equal(unknown.status, 404);
  assert.ok((await unknown.json()).routes.includes('GET /items/:id'));
});

test('popular items: a value the colo tier holds is served with no Redis round trip at all', async () => {
  const id = anyItem();
  const first = await fetch(`${base}/popular/${id}`);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-cache'), 'miss');
  assert.ok(trips(first) >= 1, 'a miss asks Redis');
  // The colo copy is written after the response (ctx.waitUntil); a later request finds it.
  let fromColo = null;
  for (let attempt = 0; attempt < 50 && !fromColo; attempt++) {
    const response = await fetch(`${base}/popular/${id}`);
    assert.equal(response.status, 200);
    if (response.headers.get('x-cache-tier') === 'colo') fromColo = response;
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(fromColo, 'no request was served from the colo tier within 5 s');
  assert.equal(fromColo.headers.get('x-cache'), 'hit');
  assert.equal(trips(fromColo), 0);
  assert.deepEqual((await fromColo.json()).item, (await first.json()).item);
});

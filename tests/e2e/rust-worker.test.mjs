// The example Rust Worker (examples/rust-worker), built by its own wrangler.toml (worker-build on the
// example crate) and run in `wrangler dev` against the test gateway: sign-in after the example's own
// password check, the session read back, a cached item route rate-limited per client, sign-out.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startWorker } from '../../scripts/lib/stack.mjs';
import { gatewayToken, gatewayUrl } from './workers.mjs';

const root = new URL('../..', import.meta.url).pathname;
if (!gatewayUrl) throw new Error('REDGE_E2E_GATEWAY is not set: run the end-to-end suite with `npm run test:e2e`');
const password = randomUUID();
let base;
let worker;

before(async () => {
  // A cold build of the example takes a few minutes; later runs only re-link what changed.
  worker = await startWorker({
    gatewayUrl,
    token: gatewayToken,
    vars: { DEMO_PASSWORD: password },
    cwd: join(root, 'examples', 'rust-worker'),
    readyPath: '/me',
  });
  base = worker.url;
});
after(async () => {
  await worker?.stop();
});

/** A client address of its own per test (wrangler dev passes `cf-connecting-ip` through), so that tests
 * never share a rate-limit budget, whatever ran before against the same Redis. */
const freshIp = () => `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 256)).join('.')}`;
/** An item id (1 to 1000 exist) that no earlier run is likely to have cached. */
const anyItem = () => 1 + Math.floor(Math.random() * 1000);
const get = (path, { cookie, ip = freshIp() } = {}) => fetch(`${base}${path}`, { headers: { 'cf-connecting-ip': ip, ...(cookie ? { cookie } : {}) } });
const signIn = (user, secret) => fetch(`${base}/sign-in`, { method: 'POST', body: JSON.stringify({ user, password: secret }) });

async function signedIn(user) {
  const response = await signIn(user, password);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { user });
  const setCookie = response.headers.get('set-cookie');
  assert.match(setCookie, /^redge_session=[^;]+; Max-Age=1800; Path=\/; HttpOnly; SameSite=Lax$/);
  return setCookie.split(';')[0];
}

test('sign-in: a wrong password gets no cookie, the right one a session that /me reads back', async () => {
  const user = `ada-${randomUUID()}`;
  for (const wrong of [`${password}x`, '', password.slice(1)]) {
    const refused = await signIn(user, wrong);
    assert.equal(refused.status, 401, `password ${JSON.stringify(wrong)}`);
    assert.equal(refused.headers.get('set-cookie'), null);
  }
  const noUser = await signIn('', password);
  assert.equal(noUser.status, 401);
  assert.equal(noUser.headers.get('set-cookie'), null);
  assert.equal((await get('/me')).status, 401, 'no cookie, no session');

  const cookie = await signedIn(user);
  const me = await get('/me', { cookie });
  assert.equal(me.status, 200);
  assert.deepEqual(await me.json(), { user });
  const forged = await get('/me', { cookie: `${cookie.slice(0, -4)}AAAA` });
  assert.equal(forged.status, 401, 'a token whose secret was changed opens nothing');
});

test('the item route answers a miss from the origin, then a hit from Redis, with the signed-in user', async () => {
  const user = `grace-${randomUUID()}`;
  const cookie = await signedIn(user);
  const ip = freshIp();
  const id = anyItem();
  const first = await get(`/item/${id}`, { cookie, ip });
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-cache'), 'miss');
  assert.deepEqual(await first.json(), { item: { id, name: `Item ${id}` }, user });
  const second = await get(`/item/${id}`, { ip });
  assert.equal(second.status, 200);
  assert.equal(second.headers.get('x-cache'), 'hit');
  assert.deepEqual(await second.json(), { item: { id, name: `Item ${id}` }, user: null }, 'signed out: no user');
  const unknown = 1001 + Math.floor(Math.random() * 1e9);
  const missing = await get(`/item/${unknown}`, { ip });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('x-cache'), 'miss');
  assert.equal((await get('/item/abc', { ip })).status, 404);
});

test('the item route refuses the sixth request in a minute from one client with 429 and the standard headers', async () => {
  const ip = freshIp();
  const id = anyItem();
  const statuses = [];
  let last;
  for (let i = 0; i < 6; i++) {
    last = await get(`/item/${id}`, { ip });
    statuses.push(last.status);
    if (i < 5) {
      assert.equal(last.headers.get('ratelimit-policy'), '"items";q=5;w=60');
      assert.match(last.headers.get('ratelimit'), new RegExp(`^"items";r=${4 - i};t=\\d+$`));
      assert.equal(last.headers.get('retry-after'), null);
    }
    await last.arrayBuffer();
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
  assert.equal(last.headers.get('ratelimit-policy'), '"items";q=5;w=60');
  assert.match(last.headers.get('ratelimit'), /^"items";r=0;t=\d+$/);
  const retryAfter = Number(last.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 12, `Retry-After ${retryAfter}: one request comes back every 12 s`);
  assert.equal(last.headers.get('x-cache'), null, 'a refused request does not reach the cache');
  // Another client still has its whole budget.
  assert.equal((await get(`/item/${id}`)).status, 200);
});

test('sign-out ends the session and clears the cookie', async () => {
  const cookie = await signedIn(`eve-${randomUUID()}`);
  const out = await fetch(`${base}/sign-out`, { method: 'POST', headers: { cookie } });
  assert.equal(out.status, 200);
  assert.match(out.headers.get('set-cookie'), /^redge_session=; Max-Age=0;/);
  assert.equal((await get('/me', { cookie })).status, 401, 'the old cookie no longer opens a session');
  const item = await get(`/item/${anyItem()}`, { cookie });
  assert.equal((await item.json()).user, null);
});

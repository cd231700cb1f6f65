// Cookie sessions through the Worker's routes, in real workerd, against the real gateway and redis-server.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Browser } from './browser.mjs';
import { eventually, redis } from './env.mjs';

const unique = (name) => `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

// The round-trip counts below are the steady state: the session scripts loaded in Redis and known to the
// isolate. An isolate that used them before another suite restarted Redis (which forgets scripts) pays one
// more round trip on the first call of each, to load it again. Every route is used once first, so that
// no count depends on what ran before this file.
before(async () => {
  const laptop = new Browser();
  const phone = new Browser();
  const user = unique('warm-up');
  assert.equal((await laptop.signIn(user)).status, 201);
  const { id } = (await phone.signIn(user)).body.session;
  assert.equal((await laptop.call('GET', '/api/session')).status, 200);
  assert.equal((await laptop.call('PATCH', '/api/session', { body: { data: {}, version: 0 } })).status, 200);
  assert.equal((await laptop.call('GET', '/api/sessions')).status, 200);
  assert.equal((await laptop.call('DELETE', `/api/sessions/${id}`)).status, 204);
  assert.equal((await laptop.call('DELETE', '/api/session')).status, 204);
  assert.equal((await phone.signIn(user)).status, 201);
  assert.equal((await phone.call('DELETE', '/api/sessions')).status, 204);
});

test('sign in sets a locked-down cookie and returns the session: the rate-limit check, then the write', async () => {
  const browser = new Browser();
  const user = unique('alice');
  const signedIn = await browser.signIn(user);
  assert.equal(signedIn.status, 201);
  assert.equal(signedIn.roundTrips, 2, 'a write is sent only after the rate-limit decision');
  assert.match(signedIn.headers.get('ratelimit') ?? '', /^"api";r=\d+;t=\d+$/);
  assert.equal(signedIn.headers.get('cache-control'), 'no-store');
  const { session } = signedIn.body;
  for (const field of ['id', 'user', 'created', 'last_seen', 'idle_expires_at', 'absolute_expires_at', 'version', 'data']) {
    assert.ok(field in session, `session.${field}`);
  }
  assert.equal(session.user, user);
  assert.equal(session.version, 0);
  assert.deepEqual(session.data, {});
  assert.equal(signedIn.setCookies.length, 1);
  const cookie = signedIn.setCookies[0];
  // Development mode (wrangler.toml, plain http://127.0.0.1): no __Host- prefix and no Secure, all else kept.
  assert.match(cookie, /^redge_session=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}; Max-Age=1800; Path=\/; HttpOnly; SameSite=Lax$/);
  assert.ok(cookie.startsWith(`redge_session=${session.id}.`), 'the id is the token\'s public half');
  assert.ok(!JSON.stringify(signedIn.body).includes(browser.cookie.split('.')[1]), 'the secret never appears in a body');

  const me = await browser.call('GET', '/api/session');
  assert.equal(me.status, 200);
  assert.equal(me.roundTrips, 1, 'the rate-limit check and the read share one round trip');
  assert.equal(me.body.session.id, session.id);
  assert.equal(me.setCookies.length, 0, 'a read that does not refresh sends no cookie');
});

test('no cookie, a junk cookie or a forged one is 401; a junk cookie is cleared', async () => {
  const none = await new Browser().call('GET', '/api/session');
  assert.equal(none.status, 401);
  assert.match(none.headers.get('content-type'), /application\/problem\+json/);
  assert.equal(none.roundTrips, 1, 'no cookie: only the rate-limit check');

  const junk = new Browser();
  junk.cookie = 'redge_session=' + 'x'.repeat(5000);
  const refused = await junk.call('GET', '/api/session');
  assert.equal(refused.status, 401);
  assert.equal(refused.roundTrips, 1, 'a malformed token never reaches Redis: only the rate-limit check does');
  assert.match(refused.setCookies[0] ?? '', /^redge_session=; Max-Age=0/);

  const real = new Browser();
  const { body } = await real.signIn(unique('victim'));
  const forged = new Browser();
  forged.cookie = `redge_session=${body.session.id}.${'A'.repeat(43)}`;
  const denied = await forged.call('GET', '/api/session');
  assert.equal(denied.status, 401);
  assert.equal(denied.roundTrips, 1);
  assert.equal((await real.call('GET', '/api/session')).status, 200, 'the real session is untouched');
});

test('state-changing routes require an allowed Origin (CSRF)', async () => {
  const browser = new Browser();
  await browser.signIn(unique('bob'));
  const attempts = [
    ['POST', '/api/session', { user: 'mallory' }],
    ['PATCH', '/api/session', { data: { evil: true } }],
    ['DELETE', '/api/session'],
    ['DELETE', '/api/sessions'],
  ];
  for (const [method, path, body] of attempts) {
    for (const headers of [{}, { origin: 'https://evil.example' }, { origin: 'null' }]) {
      const answer = await browser.call(method, path, { body, headers, withOrigin: false });
      assert.equal(answer.status, 403, `${method} ${path} ${JSON.stringify(headers)}`);
      assert.equal(answer.roundTrips, 1, 'refused requests are rate limited too, and write nothing');
      assert.match(answer.body.detail, /Origin/);
    }
  }
  const me = await browser.call('GET', '/api/session');
  assert.equal(me.status, 200, 'none of the forged requests changed anything');
  assert.deepEqual(me.body.session.data, {});
});

test('PATCH updates data with compare-and-set', async () => {
  const browser = new Browser();
  await browser.signIn(unique('carol'));
  const saved = await browser.call('PATCH', '/api/session', { body: { data: { theme: 'dark' }, version: 0 } });
  assert.equal(saved.status, 200);
  assert.equal(saved.roundTrips, 2);
  assert.equal(saved.body.session.version, 1);
  assert.deepEqual(saved.body.session.data, { theme: 'dark' });

  const stale = await browser.call('PATCH', '/api/session', { body: { data: { theme: 'light' }, version: 0 } });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.current_version, 1);
  assert.deepEqual(stale.body.session.data, { theme: 'dark' });

  const blind = await browser.call('PATCH', '/api/session', { body: { data: { theme: 'light' } } });
  assert.equal(blind.status, 200, 'without a version, last writer wins');
  assert.equal(blind.body.session.version, 2);

  for (const body of [{}, { data: 'text' }, { data: {}, version: -1 }]) {
    const bad = await browser.call('PATCH', '/api/session', { body });
    assert.equal(bad.status, 400, JSON.stringify(body));
  }
  const big = await browser.call('PATCH', '/api/session', { body: { data: { blob: 'x'.repeat(20_000) } } });
  assert.equal(big.status, 413);
  assert.equal((await new Browser().call('PATCH', '/api/session', { body: { data: {} } })).status, 401);
});

test('bad sign-in bodies are 400', async () => {
  for (const body of [{}, { user: '' }, { user: 'x'.repeat(300) }, { user: 42 }]) {
    const answer = await new Browser().call('POST', '/api/session', { body });
    assert.equal(answer.status, 400, JSON.stringify(body));
    assert.equal(answer.setCookies.length, 0);
  }
});

test('signing in again rotates the cookie; the old token stops working', async () => {
  const browser = new Browser();
  const user = unique('dave');
  await browser.signIn(user);
  await browser.call('PATCH', '/api/session', { body: { data: { cart: [1] } } });
  const before = browser.cookie;
  const again = await browser.signIn(user);
  assert.equal(again.status, 201);
  assert.notEqual(browser.cookie, before);
  assert.deepEqual(again.body.session.data, { cart: [1] }, 'same user: data kept');
  const old = new Browser();
  old.cookie = before;
  assert.equal((await old.call('GET', '/api/session')).status, 401);
  const list = await browser.call('GET', '/api/sessions');
  assert.equal(list.body.sessions.length, 1);
});

test('list, revoke one, sign out, sign out everywhere', async () => {
  const user = unique('erin');
  const laptop = new Browser();
  const phone = new Browser();
  const tablet = new Browser();
  const ids = [];
  for (const device of [laptop, phone, tablet]) ids.push((await device.signIn(user)).body.session.id);
  const stranger = new Browser();
  const strangerId = (await stranger.signIn(unique('frank'))).body.session.id;

  const list = await laptop.call('GET', '/api/sessions');
  assert.equal(list.status, 200);
  assert.equal(list.roundTrips, 1);
  assert.deepEqual(list.body.sessions.map((s) => s.id).sort(), [...ids].sort());
  assert.deepEqual(list.body.sessions.filter((s) => s.current).map((s) => s.id), [ids[0]]);
  for (const s of list.body.sessions) {
    for (const field of ['id', 'created', 'last_seen', 'expires_at', 'current']) assert.ok(field in s);
  }

  const notMine = await laptop.call('DELETE', `/api/sessions/${strangerId}`);
  assert.equal(notMine.status, 404);
  assert.equal((await laptop.call('DELETE', '/api/sessions/not-an-id')).status, 404);
  assert.equal((await stranger.call('GET', '/api/session')).status, 200);

  const revoked = await laptop.call('DELETE', `/api/sessions/${ids[1]}`);
  assert.equal(revoked.status, 204);
  assert.equal(revoked.roundTrips, 2);
  assert.equal(revoked.setCookies.length, 0, 'revoking another session keeps mine');
  assert.equal((await phone.call('GET', '/api/session')).status, 401);

  const out = await tablet.call('DELETE', '/api/session');
  assert.equal(out.status, 204);
  assert.equal(out.roundTrips, 2);
  assert.match(out.setCookies[0], /^redge_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Lax$/);
  assert.equal((await tablet.call('GET', '/api/session')).status, 401);

  const phoneAgain = new Browser();
  await phoneAgain.signIn(user);
  const everywhere = await laptop.call('DELETE', '/api/sessions');
  assert.equal(everywhere.status, 204);
  assert.equal(everywhere.roundTrips, 2);
  assert.match(everywhere.setCookies[0], /Max-Age=0/);
  assert.equal((await phoneAgain.call('GET', '/api/session')).status, 401);
  assert.equal((await laptop.call('GET', '/api/sessions')).status, 401);
  assert.equal((await stranger.call('GET', '/api/session')).status, 200, 'other users are untouched');
});

test('Redis stopped mid-session: 503 and the cookie kept; restarted: the same session', async () => {
  const browser = new Browser();
  const signedIn = await browser.signIn(unique('grace'));
  const id = signedIn.body.session.id;
  const cookie = browser.cookie;
  // Redis persists (as Upstash does): snapshot, so that the restart below keeps the data.
  await redis('save');
  await redis('stop');
  try {
    for (const [method, path, body] of [
      ['GET', '/api/session'],
      ['PATCH', '/api/session', { data: { x: 1 } }],
      ['GET', '/api/sessions'],
      ['DELETE', '/api/session'],
      ['POST', '/api/session', { user: 'someone' }],
    ]) {
      const down = await browser.call(method, path, { body });
      assert.equal(down.status, 503, `${method} ${path}`);
      assert.match(down.headers.get('content-type'), /application\/problem\+json/);
      assert.match(down.body.detail, /session is kept/);
      assert.equal(down.setCookies.length, 0, `${method} ${path}: the cookie is never cleared because Redis is down`);
      assert.equal(browser.cookie, cookie);
    }
  } finally {
    await redis('start');
  }
  const back = await eventually(async () => {
    const answer = await browser.call('GET', '/api/session');
    return answer.status === 200 ? answer : null;
  });
  assert.ok(back, 'the session did not come back after Redis restarted');
  assert.equal(back.body.session.id, id);
  assert.equal(browser.cookie, cookie);
});

test('revoking my own session by id signs me out and clears the cookie', async () => {
  const browser = new Browser();
  const { body } = await browser.signIn(unique('heidi'));
  const answer = await browser.call('DELETE', `/api/sessions/${body.session.id}`);
  assert.equal(answer.status, 204);
  assert.match(answer.setCookies[0] ?? '', /^redge_session=; Max-Age=0/);
  assert.equal(browser.cookie, null);
});

// The SessionStore against the real gateway and Redis: the whole life of a session (sign in, load,
// update with compare-and-set, counters, list, rotate, revoke), cookies, the session cache, and bad
// input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, InvalidArgumentError, SessionStore, UnavailableError } from 'redge';
import { deadUrl, sleep, token, unique, url } from './env.mjs';

const client = new Client({ url, token });
const store = new SessionStore(client, { prefix: unique('sessions') });

test('sign in, load, update with compare-and-set, count, list, rotate and sign out', async () => {
  const user = unique('alice');
  const issued = await store.signIn(user, { data: { theme: 'dark', since: new Date(0) } });
  assert.match(issued.token, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
  assert.match(issued.setCookie, /^__Host-redge_session=[^;]+; Max-Age=1800; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
  assert.equal(issued.session.user, user);
  assert.deepEqual(issued.session.data, { theme: 'dark', since: '1970-01-01T00:00:00.000Z' }, 'data is stored as JSON.stringify makes it');
  assert.equal(typeof issued.session.created, 'number');
  assert.ok(!issued.token.includes(issued.session.id) || issued.token.startsWith(issued.session.id));

  const loaded = await store.load(issued.token);
  assert.equal(loaded.session.id, issued.session.id);
  assert.equal(loaded.refreshed, false);
  assert.equal(loaded.setCookie, null);

  const saved = await store.update(issued.token, { theme: 'light' }, { expectedVersion: loaded.session.version });
  assert.equal(saved.status, 'saved');
  assert.deepEqual(saved.session.data, { theme: 'light' });
  const conflict = await store.update(issued.token, { theme: 'blue' }, { expectedVersion: loaded.session.version });
  assert.equal(conflict.status, 'conflict');
  assert.deepEqual(conflict.session.data, { theme: 'light' });

  assert.equal(await store.incr(issued.token, 'views'), 1);
  assert.equal(await store.incr(issued.token, 'views', 4), 5);
  assert.deepEqual((await store.load(issued.token)).session.counters, { views: 5 });

  const second = await store.signIn(user);
  const list = await store.list(second.token);
  assert.deepEqual(list.map((s) => s.id).sort(), [issued.session.id, second.session.id].sort());
  assert.equal(list.find((s) => s.current).id, second.session.id);

  const rotated = await store.rotate(issued.token);
  assert.notEqual(rotated.token, issued.token);
  assert.equal(await store.load(issued.token), null, 'the old token stops working at once');
  assert.equal((await store.load(rotated.token)).session.counters.views, 5);

  assert.deepEqual(await store.revoke(second.token, { id: rotated.session.id }), { status: 'ended', ended: 1 });
  assert.equal(await store.load(rotated.token), null);
  assert.deepEqual(await store.revoke(second.token), { status: 'ended', ended: 1 });
  assert.equal(await store.load(second.token), null);
  assert.deepEqual(await store.revoke(second.token), { status: 'unauthenticated', ended: 0 });
});

test('sign out everywhere, and revokeUser for the application', async () => {
  const user = unique('bob');
  const a = await store.signIn(user);
  const b = await store.signIn(user);
  const c = await store.signIn(user);
  assert.deepEqual(await store.revoke(a.token, 'all'), { status: 'ended', ended: 3 });
  assert.equal(await store.load(b.token), null);
  const d = await store.signIn(user);
  await store.signIn(user);
  assert.equal(await store.revokeUser(user), 2);
  assert.equal(await store.load(d.token), null);
  assert.equal(await store.load(c.token), null);
});

test('signing in over a session of the same user rotates it and keeps its data', async () => {
  const user = unique('carol');
  const first = await store.signIn(user, { data: { cart: [1, 2] } });
  const again = await store.signIn(user, { data: { cart: [] }, replacing: first.token });
  assert.deepEqual(again.session.data, { cart: [1, 2] });
  assert.equal(await store.load(first.token), null);
});

test('missing, malformed and unknown tokens are no session, never an error', async () => {
  const real = (await store.signIn(unique('henry'))).token;
  const unknown = `${real[0] === 'A' ? 'B' : 'A'}${real.slice(1)}`;
  const wrongSecret = `${real.slice(0, 23)}${real[23] === 'A' ? 'B' : 'A'}${real.slice(24)}`;
  for (const t of [null, undefined, '', 'junk', `${'a'.repeat(22)}.${'b'.repeat(43)}`, unknown, wrongSecret]) {
    assert.equal(await store.load(t), null, String(t));
    assert.equal(await store.incr(t, 'n'), null);
    assert.equal(await store.list(t), null);
    assert.equal(await store.rotate(t), null);
    assert.equal((await store.update(t, {})).status, 'unauthenticated');
  }
});

test('cookies: read from a Cookie header, cleared, and the development name', async () => {
  const issued = await store.signIn(unique('dave'));
  assert.equal(store.cookieName, '__Host-redge_session');
  assert.equal(store.readCookie(`a=1; __Host-redge_session=${issued.token}; b=2`), issued.token);
  assert.equal(store.readCookie('redge_session=plain'), undefined);
  assert.equal(store.readCookie(null), undefined);
  assert.equal(store.clearCookie(), '__Host-redge_session=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax');
  const dev = new SessionStore(client, { insecureDev: true, cookieName: 'sid', idleMs: 60_000, absoluteMs: 120_000 });
  assert.equal(dev.cookieName, 'sid');
  assert.match((await dev.signIn('eve')).setCookie, /^sid=[^;]+; Max-Age=60; Path=\/; HttpOnly; SameSite=Lax$/);
});

test('bad input is InvalidArgumentError; an unreachable Redis is UnavailableError, not "signed out"', async () => {
  const small = new SessionStore(client, { maxDataBytes: 32 });
  await assert.rejects(small.signIn('frank', { data: { big: 'x'.repeat(100) } }), (e) => e instanceof InvalidArgumentError && e.code === 'REDGE_TOO_LARGE');
  const cyclic = {};
  cyclic.self = cyclic;
  await assert.rejects(store.signIn('frank', { data: cyclic }), (e) => e instanceof InvalidArgumentError && /JSON/.test(e.message));
  await assert.rejects(store.signIn('frank', { data: 1n }), InvalidArgumentError);
  await assert.rejects(store.signIn(''), /user id has 1 to 256 bytes/);
  await assert.rejects(store.signIn(7), /signIn: user: expected a string, got a number/);
  await assert.rejects(store.signIn('frank', { replace: 'x' }), /unknown field `replace`/);
  await assert.rejects(store.load(42), InvalidArgumentError);
  await assert.rejects(store.incr('t', 'n', 1.5), /whole number/);
  await assert.rejects(store.incr('t', 'n', '2'), /whole number/);
  await assert.rejects(store.revoke('t', 'everyone'), /"current", "all" or \{ id: string \}/);
  await assert.rejects(store.update('t', {}, { expectedVersion: -1 }), InvalidArgumentError);
  assert.throws(() => new SessionStore(client, { idleMs: 10 }), /idle timeout must be at least 1000 ms/);
  assert.throws(() => new SessionStore(client, { cookieName: 'a b' }), /cookieName/);
  assert.throws(() => new SessionStore(client, { idle: 10 }), /unknown field `idle`/);
  assert.throws(() => new SessionStore(client, { cacheMs: 60_001 }), /cacheMs must be 0 \(off\) to 60000/);
  assert.throws(() => new SessionStore(client, { cacheMs: 1000, cacheEntries: 0 }), /cacheEntries must be at least 1/);

  const issued = await store.signIn(unique('grace'));
  const down = new SessionStore(new Client({ url: deadUrl, token, timeoutMs: 300 }), { prefix: 'x' });
  await assert.rejects(down.load(issued.token), (e) => e instanceof UnavailableError && e.retryable !== undefined);
  assert.equal((await store.load(issued.token)).session.id, issued.session.id);
});

test('cacheMs: a recent read costs no round trip; a sign-out here is at once, one elsewhere within cacheMs', async () => {
  const prefix = unique('cached-sessions');
  const cacheMs = 1_500;
  // Two clients and two stores: what two isolates of a Worker hold.
  const [hereClient, thereClient] = [0, 1].map(() => new Client({ url, token }));
  const here = new SessionStore(hereClient, { prefix, cacheMs });
  const there = new SessionStore(thereClient, { prefix, cacheMs });
  const roundTrips = async (c, call) => {
    const before = c.stats().roundTrips;
    const value = await call();
    return [value, c.stats().roundTrips - before];
  };

  const user = unique('carol');
  const first = await here.signIn(user, { data: { n: 1 } });
  let [loaded, cost] = await roundTrips(hereClient, () => here.load(first.token));
  assert.equal(cost, 1, 'the first read goes to Redis');
  assert.deepEqual(loaded.session.data, { n: 1 });
  [loaded, cost] = await roundTrips(hereClient, () => here.load(first.token));
  assert.equal(cost, 0, 'a read within cacheMs is served by this store');
  assert.equal(loaded.session.id, first.session.id);
  // A batch's session read is served the same way: nothing else in it, nothing sent.
  const [[inBatch], batchCost] = await roundTrips(hereClient, () => hereClient.batch().loadSession(here, first.token).send());
  assert.equal(inBatch.session.id, first.session.id);
  assert.equal(batchCost, 0);
  // The right id with another secret is never served from the cache.
  const forged = `${first.token.split('.')[0]}.${'A'.repeat(43)}`;
  assert.equal(await here.load(forged), null);

  // A write through this store is read back from Redis.
  await here.update(first.token, { n: 2 });
  const readAt = Date.now();
  [loaded, cost] = await roundTrips(hereClient, () => here.load(first.token));
  assert.equal(cost, 1);
  assert.deepEqual(loaded.session.data, { n: 2 });

  // Revoked through another store: this one still serves its copy, for at most cacheMs.
  assert.equal((await there.load(first.token)).session.id, first.session.id);
  await there.revoke(first.token);
  assert.equal(await there.load(first.token), null, 'through the store that revoked it: at once');
  const stale = await here.load(first.token);
  if (Date.now() - readAt < cacheMs - 50) {
    assert.equal(stale?.session.id, first.session.id, 'the documented window: another isolate still serves it');
  }
  await sleep(cacheMs + 50);
  assert.equal(await here.load(first.token), null, 'past cacheMs the revocation is seen everywhere');

  // Revoked through this store: gone here at once.
  const second = await here.signIn(user);
  await here.load(second.token);
  await here.revoke(second.token);
  assert.equal(await here.load(second.token), null);
});

// Batch against the real gateway and Redis: a session read, a rate-limit check and a cached lookup in
// one round trip, each finishing on its own terms, and the misuses a caller can make.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batch, Cache, Client, InvalidArgumentError, RateLimiter, SessionStore, UnavailableError } from 'redge';
import { deadUrl, token, unique, url } from './env.mjs';

const client = new Client({ url, token });
const sessions = new SessionStore(client, { prefix: unique('batch-sessions') });
const limiter = new RateLimiter(client, { limit: 3, periodMs: 60_000 });
const cache = new Cache(client, { namespace: unique('batch-cache') });
const trips = async (fn) => {
  const before = client.stats().roundTrips;
  const value = await fn();
  return [value, client.stats().roundTrips - before];
};

test('a session, a rate limit and a cached hit in one round trip', async () => {
  const issued = await sessions.signIn(unique('ada'), { data: { plan: 'pro' } });
  const key = unique('item');
  let calls = 0;
  const origin = async () => {
    calls += 1;
    return { id: 1 };
  };
  const id = unique('ip');
  const request = async () => {
    const b = client.batch().loadSession(sessions, issued.token).limit(limiter, id).lookup(cache, key, { ttlMs: 60_000 });
    assert.ok(b instanceof Batch);
    assert.equal(b.length, 3);
    const [loaded, decision, read] = await b.send();
    return { loaded, decision, read, lookup: await read.resolve(origin) };
  };
  const [first, missTrips] = await trips(request);
  assert.equal(first.loaded.session.user, issued.session.user);
  assert.deepEqual(first.loaded.session.data, { plan: 'pro' });
  assert.deepEqual([first.decision.allowed, first.decision.remaining, first.decision.reason], [true, 2, 'withinLimit']);
  assert.equal(first.read.status, 'miss');
  assert.deepEqual([first.lookup.status, first.lookup.value, calls], ['miss', { id: 1 }, 1]);
  assert.equal(missTrips, 2, 'the shared read, then the write after the miss');
  const [second, hitTrips] = await trips(request);
  assert.equal(second.loaded.session.id, issued.session.id);
  assert.equal(second.decision.remaining, 1);
  assert.equal(second.read.status, 'hit');
  assert.deepEqual([second.lookup.status, second.lookup.value, calls], ['hit', { id: 1 }, 1]);
  assert.equal(hitTrips, 1, 'everything in one round trip');
  await assert.rejects(second.read.resolve(origin), /already resolved/);
});

test('a refused request never reaches the origin: the read is simply not resolved', async () => {
  const id = unique('ip');
  const key = unique('guarded');
  let calls = 0;
  for (let i = 0; i < 3; i++) await limiter.limit(id);
  const b = client.batch();
  b.limit(limiter, id);
  b.lookup(cache, key);
  const [decision, read] = await b.send();
  assert.equal(decision.allowed, false);
  assert.equal(read.status, 'miss');
  assert.equal(calls, 0);
  await assert.rejects(read.resolve('nope'), /resolve: origin: expected an async function/);
  assert.equal((await read.resolve(() => ++calls)).value, 1);
});

test('signed out and blocked: the session is null and the block cache answers without Redis', async () => {
  const id = unique('ip');
  for (let i = 0; i < 4; i++) await limiter.limit(id);
  const b = client.batch();
  b.loadSession(sessions, null);
  b.limit(limiter, id);
  const [[loaded, decision], n] = await trips(() => b.send());
  assert.equal(loaded, null);
  assert.deepEqual([decision.allowed, decision.reason], [false, 'blockedLocally']);
  assert.equal(n, 0, 'nothing needed Redis');
  assert.deepEqual(await client.batch().send(), []);
});

test('when Redis is down the session rejects, the limiter applies its failure policy, the cache bypasses', async () => {
  const dead = new Client({ url: deadUrl, token, timeoutMs: 300 });
  const deadLimiter = new RateLimiter(dead, { limit: 1, periodMs: 1000, failure: 'open' });
  const deadCache = new Cache(dead);
  const b = dead.batch();
  b.limit(deadLimiter, 'x');
  b.lookup(deadCache, 'k', {});
  const [decision, read] = await b.send();
  assert.equal(decision.reason, 'failOpen');
  assert.equal(read.status, 'bypass');
  const lookup = await read.resolve(() => 'origin');
  assert.deepEqual([lookup.status, lookup.value], ['bypass', 'origin']);
  const issued = await sessions.signIn(unique('kim'));
  const withSession = dead.batch();
  withSession.loadSession(new SessionStore(dead), issued.token);
  await assert.rejects(withSession.send(), UnavailableError);
});

test('misuse is InvalidArgumentError: another client, bad arguments, sending twice', async () => {
  const other = new Client({ url, token });
  const b = other.batch();
  assert.throws(() => b.limit(limiter, 'x'), (e) => e instanceof InvalidArgumentError && /another Client/.test(e.message));
  assert.throws(() => b.loadSession(sessions, 'x'), /another Client/);
  const c = client.batch();
  assert.throws(() => c.limit(limiter, 5), /limit: identifier: expected a string/);
  assert.throws(() => c.limit(limiter, 'x', { policies: ['nope'] }), /unknown policy/);
  assert.throws(() => c.lookup(cache, 42), /key: expected a string or \{ key, tags \}/);
  assert.throws(() => c.lookup(cache, 'k', { ttl: 1 }), /unknown field `ttl`/);
  assert.throws(() => c.limit({}, 'x'), Error);
  c.limit(limiter, unique('ip'), { cost: 99 });
  await assert.rejects(c.send(), (e) => e instanceof InvalidArgumentError && e.code === 'REDGE_INSUFFICIENT_CAPACITY');
  await assert.rejects(c.send(), /already sent/);
  assert.throws(() => c.limit(limiter, 'x'), /already sent/);
});

test('a batch of fail-open parts answers at their deadline, not the client timeout', async () => {
  // A service that accepts connections and never answers: only a deadline ends the wait.
  const { createServer } = await import('node:net');
  const sockets = new Set();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const slowClient = new Client({ url: `http://127.0.0.1:${silent.address().port}`, token, timeoutMs: 60_000, retries: 0 });
  try {
    const slowLimiter = new RateLimiter(slowClient, { limit: 3, periodMs: 60_000, failure: 'open', timeoutMs: 150 });
    const slowCache = new Cache(slowClient, { namespace: unique('silent-cache') });
    const b = slowClient.batch();
    b.limit(slowLimiter, unique('ip'));
    b.lookup(slowCache, unique('item'), { deadlineMs: 100 });
    // Bounded far below the client's 60 s timeout: resolving at all proves the parts' deadline applied.
    const guard = new Promise((_, reject) => setTimeout(() => reject(new Error('the batch waited for the client timeout')), 20_000).unref());
    const [decision, read] = await Promise.race([b.send(), guard]);
    assert.deepEqual([decision.allowed, decision.reason], [true, 'failOpen']);
    assert.equal(read.status, 'bypass');
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

test('the add methods return the batch they add to: a chain and separate statements fill one batch', async () => {
  const id = unique('ip');
  const statements = client.batch();
  const returned = statements.limit(limiter, id);
  assert.equal(statements.length, 1);
  returned.loadSession(sessions, null);
  assert.deepEqual([statements.length, returned.length], [2, 2]);
  const [[decision, loaded], n] = await trips(() => statements.send());
  assert.deepEqual([decision.allowed, decision.remaining, loaded], [true, 2, null]);
  assert.equal(n, 1);
  await assert.rejects(returned.send(), /already sent/);
  assert.throws(() => returned.lookup(cache, 'k'), /already sent/);
});

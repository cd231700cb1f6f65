// The Cache against the real gateway and Redis: misses and hits, "not found", origin failures, tags,
// single flight, background refresh through ctx.waitUntil, a Redis that is down, and bad arguments; then
// get, set, delete and update over the same entries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cache, Client, InvalidArgumentError, UnavailableError } from 'redge';
import { deadUrl, sleep, token, unique, url } from './env.mjs';

const client = new Client({ url, token });
const namespace = unique('ns');
const cache = new Cache(client, { namespace });

test('a miss calls the origin and writes; the next lookup is a hit without it', async () => {
  const key = unique('item');
  let calls = 0;
  const origin = async () => {
    calls += 1;
    return { id: 7, name: 'Zoë', tags: ['a'] };
  };
  const first = await cache.getOrFetch(key, { group: 'items', ttlMs: 60_000 }, origin);
  assert.deepEqual([first.status, first.found, first.originCalled, calls], ['miss', true, true, 1]);
  assert.deepEqual(first.value, { id: 7, name: 'Zoë', tags: ['a'] });
  const second = await cache.getOrFetch(key, { group: 'items' }, origin);
  assert.deepEqual([second.status, second.originCalled, calls], ['hit', false, 1]);
  assert.deepEqual(second.value, first.value);
  assert.equal(typeof second.tookMs, 'number');
  // Another isolate (its own Cache, same namespace) finds the entry in Redis.
  const elsewhere = new Cache(client, { namespace });
  assert.equal((await elsewhere.getOrFetch(key, {}, origin)).status, 'hit');
  assert.equal(await cache.invalidate(key), true);
  assert.equal((await cache.getOrFetch(key, {}, origin)).status, 'miss');
  assert.equal(calls, 2);
  const metrics = cache.metrics();
  assert.equal(metrics.breaker, 'closed');
  assert.ok(metrics.groups.items.hits >= 1 && metrics.groups.items.misses >= 1, JSON.stringify(metrics));
});

test('origins may return plain values; null and undefined are "not found", remembered when asked', async () => {
  assert.equal((await cache.getOrFetch(unique('n'), {}, () => 42)).value, 42);
  assert.equal((await cache.getOrFetch(unique('s'), {}, () => 'text')).value, 'text');
  const key = unique('absent');
  let calls = 0;
  const missing = async () => {
    calls += 1;
    return undefined;
  };
  const first = await cache.getOrFetch(key, { negativeTtlMs: 60_000 }, missing);
  assert.deepEqual([first.found, first.value, first.status], [false, null, 'miss']);
  const second = await cache.getOrFetch(key, { negativeTtlMs: 60_000 }, missing);
  assert.deepEqual([second.status, calls], ['negative', 1]);
});

test('an origin that throws rejects with what it threw, and nothing is cached', async () => {
  const key = unique('failing');
  class Boom extends Error {}
  await assert.rejects(cache.getOrFetch(key, {}, async () => {
    throw new Boom('origin down');
  }), (e) => e instanceof Boom && e.message === 'origin down');
  await assert.rejects(cache.getOrFetch(key, {}, () => {
    throw new TypeError('sync throw');
  }), TypeError);
  assert.equal((await cache.getOrFetch(key, {}, () => 'ok')).status, 'miss');
  const cyclic = {};
  cyclic.self = cyclic;
  await assert.rejects(cache.getOrFetch(unique('c'), {}, () => cyclic), (e) => e instanceof InvalidArgumentError && /origin's value/.test(e.message));
});

test('concurrent lookups of one key share one origin call', async () => {
  const key = unique('hot');
  let calls = 0;
  const slow = async () => {
    calls += 1;
    await sleep(100);
    return 'v';
  };
  const answers = await Promise.all(Array.from({ length: 5 }, () => cache.getOrFetch(key, {}, slow)));
  assert.equal(calls, 1);
  assert.deepEqual(answers.map((a) => a.value), ['v', 'v', 'v', 'v', 'v']);
});

test('invalidateTag turns every tagged entry into a miss', async () => {
  const tag = unique('tag').replace(/:/g, '-');
  const a = { key: unique('a'), tags: [tag] };
  let n = 0;
  const origin = () => ++n;
  await cache.getOrFetch(a, {}, origin);
  assert.equal((await cache.getOrFetch(a, {}, origin)).status, 'hit');
  // A tag never invalidated has no counter: its first generation is the invalidating clock's time in ms
  // (so that an expired counter never returns to a value an entry embeds); later ones count up by one.
  const before = Date.now();
  const first = await cache.invalidateTag(tag);
  assert.ok(first >= before && first <= Date.now(), `${first} is not the clock's time`);
  const after = await cache.getOrFetch(a, {}, origin);
  assert.deepEqual([after.status, after.value], ['miss', 2]);
  assert.equal(await cache.invalidateTag(tag), first + 1);
  assert.deepEqual((await cache.getOrFetch(a, {}, origin)).value, 3);
});

test('stale values are served at once and refreshed through ctx.waitUntil', async () => {
  const key = unique('stale');
  let n = 0;
  const origin = () => ++n;
  await cache.getOrFetch(key, { ttlMs: 50, graceMs: 60_000 }, origin);
  await sleep(120);
  const pending = [];
  const ctx = { waitUntil: (p) => pending.push(p) };
  const stale = await cache.getOrFetch(key, { ttlMs: 50, graceMs: 60_000 }, origin, ctx);
  assert.deepEqual([stale.status, stale.value], ['stale', 1]);
  assert.equal(pending.length, 1, 'one background refresh');
  await Promise.all(pending);
  const fresh = await cache.getOrFetch(key, { ttlMs: 60_000, graceMs: 60_000 }, origin);
  assert.deepEqual([fresh.status, fresh.value], ['hit', 2]);
});

test('a Redis that is down never fails a lookup: the origin answers', async () => {
  const down = new Cache(new Client({ url: deadUrl, token, timeoutMs: 200 }));
  const lookup = await down.getOrFetch('k', { deadlineMs: 200 }, () => 'from origin');
  assert.deepEqual([lookup.status, lookup.value], ['bypass', 'from origin']);
});

test('bad arguments reject with InvalidArgumentError', async () => {
  for (const [call, pattern] of [
    [() => cache.getOrFetch(42, {}, () => 1), /key: expected a string or \{ key, tags \}, got a number/],
    [() => cache.getOrFetch('', {}, () => 1), /key/],
    [() => cache.getOrFetch({ name: 'x' }, {}, () => 1), /unknown field `name`/],
    [() => cache.getOrFetch('k', { ttl: 5 }, () => 1), /unknown field `ttl`/],
    [() => cache.getOrFetch('k', { ttlMs: 0 }, () => 1), /ttlMs must be at least 1/],
    [() => cache.getOrFetch('k', 'policy', () => 1), /policy: expected an options object/],
    [() => cache.getOrFetch('k', {}, 'origin'), /origin: expected an async function, got a string/],
    [() => cache.invalidate(undefined), /invalidate: key/],
    [() => cache.invalidateTag(''), /tag/],
    [() => cache.getOrFetch('k', { coloTtlMs: 300_001 }, () => 1), /coloTtlMs must be at most 300000/],
  ]) {
    await assert.rejects(call(), (e) => e instanceof InvalidArgumentError && pattern.test(e.message), String(pattern));
  }
  assert.throws(() => new Cache(client, { namespace: '' }), InvalidArgumentError);
  assert.throws(() => new Cache(client, { prefix: 'x' }), /unknown field `prefix`/);
  assert.throws(() => new Cache(client, { colo: 'api.example.com' }), /colo: .*give the Worker's own origin/);
  assert.throws(() => new Cache(client, { colo: 'https://api.example.com/items' }), /colo: /);
});

test('the colo tier where the runtime has no Cache API: lookups go to Redis as without it', async () => {
  // Node has no caches.default: a colo read is a miss and a colo write is dropped, never an error.
  const own = new Client({ url, token });
  const withColo = new Cache(own, { namespace, colo: 'https://api.example.com' });
  const key = unique('colo');
  const policy = { ttlMs: 60_000, coloTtlMs: 10_000 };
  const miss = await withColo.getOrFetch(key, policy, () => ({ n: 1 }), { waitUntil: () => {} });
  assert.deepEqual([miss.status, miss.fromColo], ['miss', false]);
  const hit = await withColo.getOrFetch(key, policy, () => ({ n: 2 }));
  assert.deepEqual([hit.status, hit.value, hit.fromColo], ['hit', { n: 1 }, false]);
});

test('set writes what getOrFetch would: the next lookup is a hit, get reads it back', async () => {
  const own = new Client({ url, token });
  const direct = new Cache(own, { namespace });
  const key = { key: unique('set'), tags: [unique('t').replace(/:/g, '-')] };
  await direct.set(key, { balance: 1250 }, { ttlMs: 60_000 });
  assert.equal(own.stats().roundTrips, 1);
  let calls = 0;
  const hit = await direct.getOrFetch(key, {}, () => {
    calls += 1;
    return { balance: 0 };
  });
  assert.deepEqual([hit.status, hit.value, calls], ['hit', { balance: 1250 }, 0]);
  assert.deepEqual(await direct.get(key), { status: 'fresh', value: { balance: 1250 } });
  assert.equal(own.stats().roundTrips, 3, 'set, lookup, get: one round trip each');
  // Written under other tags, or read without them, it is not this entry.
  assert.equal((await direct.get(key.key)).status, 'notCached');
  await direct.invalidateTag(key.tags[0]);
  assert.deepEqual(await direct.get(key), { status: 'notCached', value: null });
});

test('a set value has its own TTL: fresh, then stale within the grace, then gone', async () => {
  const key = unique('ttl');
  await cache.set(key, 'v', { ttlMs: 50, graceMs: 150 });
  assert.equal((await cache.get(key, { graceMs: 150 })).status, 'fresh');
  await sleep(80);
  assert.deepEqual(await cache.get(key, { graceMs: 150 }), { status: 'stale', value: 'v' });
  await sleep(150);
  assert.equal((await cache.get(key, { graceMs: 150 })).status, 'notCached');
});

test('set(key, null) remembers "not found"; delete removes an entry', async () => {
  const key = unique('gone');
  await cache.set(key, null, { negativeTtlMs: 60_000 });
  assert.deepEqual(await cache.get(key), { status: 'absent', value: null });
  const lookup = await cache.getOrFetch(key, {}, () => 'never');
  assert.deepEqual([lookup.status, lookup.found], ['negative', false]);
  // Without a negative TTL "not found" is not cached: the entry is deleted.
  await cache.set(key, undefined);
  assert.equal((await cache.get(key)).status, 'notCached');
  await cache.set(key, 1);
  assert.equal(await cache.delete(key), true);
  assert.equal(await cache.delete({ key }), false);
  assert.equal((await cache.get(key)).status, 'notCached');
  assert.equal((await cache.getOrFetch(key, {}, () => 2)).status, 'miss');
});

test('update changes a value in place; concurrent increments lose nothing', async () => {
  const own = new Client({ url, token });
  const direct = new Cache(own, { namespace });
  const key = unique('counter');
  await direct.set(key, 0);
  const before = own.stats().roundTrips;
  const results = await Promise.all(Array.from({ length: 20 }, () => direct.update(key, {}, (n) => n + 1)));
  assert.ok(results.every((r) => r.status === 'written'), JSON.stringify(results));
  assert.equal(own.stats().roundTrips - before, 21, 'one read, then one compare-and-set per update');
  assert.deepEqual(await direct.get(key), { status: 'fresh', value: 20 });
  assert.deepEqual(await direct.update(key, undefined, () => undefined), { status: 'kept', value: 20 });
  let called = false;
  const absent = await direct.update(unique('none'), {}, () => {
    called = true;
    return 1;
  });
  assert.deepEqual([absent, called], [{ status: 'notCached', value: null }, false]);
});

test('an update function that throws rejects with what it threw and writes nothing', async () => {
  const key = unique('throwing');
  await cache.set(key, { n: 1 });
  class Refused extends Error {}
  await assert.rejects(cache.update(key, {}, () => {
    throw new Refused('insufficient funds');
  }), (e) => e instanceof Refused);
  for (const [change, pattern] of [
    [() => null, /returned null/],
    [async () => 2, /returned a promise/],
    [() => 10n, /JSON/],
  ]) {
    await assert.rejects(cache.update(key, {}, change), (e) => e instanceof InvalidArgumentError && pattern.test(e.message), String(pattern));
  }
  assert.deepEqual((await cache.get(key)).value, { n: 1 });
});

test('bad arguments to get, set, delete and update reject with InvalidArgumentError', async () => {
  for (const [call, pattern] of [
    [() => cache.get(42), /get: key: expected a string/],
    [() => cache.get(''), /key/],
    [() => cache.set('k', 1, { ttl: 5 }), /set: policy: unknown field `ttl`/],
    [() => cache.set('k', () => 1), /set: value/],
    [() => cache.set('k', 'x'.repeat(20), { maxValueBytes: 10 }), /caps values at 10/],
    [() => cache.delete(undefined), /delete: key/],
    [() => cache.update('k', {}, 'not a function'), /update: change: expected a function/],
  ]) {
    await assert.rejects(call(), (e) => e instanceof InvalidArgumentError && pattern.test(e.message), String(pattern));
  }
});

test('get, set and update reject when Redis is down: there is no origin to fall back on', async () => {
  const down = new Cache(new Client({ url: deadUrl, token, timeoutMs: 200 }));
  await assert.rejects(down.get('k', { deadlineMs: 200 }), UnavailableError);
  await assert.rejects(down.set('k', 1, { deadlineMs: 200 }), UnavailableError);
  await assert.rejects(down.update('k', { deadlineMs: 200 }, (n) => n), UnavailableError);
});

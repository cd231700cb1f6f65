// The Client against the real gateway and Redis: construction, raw commands and pipelines, and every
// error a caller can meet (bad arguments, Redis errors, a wrong token, an unreachable service).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, ConfigError, HttpError, InvalidArgumentError, RedgeError, RedisError, UnavailableError } from 'redge';
import { deadUrl, token, unique, url } from './env.mjs';

const client = new Client({ url, token });

test('commands round-trip strings, numbers, null, arrays and bytes', async () => {
  const key = unique('k');
  assert.equal(await client.command(['SET', key, 'héllo 😀', 'EX', 60]), 'OK');
  assert.equal(await client.command(['GET', key]), 'héllo 😀');
  assert.equal(await client.command(['GET', unique('missing')]), null);
  const n = unique('n');
  assert.equal(await client.command(['INCRBY', n, 41]), 41);
  assert.equal(await client.command(['INCRBYFLOAT', n, 0.5]), '41.5');
  const list = unique('list');
  await client.command(['RPUSH', list, 'a', true, 7n]);
  assert.deepEqual(await client.command(['LRANGE', list, 0, -1]), ['a', 'true', '7']);
  const bin = unique('bin');
  assert.equal(await client.command(['SET', bin, new TextEncoder().encode('bytes')]), 'OK');
  assert.equal(await client.command(['GET', bin]), 'bytes');
  await assert.rejects(client.command(['SET', bin, new Uint8Array([0xff, 0xfe])]), (e) => e instanceof InvalidArgumentError && /UTF-8/.test(e.message));
  const big = unique('big');
  await client.command(['SET', big, '9007199254740993']);
  assert.equal(await client.command(['INCR', big]), 9007199254740994n, 'beyond 2^53 a BigInt keeps the value exact');
});

test('a pipeline answers per command, a failing one as a RedisError entry', async () => {
  const key = unique('p');
  const replies = await client.pipeline([
    ['SET', key, 'text'],
    ['INCR', key],
    ['GET', key],
  ]);
  assert.equal(replies[0], 'OK');
  assert.ok(replies[1] instanceof RedisError, String(replies[1]));
  assert.equal(replies[1].code, 'REDGE_REDIS');
  assert.match(replies[1].message, /not an integer/);
  assert.equal(replies[2], 'text');
  const stats = client.stats();
  assert.ok(stats.roundTrips >= 1 && stats.commands >= 3, JSON.stringify(stats));
  assert.equal(typeof stats.roundTrips, 'number');
});

test('Redis errors reject with RedisError and Redis text', async () => {
  const key = unique('e');
  await client.command(['SET', key, 'x']);
  await assert.rejects(client.command(['INCR', key]), (e) => e instanceof RedisError && e instanceof RedgeError && e instanceof Error && /ERR value is not an integer/.test(e.message) && e.code === 'REDGE_REDIS');
});

test('bad command arguments are InvalidArgumentError, never a trap', async () => {
  for (const bad of [undefined, 'GET k', [], [42, 'k'], ['GET', {}], ['GET', null], ['GET', () => 1], ['GET', Number.NaN], ['GET', Symbol('s')]]) {
    await assert.rejects(client.command(bad), (e) => e instanceof InvalidArgumentError && e.code === 'REDGE_INVALID_ARGUMENT', typeof bad);
  }
  await assert.rejects(client.pipeline('nope'), InvalidArgumentError);
  await assert.rejects(client.pipeline([['PING'], 'GET']), /pipeline command #1/);
  // The instance still works after all of that.
  assert.equal(await client.command(['PING']), 'PONG');
});

test('construction validates its options with messages that say what to fix', () => {
  assert.throws(() => new Client(), (e) => e instanceof InvalidArgumentError && /Client options/.test(e.message));
  assert.throws(() => new Client({ token }), /missing field `url`/);
  assert.throws(() => new Client({ url, token, timeout: 5 }), /unknown field `timeout`/);
  assert.throws(() => new Client({ url, token, timeoutMs: '5' }), /invalid type/);
  assert.throws(() => new Client({ url, token, timeoutMs: 0 }), /timeoutMs must be 1 to 60000/);
  assert.throws(() => new Client({ url, token, retries: 5 }), /retries must be 0 to 2/);
  assert.throws(() => new Client({ url: 'example.com', token }), (e) => e instanceof ConfigError && e.code === 'REDGE_CONFIG' && /UPSTASH_REDIS_REST_URL/.test(e.message));
  assert.throws(() => new Client({ url, token: ' ' }), ConfigError);
  assert.throws(() => new Client('url'), /expected an options object, got a string/);
});

test('fromEnv reads the SDK variable names and names the one missing', async () => {
  const fromEnv = Client.fromEnv({ UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token, OTHER: 1 }, { timeoutMs: 2000 });
  assert.equal(await fromEnv.command(['PING']), 'PONG');
  assert.throws(() => Client.fromEnv({ UPSTASH_REDIS_REST_URL: url }), (e) => e instanceof ConfigError && /UPSTASH_REDIS_REST_TOKEN is not set/.test(e.message));
  assert.throws(() => Client.fromEnv(undefined), InvalidArgumentError);
  // A Worker's env: the two secrets next to bindings of any type, none of which is read.
  const bindings = { SESSIONS: { get: async () => null }, QUEUE: class Queue {}, LIMIT: '60', WEIGHT: 3, FLAG: true, NOTHING: null };
  const workerEnv = Object.freeze({ ...bindings, UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token });
  assert.equal(await Client.fromEnv(workerEnv).command(['PING']), 'PONG');
  assert.throws(() => Client.fromEnv({ ...bindings, UPSTASH_REDIS_REST_URL: 42, UPSTASH_REDIS_REST_TOKEN: token }), (e) => e instanceof ConfigError && /UPSTASH_REDIS_REST_URL/.test(e.message));
  assert.throws(() => Client.fromEnv({ UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token }, { nope: 1 }), /unknown field `nope`/);
});

test('a wrong token is HttpError REDGE_UNAUTHORIZED; an unreachable service UnavailableError', async () => {
  const wrong = new Client({ url, token: 'not-the-token' });
  await assert.rejects(wrong.command(['PING']), (e) => e instanceof HttpError && e.code === 'REDGE_UNAUTHORIZED' && e.status === 401 && e.retryable === false);
  const dead = new Client({ url: deadUrl, token, timeoutMs: 300 });
  await assert.rejects(dead.command(['GET', 'k']), (e) => e instanceof UnavailableError && ['REDGE_UNREACHABLE', 'REDGE_TIMEOUT'].includes(e.code));
});

test('the read-your-writes token is kept and can be set', async () => {
  const c = new Client({ url, token });
  assert.equal(c.syncToken, undefined);
  await c.command(['PING']);
  assert.equal(typeof c.syncToken, 'string');
  c.syncToken = 'abc';
  assert.equal(c.syncToken, 'abc');
  c.syncToken = null;
  assert.equal(c.syncToken, undefined);
  assert.throws(() => {
    c.syncToken = 5;
  }, InvalidArgumentError);
});

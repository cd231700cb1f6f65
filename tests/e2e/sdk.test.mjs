// The official JavaScript SDKs (`@upstash/redis`, `@upstash/ratelimit`) against redge-gateway: the gateway
// must be a drop-in Upstash endpoint for them, since users migrate from them and the benchmarks run them.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Ratelimit } from '@upstash/ratelimit';
import { Redis } from '@upstash/redis';
import './env.mjs';

const url = process.env.REDGE_E2E_GATEWAY;
const token = process.env.REDGE_E2E_TOKEN;
const redis = new Redis({ url, token, enableTelemetry: false });
const key = (name) => `sdk:${randomUUID()}:${name}`;

test('@upstash/redis: strings, JSON values and non-ASCII text round-trip (base64 response encoding)', async () => {
  const json = key('json');
  assert.equal(await redis.set(json, { user: 'ada', n: 1 }), 'OK');
  assert.deepEqual(await redis.get(json), { user: 'ada', n: 1 });
  const text = key('text');
  await redis.set(text, 'héllo 😀 \u0000 bytes');
  assert.equal(await redis.get(text), 'héllo 😀 \u0000 bytes');
  assert.equal(await redis.get(key('missing')), null);
});

test('@upstash/redis: pipelines and transactions keep order and types', async () => {
  const counter = key('n');
  const hash = key('h');
  const pipeline = redis.pipeline();
  pipeline.incr(counter);
  pipeline.incrby(counter, 4);
  pipeline.hset(hash, { field: 'value' });
  pipeline.hgetall(hash);
  assert.deepEqual(await pipeline.exec(), [1, 5, 1, { field: 'value' }]);

  const tx = redis.multi();
  tx.incr(counter);
  tx.get(counter);
  assert.deepEqual(await tx.exec(), [6, 6]);
});

test('@upstash/redis: a failing command in a pipeline is reported as that command\'s error', async () => {
  const text = key('text');
  await redis.set(text, 'not a number');
  const pipeline = redis.pipeline();
  pipeline.incr(text);
  await assert.rejects(pipeline.exec(), /not an integer|ERR/);
});

test('@upstash/redis: scripts by EVAL, SCRIPT LOAD and EVALSHA', async () => {
  assert.deepEqual(await redis.eval('return {KEYS[1], ARGV[1]}', ['k'], ['v']), ['k', 'v']);
  const sha = await redis.scriptLoad('return 40 + 2');
  assert.match(sha, /^[0-9a-f]{40}$/);
  assert.equal(await redis.evalsha(sha, [], []), 42);
  assert.deepEqual(await redis.scriptExists(sha), [1]);
});

test('@upstash/redis: sorted sets with scores', async () => {
  const zset = key('z');
  assert.equal(await redis.zadd(zset, { score: 2, member: 'b' }, { score: 1, member: 'a' }), 2);
  assert.deepEqual(await redis.zrange(zset, 0, -1, { withScores: true }), ['a', 1, 'b', 2]);
});

test('@upstash/redis: a wrong token is refused with the SDK\'s own error', async () => {
  const bad = new Redis({ url, token: 'wrong', enableTelemetry: false, retry: false });
  await assert.rejects(bad.get('anything'), /401|Unauthorized|invalid/i);
});

for (const [name, limiter] of [
  ['sliding window', Ratelimit.slidingWindow(3, '10 s')],
  ['fixed window', Ratelimit.fixedWindow(3, '10 s')],
  ['token bucket', Ratelimit.tokenBucket(1, '10 s', 3)],
]) {
  test(`@upstash/ratelimit ${name}: allows exactly the limit, then refuses`, async () => {
    const limit = new Ratelimit({ redis, limiter, prefix: key('rl'), analytics: false });
    const decisions = [];
    for (let i = 0; i < 5; i += 1) {
      const result = await limit.limit('visitor');
      await result.pending;
      decisions.push([result.success, result.remaining]);
    }
    assert.deepEqual(decisions, [[true, 2], [true, 1], [true, 0], [false, 0], [false, 0]]);
  });
}

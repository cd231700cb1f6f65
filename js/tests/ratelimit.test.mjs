// The RateLimiter against the real gateway and Redis: decisions and their headers, several policies in
// one round trip, costs, peeks, resets, the block cache, leased quota, the failure policies, and bad
// arguments.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, InvalidArgumentError, RateLimiter } from 'redge';
import { deadUrl, token, unique, url } from './env.mjs';

const client = new Client({ url, token });

test('one quota: allowed until the budget is spent, then refused with an exact retry', async () => {
  const limiter = new RateLimiter(client, { limit: 3, periodMs: 60_000 });
  const id = unique('ip');
  const before = Date.now();
  for (let remaining = 2; remaining >= 0; remaining--) {
    const d = await limiter.limit(id);
    assert.equal(d.allowed, true);
    assert.equal(d.remaining, remaining);
    assert.equal(d.reason, 'withinLimit');
    assert.equal(d.limit, 3);
    assert.equal(d.retryAfter, 0);
  }
  const refused = await limiter.limit(id);
  assert.equal(refused.allowed, false);
  assert.equal(refused.reason, 'limitExceeded');
  assert.equal(refused.policy, 'default');
  assert.ok(refused.retryAfter > 0 && refused.retryAfter <= 20_000, String(refused.retryAfter));
  assert.ok(refused.reset >= before && refused.reset <= Date.now() + 60_000, 'reset is a Unix time in ms');
  assert.equal(refused.headers['Retry-After'], String(Math.ceil(refused.retryAfter / 1000)));
  assert.equal(refused.headers['RateLimit-Policy'], '"default";q=3;w=60');
  assert.match(refused.headers.RateLimit, /^"default";r=0;t=\d+$/);
  // The headers object goes straight into a Response.
  const response = new Response('slow down', { status: 429, headers: refused.headers });
  assert.equal(response.headers.get('retry-after'), refused.headers['Retry-After']);
  // Known to be blocked: this isolate answers without Redis.
  const again = await limiter.limit(id);
  assert.equal(again.reason, 'blockedLocally');
  assert.equal(typeof again.limit, 'number');
});

test('several policies: all must allow, a refusal charges none, and each reports its budget', async () => {
  const limiter = new RateLimiter(client, {
    policies: [
      { name: 'burst', limit: 2, periodMs: 10_000 },
      { name: 'hourly', algorithm: 'slidingWindow', limit: 100, periodMs: 3_600_000 },
      { name: 'bucket', algorithm: 'tokenBucket', limit: 10, periodMs: 60_000, burst: 5 },
      { name: 'window', algorithm: 'fixedWindow', limit: 50, periodMs: 60_000 },
    ],
    legacyHeaders: true,
  });
  assert.deepEqual(limiter.policies, ['burst', 'hourly', 'bucket', 'window']);
  const id = unique('user');
  await limiter.limit(id);
  const second = await limiter.limit(id);
  assert.equal(second.allowed, true);
  assert.equal(second.policy, 'burst', 'the policy with the least remaining decides');
  assert.deepEqual(second.policies.map((p) => p.policy), ['burst', 'hourly', 'bucket', 'window']);
  assert.equal(second.headers['X-RateLimit-Remaining'], '0');
  const third = await limiter.limit(id);
  assert.equal(third.allowed, false);
  const hourly = third.policies.find((p) => p.policy === 'hourly');
  assert.equal(hourly.remaining, 98, 'the refused request was not charged by the policies that allowed it');
  // Only the named policies are checked.
  const other = unique('user');
  const d = await limiter.limit(other, { policies: ['hourly'], cost: 10 });
  assert.deepEqual(d.policies.map((p) => p.policy), ['hourly']);
  assert.equal(d.remaining, 90);
});

test('cost, peek and reset', async () => {
  const limiter = new RateLimiter(client, { limit: 10, periodMs: 60_000, algorithm: 'tokenBucket' });
  const id = unique('key');
  assert.equal((await limiter.limit(id, { cost: 4 })).remaining, 6);
  const peek = await limiter.peek(id);
  assert.equal(peek.remaining, 6);
  assert.equal(peek.allowed, true);
  assert.equal((await limiter.peek(id)).remaining, 6, 'peeking charges nothing');
  await limiter.reset(id);
  assert.equal((await limiter.peek(id)).remaining, 10);
  await assert.rejects(limiter.limit(id, { cost: 11 }), (e) => e instanceof InvalidArgumentError && e.code === 'REDGE_INSUFFICIENT_CAPACITY' && e.capacity === 10 && e.cost === 11 && e.policy === 'default');
});

test('when Redis fails, the failure policy answers and says so', async () => {
  const dead = new Client({ url: deadUrl, token, timeoutMs: 300 });
  const quota = { limit: 1, periodMs: 60_000 };
  const open = await new RateLimiter(dead, { ...quota, failure: 'open' }).limit('a');
  assert.deepEqual([open.allowed, open.reason], [true, 'failOpen']);
  const closed = await new RateLimiter(dead, { ...quota, failure: 'closed' }).limit('a');
  assert.deepEqual([closed.allowed, closed.reason, closed.headers['Retry-After']], [false, 'failClosed', '1']);
  const local = new RateLimiter(dead, quota);
  assert.deepEqual([(await local.limit('a')).allowed, (await local.limit('a')).allowed], [true, false]);
  assert.equal((await local.limit('a')).reason, 'localFallback');
});

test('bad arguments reject with InvalidArgumentError naming what is wrong', async () => {
  const limiter = new RateLimiter(client, { limit: 5, periodMs: 1_000 });
  for (const [call, pattern] of [
    [() => limiter.limit(42), /identifier: expected a string, got a number/],
    [() => limiter.limit(undefined), /expected a string, got undefined/],
    [() => limiter.limit('x', { cost: -1 }), /limit options/],
    [() => limiter.limit('x', { cost: 1.5 }), /limit options/],
    [() => limiter.limit('x', { cots: 1 }), /unknown field `cots`/],
    [() => limiter.limit('x', 'cost'), /expected an options object, got a string/],
    [() => limiter.limit('x', { policies: ['nope'] }), /unknown policy "nope"; this limiter has default/],
    [() => limiter.peek('x', { policies: [] }), /policies is empty/],
    [() => limiter.reset(null), /reset: identifier/],
  ]) {
    await assert.rejects(call(), (e) => e instanceof InvalidArgumentError && pattern.test(e.message), String(pattern));
  }
  for (const [options, pattern] of [
    [undefined, /expected an options object, got undefined/],
    [{}, /give limit and a period/],
    [{ limit: 5, period: '1 min' }, /not a duration/],
    [{ limit: 5, period: '1m', periodMs: 60_000 }, /give the period once/],
    [{ limit: 5 }, /periodMs/],
    [{ limit: 5, periodMs: 1000, algorithm: 'leaky' }, /unknown algorithm "leaky"/],
    [{ limit: 10_001, periodMs: 60_000, algorithm: 'slidingLog' }, /sliding_log.*at most 10000/],
    [{ policies: [{ name: 'A', limit: 1, periodMs: 1 }] }, /must be 1 to 64 of a-z/],
    [{ policies: [{ name: 'a', limit: 1, periodMs: 1 }], limit: 2 }, /not both/],
    [{ limit: 5, periodMs: 1000, failure: 'maybe' }, /failure must be/],
    [{ limit: '5', periodMs: 1000 }, /invalid type/],
    [{ limit: 5, periodMs: 1000, leases: true }, /leases apply to fixedWindow policies only/],
    [{ limit: 5, periodMs: 1000, algorithm: 'fixedWindow', leases: { hotAfer: 3 } }, /unknown field `hotAfer`/],
    [{ limit: 5, periodMs: 1000, algorithm: 'fixedWindow', leases: { maxPercent: 0 } }, /max_percent must be 1 to 100/],
    [{ limit: 5, periodMs: 1000, algorithm: 'fixedWindow', leases: 'on' }, /true, false, or an object/],
  ]) {
    assert.throws(() => new RateLimiter(client, options), (e) => e instanceof InvalidArgumentError && pattern.test(e.message), String(pattern));
  }
  assert.throws(() => new RateLimiter({}, { limit: 1, periodMs: 1 }), /Client/);
  // The period the way @upstash/ratelimit writes it, and the Worker's spelling of a policy.
  const upstash = new RateLimiter(client, { limit: 5, period: '10 s' });
  assert.equal((await upstash.limit(unique('duration'))).policies[0].periodMs, 10_000);
  const worker = new RateLimiter(client, { policies: [{ name: 'a', limit: 1, period_s: 60, algorithm: 'sliding_window' }] });
  assert.equal((await worker.limit(unique('worker-spelling'))).policies[0].periodMs, 60_000);
  assert.equal((await limiter.limit(unique('still-works'))).allowed, true);
});

// A window of an hour: a test crosses a window's end rarely, and `windows` counts it when it does. A long
// timeout, so that a slow machine never hands a decision to the failure policy (which is not leasing).
const leased = { limit: 100, periodMs: 3_600_000, algorithm: 'fixedWindow', timeoutMs: 5_000, leases: { hotAfter: 5, renewEveryMs: 3_600_000 } };
const failureReasons = ['failOpen', 'failClosed', 'localFallback'];
/** How many fixed windows of `periodMs` the time from `start` to now touches. */
const windows = (start, periodMs) => Math.floor(Date.now() / periodMs) - Math.floor(start / periodMs) + 1;

test('leases: a hot identifier is decided without a round trip, and pending carries the renewals', async (t) => {
  const own = new Client({ url, token });
  const limiter = new RateLimiter(own, leased);
  const id = unique('hot');
  const reasons = [];
  const before = own.stats().roundTrips;
  for (let i = 0; i < 40; i++) {
    const d = await limiter.limit(id);
    assert.equal(d.allowed, true);
    assert.ok(d.pending instanceof Promise, 'every decision carries pending');
    reasons.push(d.reason);
    // What a Worker hands to ctx.waitUntil; it never rejects.
    assert.equal(await d.pending, undefined);
  }
  const roundTrips = own.stats().roundTrips - before;
  const fromLeases = reasons.filter((r) => r === 'leased').length;
  t.diagnostic(`40 decisions: ${fromLeases} from leases, ${roundTrips} round trips in all`);
  // Cold at first: each request checked in Redis until the identifier is hot.
  assert.deepEqual(reasons.slice(0, 5), Array(5).fill('withinLimit'));
  assert.ok(fromLeases >= 20, `decided from leases: ${fromLeases} of 40 (${reasons.join(' ')})`);
  // Each decision not from a lease cost one round trip; the renewals add fewer than the leased ones save.
  assert.ok(roundTrips < 40, `40 decisions cost ${roundTrips} round trips`);
  assert.ok(roundTrips >= 40 - fromLeases, `${roundTrips} round trips for ${40 - fromLeases} checks in Redis`);
  // A batch's decision carries pending too.
  const [inBatch] = await own.batch().limit(limiter, id).send();
  assert.equal(inBatch.allowed, true);
  assert.ok(inBatch.pending instanceof Promise);
  await inBatch.pending;
});

test('leases: two isolates on one identifier never admit more than the limit, and at most their leases fewer', async (t) => {
  // Two clients and two limiters: what two isolates of a Worker hold.
  const isolates = [0, 1].map(() => new RateLimiter(new Client({ url, token }), leased));
  const id = unique('shared');
  const start = Date.now();
  let allowed = 0;
  let fromLeases = 0;
  for (let burst = 0; burst < 30; burst++) {
    const decisions = await Promise.all(isolates.flatMap((limiter) => Array.from({ length: 5 }, () => limiter.limit(id))));
    allowed += decisions.filter((d) => d.allowed).length;
    fromLeases += decisions.filter((d) => d.reason === 'leased').length;
    assert.deepEqual(decisions.filter((d) => failureReasons.includes(d.reason)), [], 'Redis answered every check');
    await Promise.all(decisions.map((d) => d.pending));
  }
  const spanned = windows(start, leased.periodMs);
  t.diagnostic(`300 requests, limit ${leased.limit}: ${allowed} admitted, ${fromLeases} from leases, ${spanned} window(s)`);
  assert.ok(fromLeases > 0, 'some decisions came from leases');
  assert.ok(allowed <= leased.limit * spanned, `admitted ${allowed} of 300 with a limit of ${leased.limit}`);
  // The bound: at most one maximum lease (10 % of the limit) per isolate counted and never spent.
  if (spanned === 1) {
    assert.ok(allowed >= leased.limit - 2 * 10, `admitted ${allowed}: more under-admission than the bound allows`);
  }
});

// The colo tier (CACHE_COLO_TTL_MS: lookups through the location's Cache API, caches.default) in real
// workerd: a Worker of its own with a short colo TTL, against the stack's gateway and redis-server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, redis, roundTrips } from './env.mjs';
import { redisCommand, startExtraWorker } from './workers.mjs';

/** The colo TTL under test: short, so that the bound can be waited out. */
const COLO_TTL_MS = 1500;
/** What the machine may add to the bound: a request's own time, the poll interval, a busy CPU. */
const SLACK_MS = 1000;

let worker;
before(async () => {
  worker = await startExtraWorker({ vars: { CACHE_COLO_TTL_MS: String(COLO_TTL_MS), DEMO_ORIGIN_LATENCY_MS: '20' } });
});
after(async () => {
  await worker?.stop();
});

async function lookup(id) {
  const response = await fetch(`${worker.url}/api/lookup/${id}`);
  const body = await response.json();
  return { status: response.status, body, trips: roundTrips(response), at: Date.now() };
}

async function invalidate(path) {
  const response = await fetch(`${worker.url}/api/lookup/${path}`, { method: 'DELETE' });
  await response.arrayBuffer();
  return response.status;
}

/** Ids in a range the other files leave alone (they use 100 to 900 and 5100 up). */
const freshId = (() => {
  let next = 901 + Math.floor(Math.random() * 40);
  return () => next++;
})();

/** A miss for `id`, then the first answer from the colo (its put runs after the miss's response). */
async function warm(id) {
  assert.equal(await invalidate(id), 204);
  const miss = await lookup(id);
  assert.equal(miss.body.status, 'miss');
  const hit = await eventually(async () => {
    const answer = await lookup(id);
    return answer.body.from_colo ? answer : null;
  }, { timeoutMs: 5_000, intervalMs: 20 });
  assert.ok(hit, 'the value reached the colo');
  return { miss, hit };
}

test('a miss, then hits from the colo with no Redis round trip', async () => {
  const id = freshId();
  const { miss, hit } = await warm(id);
  assert.equal(miss.trips, 2, 'the miss: read, then write');
  assert.equal(miss.body.from_colo, false);
  assert.equal(hit.status, 200);
  assert.equal(hit.body.status, 'hit');
  assert.equal(hit.trips, 0, 'Server-Timing: 0 round trips');
  assert.equal(hit.body.round_trips, 0);
  assert.deepEqual(hit.body.value, miss.body.value, 'the value the miss fetched');
  assert.equal(hit.body.origin_calls, miss.body.origin_calls, 'no origin call');
  const metrics = await (await fetch(`${worker.url}/api/cache/metrics`)).json();
  assert.ok(metrics.groups.lookup.colo_hits >= 1);
});

test('the dashboard serves its item from the colo: no round trip without a cookie', async () => {
  const id = freshId();
  await warm(id);
  const response = await fetch(`${worker.url}/api/dashboard?item=${id}`);
  const body = await response.json();
  assert.equal(response.status, 200);
  assert.equal(body.item.from_colo, true);
  assert.equal(roundTrips(response), 0);
  assert.equal(body.round_trips, 0);
});

test('after an invalidation through the Worker the next read is not the old value', async () => {
  const id = freshId();
  const { hit } = await warm(id);
  assert.equal(await invalidate(id), 204);
  const next = await lookup(id);
  assert.equal(next.body.from_colo, false);
  assert.equal(next.body.status, 'miss');
  assert.notEqual(next.body.value.fetched_at, hit.body.value.fetched_at, 'fetched again');

  // A tag invalidated through this Worker: its isolate fences every colo entry at once.
  const other = freshId();
  const warmed = await warm(other);
  assert.equal(await invalidate(`tags/group-${other % 10}`), 204);
  const after = await lookup(other);
  assert.equal(after.body.status, 'miss');
  assert.notEqual(after.body.value.fetched_at, warmed.hit.body.value.fetched_at);
});

test(`a tag invalidated elsewhere is seen within CACHE_COLO_TTL_MS (${COLO_TTL_MS} ms)`, async (t) => {
  const id = freshId();
  const { hit } = await warm(id);
  // Another location's invalidation: the tag's generation goes up in Redis, this Worker is not told.
  await redisCommand('INCR', `redge:lookup:t:group-${id % 10}`);
  const changedAt = Date.now();
  const served = [];
  const seen = await eventually(async () => {
    const answer = await lookup(id);
    served.push(answer);
    return answer.body.value.fetched_at !== hit.body.value.fetched_at ? answer : null;
  }, { timeoutMs: COLO_TTL_MS + 5_000, intervalMs: 100 });
  assert.ok(seen, 'the invalidation was seen');
  assert.equal(seen.body.status, 'miss');
  assert.ok(seen.at - changedAt <= COLO_TTL_MS + SLACK_MS, `seen ${seen.at - changedAt} ms after the change`);
  const old = served.filter((a) => a.body.value.fetched_at === hit.body.value.fetched_at);
  assert.ok(old.length >= 1, 'inside the bound the colo answered, without asking Redis');
  assert.ok(old.every((a) => a.body.from_colo && a.trips === 0));
  t.diagnostic(`seen ${seen.at - changedAt} ms after the change; ${old.length} colo answers before`);
});

test('with Redis stopped, colo hits are served until the bound, then the origin answers', async (t) => {
  const id = freshId();
  const { hit } = await warm(id);
  await redis('stop');
  try {
    const down = await lookup(id);
    assert.equal(down.status, 200);
    assert.equal(down.body.status, 'hit');
    assert.equal(down.body.from_colo, true);
    assert.equal(down.trips, 0);
    assert.deepEqual(down.body.value, hit.body.value);
    const bypass = await eventually(async () => {
      const answer = await lookup(id);
      return answer.body.status === 'bypass' ? answer : null;
    }, { timeoutMs: COLO_TTL_MS + 10_000, intervalMs: 100 });
    assert.ok(bypass, 'past the bound the colo no longer answers');
    assert.ok(bypass.at - hit.at <= COLO_TTL_MS + SLACK_MS + 1_000, `${bypass.at - hit.at} ms`);
    assert.equal(bypass.body.from_colo, false);
    t.diagnostic(`colo answers for ${bypass.at - hit.at} ms after the first colo hit, then bypass`);
  } finally {
    await redis('start');
  }
});

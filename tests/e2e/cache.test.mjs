// Cached lookups through the Worker, in real workerd, against the real gateway and redis-server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, redis, workerUrl } from './env.mjs';

async function lookup(id) {
  const response = await fetch(`${workerUrl}/api/lookup/${id}`);
  return { status: response.status, body: await response.json(), headers: response.headers };
}

async function invalidate(path) {
  const response = await fetch(`${workerUrl}/api/lookup/${path}`, { method: 'DELETE' });
  await response.arrayBuffer();
  return response.status;
}

/** An id no other test touched, so each test starts from a miss. */
const freshId = (() => {
  let next = 100 + Math.floor(Math.random() * 800);
  return () => next++;
})();

test('a miss goes to the origin once, then the same id is a hit', async () => {
  const id = freshId();
  assert.equal(await invalidate(id), 204);
  const miss = await lookup(id);
  assert.equal(miss.status, 200);
  assert.equal(miss.body.status, 'miss');
  assert.equal(miss.body.cache_status, 'miss');
  assert.equal(miss.body.id, id);
  assert.equal(miss.body.value.id, id);
  assert.equal(miss.body.value.name, `Item ${id}`);
  assert.equal(typeof miss.body.took_ms, 'number');
  assert.equal(miss.body.round_trips, 2, 'read, then write');
  assert.equal(miss.headers.get('cache-control'), 'no-store');

  const hit = await lookup(id);
  assert.equal(hit.body.status, 'hit');
  assert.deepEqual(hit.body.value, miss.body.value, 'the cached value, not a new fetch');
  assert.equal(hit.body.origin_calls, miss.body.origin_calls, 'no origin call on a hit');
  assert.equal(hit.body.round_trips, 1);
});

test('invalidating a key makes the next lookup a miss', async () => {
  const id = freshId();
  await lookup(id);
  assert.equal((await lookup(id)).body.status, 'hit');
  assert.equal(await invalidate(id), 204);
  assert.equal((await lookup(id)).body.status, 'miss');
});

test('invalidating a tag reaches every id of the group and only those', async () => {
  const ids = [freshId(), freshId()];
  const group = ids[0] % 10;
  const same = ids[0] + 10;
  for (const id of [...ids, same]) await lookup(id);
  assert.equal(await invalidate(`tags/group-${group}`), 204);
  assert.equal((await lookup(ids[0])).body.status, 'miss');
  assert.equal((await lookup(same)).body.status, 'miss');
  assert.equal((await lookup(ids[1])).body.status, 'hit', 'another group is untouched');
  assert.equal(await invalidate('tags/demo'), 204);
  assert.equal((await lookup(ids[1])).body.status, 'miss', 'every value carries the demo tag');
});

test('unknown ids are 404 problems and then negative hits; bad ids are 400', async () => {
  const id = 5000 + freshId();
  const first = await lookup(id);
  assert.equal(first.status, 404);
  assert.match(first.headers.get('content-type'), /application\/problem\+json/);
  assert.equal(first.body.status, 404, 'RFC 9457: status is the HTTP status');
  assert.equal(first.body.cache_status, 'miss');
  assert.equal(first.body.value, null);
  const second = await lookup(id);
  assert.equal(second.status, 404);
  assert.equal(second.body.cache_status, 'negative');

  for (const bad of ['abc', '0', '-1', '1.5', '99999999999999999999999']) {
    const answer = await lookup(bad);
    assert.equal(answer.status, 400, bad);
    assert.equal(answer.body.status, 400);
    assert.match(answer.body.detail, /positive integer/);
  }
  assert.equal(await invalidate('nope'), 400);
});

test('with Redis stopped the origin still answers, and the cache recovers', async () => {
  const id = freshId();
  await redis('stop');
  try {
    const down = await lookup(id);
    assert.equal(down.status, 200);
    assert.equal(down.body.status, 'bypass');
    assert.equal(down.body.value.id, id);
    assert.equal(await invalidate(id), 503, 'invalidation reports the outage');
  } finally {
    await redis('start');
  }
  // The breaker skips Redis for a few seconds, then probes it again.
  const back = await eventually(async () => {
    const answer = await lookup(id);
    return answer.body.status === 'hit' ? answer : null;
  }, { timeoutMs: 20_000, intervalMs: 500 });
  assert.ok(back, 'the cache was used again after Redis came back');
  const metrics = await (await fetch(`${workerUrl}/api/cache/metrics`)).json();
  assert.equal(metrics.breaker, 'closed');
  assert.ok(metrics.groups.lookup.bypass >= 1);
});

test('concurrent lookups of one id share one origin call, and every one of them is answered', async () => {
  const id = freshId();
  assert.equal(await invalidate(id), 204);
  const before = (await (await fetch(`${workerUrl}/api/cache/metrics`)).json()).groups.lookup ?? {};
  // The demo origin takes DEMO_ORIGIN_LATENCY_MS (300 ms): the followers arrive while the leader waits.
  const answers = await Promise.all(Array.from({ length: 8 }, async () => {
    const response = await fetch(`${workerUrl}/api/lookup/${id}`);
    return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
  }));
  for (const answer of answers) {
    assert.equal(answer.status, 200, answer.text.slice(0, 300));
    assert.match(answer.type, /application\/json/);
    assert.equal(JSON.parse(answer.text).value.id, id);
  }
  const values = new Set(answers.map((a) => JSON.stringify(JSON.parse(a.text).value)));
  assert.equal(values.size, 1, 'every follower got the leader\'s value');
  const after = (await (await fetch(`${workerUrl}/api/cache/metrics`)).json()).groups.lookup;
  assert.ok(after.coalesced > (before.coalesced ?? 0), `no lookup was coalesced: ${JSON.stringify(after)}`);
});

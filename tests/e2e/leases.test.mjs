// Leased quota in the Worker (RATELIMIT_LEASES=on), in real workerd against the real stack: a hot client
// on a fixed-window policy is decided from leases, with no round trip on most requests, and never gets
// more than the limit. An extra Worker runs here with its own configuration: the rate-limit routes
// spend from `hot` (fixed window, 300 per day) per client, and the route spends from `hot` per `?id=`.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startExtraWorker } from './workers.mjs';

const LIMIT = 300;
let worker;
before(async () => {
  worker = await startExtraWorker({
    vars: {
      RATELIMIT_LEASES: 'on',
      RATELIMIT_PREFIX: `e2e-lease-${randomUUID()}`,
      RATELIMIT_POLICIES: JSON.stringify([
        { name: 'api', algorithm: 'gcra', limit: 1000, period_s: 60, burst: 200 },
        // A day-long window, so that the test does not cross into the next one.
        { name: 'hot', algorithm: 'fixed_window', limit: LIMIT, period_s: 86_400 },
      ]),
      RATELIMIT_ROUTES: JSON.stringify({ ratelimit: 'hot' }),
    },
  });
});
after(async () => {
  await worker?.stop();
});

test('a hot client is decided from leases: most requests cost no round trip, none passes the limit', async () => {
  let allowed = 0;
  let leased = 0;
  let leasedWithoutRoundTrip = 0;
  for (let i = 0; i < LIMIT + 100; i++) {
    const response = await fetch(`${worker.url}/api/ratelimit/hot?id=e2e-hot`, { method: 'POST' });
    const body = await response.json();
    if (response.status === 200) allowed++;
    else assert.equal(response.status, 429, JSON.stringify(body));
    if (body.decision?.reason === 'leased') {
      leased++;
      if (body.round_trips === 0) leasedWithoutRoundTrip++;
    }
  }
  // Two keys lease (the client's route limit and the route's `?id=`), each at most 10 % of the limit
  // left unused: the stated bound.
  assert.ok(allowed <= LIMIT, `${allowed} allowed`);
  assert.ok(allowed >= LIMIT - 2 * (LIMIT / 10), `${allowed} allowed`);
  assert.ok(leased >= LIMIT / 2, `${leased} decisions from leases`);
  assert.ok(leasedWithoutRoundTrip >= leased / 2, `${leasedWithoutRoundTrip} of ${leased} without a round trip`);
});

test('three Workers leasing one identifier never admit more than the limit, and leave at most their leases unused', async () => {
  const prefix = `e2e-lease3-${randomUUID()}`;
  const vars = {
    RATELIMIT_LEASES: 'on',
    RATELIMIT_PREFIX: prefix,
    RATELIMIT_POLICIES: JSON.stringify([
      { name: 'api', algorithm: 'gcra', limit: 1000, period_s: 60, burst: 200 },
      { name: 'hot', algorithm: 'fixed_window', limit: LIMIT, period_s: 86_400 },
    ]),
    RATELIMIT_ROUTES: JSON.stringify({ ratelimit: 'hot' }),
  };
  const workers = [];
  try {
    for (let i = 0; i < 3; i++) workers.push(await startExtraWorker({ vars }));
    const per = workers.map(() => ({ allowed: 0, leased: 0 }));
    // Three at a time, one to each Worker, until every Worker has been refused for a while.
    for (let round = 0; round < (LIMIT + 150) / 3; round++) {
      await Promise.all(workers.map(async (w, i) => {
        const response = await fetch(`${w.url}/api/ratelimit/hot?id=e2e-hot3`, { method: 'POST' });
        const body = await response.json();
        if (response.status === 200) per[i].allowed++;
        else assert.equal(response.status, 429, JSON.stringify(body));
        if (body.decision?.reason === 'leased') per[i].leased++;
      }));
    }
    const allowed = per.reduce((n, w) => n + w.allowed, 0);
    const leased = per.reduce((n, w) => n + w.leased, 0);
    // The stated bound: never more than the limit; unused units at most workers x keys x 10 % of it
    // (each request spends from two leased keys: the client's route limit and the route's `?id=`).
    const floor = LIMIT - workers.length * 2 * (LIMIT / 10);
    console.log(`# three Workers, one identifier, limit ${LIMIT}: ${allowed} admitted (${per.map((w) => w.allowed).join(' + ')}), ${leased} decided from leases, bound ${floor}..${LIMIT}`);
    assert.ok(allowed <= LIMIT, `${allowed} admitted: over the limit`);
    assert.ok(allowed >= floor, `${allowed} admitted: under ${floor}`);
    assert.ok(per.every((w) => w.leased > 0), 'every Worker decided from a lease');
  } finally {
    for (const w of workers) await w.stop();
  }
});

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

// The Worker's journey through a Redis Cluster: real workerd, the real gateway in cluster mode, three masters
// with a replica each. Sign in (as one user, again as the same user, then as another user from the same
// browser), the session read and a write, the session list, a rate-limit burst with its exact quota, a lookup
// miss then a hit, a tag invalidation, the dashboard and sign out; then one master is killed, its replica is
// promoted, and the same journey passes again, with every session written before the failover still there.
// Run through `npm test -- cluster`, which starts the cluster, the gateway and the Worker.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Browser } from '../e2e/browser.mjs';
import { controlUrl, eventually, workerUrl } from '../e2e/env.mjs';

const unique = (name) => `${name}-${randomUUID()}`;

/** Users signed in before the failover, with the data each wrote: read back after it. */
const before = [];

async function journey(label) {
  const browser = new Browser();
  const alice = unique(`${label}-alice`);
  const signIn = await browser.signIn(alice);
  assert.equal(signIn.status, 201, `${label}: sign in ${JSON.stringify(signIn.body)}`);
  const read = await browser.call('GET', '/api/session');
  assert.equal(read.status, 200);
  assert.equal(read.body.session.user, alice);
  const write = await browser.call('PATCH', '/api/session', { body: { data: { cart: [label] } } });
  assert.equal(write.status, 200, JSON.stringify(write.body));

  // The same user again: a new token, the data carried over.
  const again = await browser.signIn(alice);
  assert.equal(again.status, 201);
  assert.deepEqual(again.body.session.data, { cart: [label] }, 'same user: data kept');
  const list = await browser.call('GET', '/api/sessions');
  assert.equal(list.status, 200);
  assert.equal(list.body.sessions.length, 1, 'the replaced session left the index');

  // Another user from the same browser: the old session ends, nothing of it is carried over.
  const oldCookie = browser.cookie;
  const bob = unique(`${label}-bob`);
  const other = await browser.signIn(bob);
  assert.equal(other.status, 201);
  assert.equal(other.body.session.user, bob);
  assert.deepEqual(other.body.session.data, {}, 'another user: nothing carried over');
  const stale = new Browser();
  stale.cookie = oldCookie;
  assert.equal((await stale.call('GET', '/api/session')).status, 401, 'the replaced session is gone');
  const bobWrite = await browser.call('PATCH', '/api/session', { body: { data: { written: label } } });
  assert.equal(bobWrite.status, 200);

  // A burst with its exact quota: "burst" allows 5, the 6th is refused.
  const id = unique(`${label}-rl`);
  for (let i = 1; i <= 5; i++) {
    const response = await fetch(`${workerUrl}/api/ratelimit/burst?id=${id}`, { method: 'POST' });
    const body = await response.json();
    assert.equal(response.status, 200, `${label}: request ${i}: ${JSON.stringify(body)}`);
    assert.equal(body.decision.remaining, 5 - i);
  }
  const refused = await fetch(`${workerUrl}/api/ratelimit/burst?id=${id}`, { method: 'POST' });
  await refused.arrayBuffer();
  assert.equal(refused.status, 429);

  // A lookup: invalidated first, so a miss, then a hit; a tag invalidation makes it a miss again.
  const item = 100 + Math.floor(Math.random() * 800);
  const origin = new URL(workerUrl).origin;
  const invalidated = await fetch(`${workerUrl}/api/lookup/${item}`, { method: 'DELETE', headers: { origin } });
  assert.equal(invalidated.status, 204);
  const miss = await (await fetch(`${workerUrl}/api/lookup/${item}`)).json();
  assert.equal(miss.status, 'miss', JSON.stringify(miss));
  const hit = await (await fetch(`${workerUrl}/api/lookup/${item}`)).json();
  assert.equal(hit.status, 'hit', JSON.stringify(hit));
  assert.deepEqual(hit.value, miss.value);
  const tag = await fetch(`${workerUrl}/api/lookup/tags/group-${item % 10}`, { method: 'DELETE', headers: { origin } });
  assert.equal(tag.status, 204);
  const afterTag = await (await fetch(`${workerUrl}/api/lookup/${item}`)).json();
  assert.equal(afterTag.status, 'miss', 'the tag invalidation reached the entry');

  // The dashboard: the decision, the session and the item in one round trip.
  const dashboard = await browser.call('GET', `/api/dashboard?item=${item}`);
  assert.equal(dashboard.status, 200, JSON.stringify(dashboard.body));
  assert.equal(dashboard.body.signed_in, true);
  assert.equal(dashboard.body.session.user, bob);
  assert.equal(dashboard.body.ratelimit.allowed, true);
  assert.equal(dashboard.roundTrips, 1);

  return { browser, user: bob, data: { written: label } };
}

test('the journey passes through the cluster', async () => {
  await journey('first');
  // Users whose sessions must survive the failover: spread over many slots, so some live on the master
  // that is killed next.
  for (let i = 0; i < 12; i++) before.push(await journey(`before-${i}`));
});

test('a master is killed: its replica takes over and the journey passes again, no session lost', async () => {
  // The runner waits until the master's replica has every write (its replication offset) before it
  // kills the master, so the sessions above must all be there afterwards; a write the replica had not
  // received would be lost (Redis replicates asynchronously), which `npm run soak -- cluster` counts
  // under load.
  const response = await fetch(`${controlUrl}/cluster/kill-master`, { method: 'POST' });
  assert.equal(response.status, 200, await response.clone().text());
  const killed = await response.json();
  assert.ok(killed.port > 0, JSON.stringify(killed));
  const started = performance.now();
  const recovered = await eventually(
    async () => {
      try {
        await journey('probe');
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: 60_000, intervalMs: 1_000 },
  );
  assert.ok(recovered, 'the journey did not pass within 60 s of the failover');
  console.log(`# the journey passed again ${Math.round(performance.now() - started)} ms after the master on port ${killed.port} was killed`);
  await journey('after');
  for (const visitor of before) {
    const read = await visitor.browser.call('GET', '/api/session');
    assert.equal(read.status, 200, `the session of ${visitor.user} after the failover`);
    assert.equal(read.body.session.user, visitor.user);
    assert.deepEqual(read.body.session.data, visitor.data);
  }
});

// The Worker's HTTP routes, in real workerd, against the real gateway and redis-server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, redis, workerUrl } from './env.mjs';

async function health() {
  const started = Date.now();
  const response = await fetch(`${workerUrl}/api/health`);
  return { status: response.status, body: await response.json(), ms: Date.now() - started, headers: response.headers };
}

test('health reports Redis reachable with its latency', async () => {
  const { status, body, headers } = await health();
  assert.equal(status, 200);
  assert.equal(body.status, 'ok');
  assert.equal(body.redis.ok, true);
  assert.equal(typeof body.redis.latency_ms, 'number');
  assert.ok(body.redis.latency_ms >= 0);
  assert.match(headers.get('content-type'), /application\/json/);
  assert.equal(headers.get('cache-control'), 'no-store');
});

test('health answers 503 with a reason while Redis is down, and recovers without restarts', async () => {
  await redis('stop');
  try {
    const down = await health();
    assert.equal(down.status, 503);
    assert.match(down.headers.get('content-type'), /application\/problem\+json/);
    assert.equal(down.body.status, 503);
    assert.equal(down.body.title, 'Service Unavailable');
    assert.equal(down.body.redis.ok, false);
    assert.match(down.body.redis.error, /unavailable|503/i);
    assert.ok(down.ms < 2000, `answered after ${down.ms} ms`);
  } finally {
    await redis('start');
  }
  const up = await eventually(async () => {
    const answer = await health();
    return answer.status === 200 ? answer : null;
  });
  assert.ok(up, 'health did not recover after Redis restarted');
  assert.equal(up.body.redis.ok, true);
});

test('unknown API routes are JSON problems, not HTML', async () => {
  const response = await fetch(`${workerUrl}/api/does-not-exist`);
  assert.equal(response.status, 404);
  assert.match(response.headers.get('content-type'), /application\/problem\+json/);
  const body = await response.json();
  assert.equal(body.status, 404);
  assert.match(body.detail, /\/api\/does-not-exist/);
});

test('the demo page is served as a static asset', async () => {
  const response = await fetch(`${workerUrl}/`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /text\/html/);
  assert.match(await response.text(), /<title>redge demo<\/title>/);
});

// Hostile clients and operator mistakes, against the Worker in real workerd: spoofed and missing client
// addresses, IPv6 rotation, floods of tag invalidations and of rate-limit identifiers, a chunked
// oversized body, a proxy in front of a loopback Worker, credentials pasted into URL variables, and the
// page's own headers. Two extra Workers run here with their own configuration: one behind a "proxy"
// (TRUSTED_CLIENT_IP_HEADER=x-forwarded-for, a tiny `api` budget), one misconfigured.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { workerUrl } from './env.mjs';
import { redisCommand, startExtraWorker } from './workers.mjs';

// The Worker behind a proxy: the client's address is the last entry of X-Forwarded-For, and the `api`
// budget is 4 (GCRA: one more every 15 s, so none comes back while a test runs). A fresh key prefix
// per run.
const API_LIMIT = 4;
let proxied;
before(async () => {
  proxied = await startExtraWorker({
    vars: {
      TRUSTED_CLIENT_IP_HEADER: 'x-forwarded-for',
      RATELIMIT_PREFIX: `e2e-guard-${randomUUID()}`,
      RATELIMIT_POLICIES: JSON.stringify([
        { name: 'api', algorithm: 'gcra', limit: API_LIMIT, period_s: 60, burst: API_LIMIT },
        { name: 'burst', algorithm: 'gcra', limit: 5, period_s: 10, burst: 5 },
      ]),
    },
  });
});
after(async () => {
  await proxied?.stop();
});

/** `GET /api/health` on the proxied Worker as the client `forwardedFor` (no header when null). */
async function health(forwardedFor) {
  const headers = forwardedFor === null ? {} : { 'x-forwarded-for': forwardedFor };
  const response = await fetch(`${proxied.url}/api/health`, { headers });
  await response.arrayBuffer();
  return response;
}

async function statuses(requests) {
  const out = [];
  for (const request of requests) out.push((await request()).status);
  return out;
}

test('the trusted proxy header decides: addresses a client prepends do not make it someone else', async () => {
  const spoofed = ['198.51.100.1', '198.51.100.2', '10.0.0.1', '192.0.2.44', '198.51.100.9'];
  const got = await statuses(spoofed.map((fake) => () => health(`${fake}, 203.0.113.7`)));
  assert.deepEqual(got, [200, 200, 200, 200, 429], 'one client whatever it prepends');
  const response = await health('203.0.113.7');
  assert.equal(response.status, 429);
  assert.match(response.headers.get('ratelimit-policy'), /^"api";q=4;/);
  assert.equal((await health('203.0.113.8')).status, 200, 'another client has its own budget');
});

test('an IPv6 client rotating through its /64 is one client; the next /64 is another', async () => {
  const rotated = [1, 2, 3, 4, 5].map((n) => () => health(`2001:db8:77:1::${n.toString(16)}:${n}`));
  assert.deepEqual(await statuses(rotated), [200, 200, 200, 200, 429]);
  assert.equal((await health('2001:db8:77:1:ffff:ffff:ffff:ffff')).status, 429);
  assert.equal((await health('2001:db8:77:2::1')).status, 200);
});

test('a request with no trusted address is keyed `unknown`: one budget all such requests share', async () => {
  // The readiness probe of startWorker already spent from it: count from what the first answer says.
  const first = await health(null);
  assert.equal(first.status, 200);
  const remaining = Number(/r=(\d+)/.exec(first.headers.get('ratelimit'))[1]);
  const kinds = ['not-an-address', '', null];
  const got = [];
  for (let i = 0; i <= remaining; i++) got.push((await health(kinds[i % kinds.length])).status);
  assert.deepEqual(got, [...Array(remaining).fill(200), 429]);
});

test('rotating ?id= on the rate-limit routes does not escape the client\'s route budget', async () => {
  const client = '203.0.113.50';
  const spend = async (i) => {
    const response = await fetch(`${proxied.url}/api/ratelimit/burst?id=rotate-${randomUUID()}-${i}`, { method: 'POST', headers: { 'x-forwarded-for': client } });
    return { status: response.status, body: await response.json() };
  };
  const answers = [];
  for (let i = 0; i < API_LIMIT + 1; i++) answers.push(await spend(i));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 429]);
  assert.equal(answers[API_LIMIT].body.decision.policy, 'api', 'refused by the route limit, not by `burst`');
  // Routes without Redis work are not charged, so they still answer.
  const index = await fetch(`${proxied.url}/api`, { headers: { 'x-forwarded-for': client } });
  assert.equal(index.status, 200);
  assert.equal(index.headers.get('ratelimit-policy'), null);
  await index.arrayBuffer();
});

test('signing in costs two units of the route budget', async () => {
  const client = '203.0.113.60';
  const origin = new URL(proxied.url).origin;
  const signIn = async () => {
    const response = await fetch(`${proxied.url}/api/session`, {
      method: 'POST',
      headers: { 'x-forwarded-for': client, origin, 'content-type': 'application/json' },
      body: JSON.stringify({ user: `guard-${randomUUID()}` }),
    });
    await response.arrayBuffer();
    return response;
  };
  assert.deepEqual(await statuses([signIn, signIn, signIn]), [201, 201, 429]);
});

test('behind a proxy a loopback Worker never sends the development cookie', async () => {
  // This Worker has SESSION_COOKIE_INSECURE=true (as `npm start` runs it) and is reached over
  // http://127.0.0.1, but the request carries a proxy's header: the cookie stays __Host- and Secure.
  const origin = new URL(proxied.url).origin;
  const response = await fetch(`${proxied.url}/api/session`, {
    method: 'POST',
    headers: { 'x-forwarded-for': '203.0.113.70', origin, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'behind-proxy' }),
  });
  assert.equal(response.status, 201);
  const cookie = response.headers.get('set-cookie');
  assert.match(cookie, /^__Host-redge_session=/);
  assert.match(cookie, /;\s*Secure/i);
  // Straight from loopback (no proxy header) the same Worker sends the development cookie.
  const direct = await fetch(`${workerUrl}/api/session`, {
    method: 'POST',
    headers: { origin: new URL(workerUrl).origin, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'direct' }),
  });
  assert.equal(direct.status, 201);
  assert.match(direct.headers.get('set-cookie'), /^redge_session=/);
});

test('only the tags items carry can be invalidated: a tag flood creates no keys', async () => {
  const tag = `flood-${randomUUID()}`;
  for (let i = 0; i < 5; i++) {
    const response = await fetch(`${workerUrl}/api/lookup/tags/${tag}-${i}`, { method: 'DELETE' });
    assert.equal(response.status, 400);
    const problem = await response.json();
    assert.match(problem.detail, /group-0/);
  }
  const written = await redisCommand('KEYS', `*${tag}*`);
  assert.deepEqual(written, [], 'no generation key for a refused tag');
  const known = await fetch(`${workerUrl}/api/lookup/tags/group-3`, { method: 'DELETE' });
  assert.equal(known.status, 204);
});

test('a chunked body a little over the cap is answered 413 and leaves the connection clean', async () => {
  const chunk = new Uint8Array(16 * 1024).fill(0x20);
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (sent >= 32) return controller.close();
      sent += 1;
      controller.enqueue(chunk);
    },
  });
  const response = await fetch(`${workerUrl}/api/ratelimit/burst?id=chunked-${randomUUID()}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    duplex: 'half',
  });
  assert.equal(response.status, 413);
  assert.match((await response.json()).detail, /over 65536 bytes/);
  const next = await fetch(`${workerUrl}/api`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(next.status, 200, 'the next request is answered at once');
  await next.arrayBuffer();
});

test('a chunked upload that goes on past the cap is answered 413 while it is still being sent', async () => {
  // 2 MiB in chunks, then the upload stalls without its last chunk: a Worker that read the whole body
  // before checking its size would never answer.
  const { hostname, port } = new URL(workerUrl);
  const answer = await new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(received);
    }, 15_000);
    socket.on('connect', () => {
      socket.write(`POST /api/ratelimit/burst?id=chunked-${randomUUID()} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`
        + 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = ' '.repeat(8 * 1024);
      for (let i = 0; i < 256; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    });
    socket.on('data', (data) => {
      received += data.toString('latin1');
      if (received.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (received) resolve(received);
      else reject(error);
    });
  });
  assert.match(answer, /^HTTP\/1\.1 413 /, `no 413 while the upload was still open: ${JSON.stringify(answer.slice(0, 200))}`);
  // wrangler dev's proxy holds up the first request after a cancelled upload until that request gives
  // up (Cloudflare's edge has no such proxy): one request with a short timeout clears it for the rest.
  await fetch(`${workerUrl}/api`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.arrayBuffer(), () => {});
  const next = await fetch(`${workerUrl}/api`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(next.status, 200);
  await next.arrayBuffer();
});

test('every route with Redis work is limited by default, the operational ones too', async () => {
  const healthResponse = await fetch(`${workerUrl}/api/health`);
  assert.match(healthResponse.headers.get('ratelimit-policy') ?? '', /^"api";/);
  await healthResponse.arrayBuffer();
  const index = await fetch(`${workerUrl}/api`);
  assert.equal(index.headers.get('ratelimit-policy'), null, 'GET /api needs no Redis and is not charged');
  await index.arrayBuffer();
});

test('the page is sent with a CSP that forbids framing, and the headers file is not served', async () => {
  const page = await fetch(`${workerUrl}/`);
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  await page.arrayBuffer();
  const file = await fetch(`${workerUrl}/_headers`);
  const text = await file.text();
  assert.ok(!text.includes('Content-Security-Policy'), `/_headers served: ${file.status}`);
});

test('a credential pasted into a URL variable is named, never shown, and logged redacted', async () => {
  const password = `pw-${randomUUID()}`;
  const originPassword = `opw-${randomUUID()}`;
  let output = '';
  const broken = await startExtraWorker({
    gateway: `redis://default:${password}@127.0.0.1:6379`,
    vars: { ORIGIN_URL: `https://reader:${originPassword}@origin.example/items` },
    output: (text) => {
      output += text;
    },
  });
  try {
    for (const path of ['/api/health', '/api/lookup/1', '/api/dashboard']) {
      const response = await fetch(`${broken.url}${path}`);
      const text = await response.text();
      assert.equal(response.status, 500, path);
      assert.ok(text.includes('UPSTASH_REDIS_REST_URL') && text.includes('ORIGIN_URL'), text);
      assert.match(text, /connection string/);
      assert.ok(!text.includes(password) && !text.includes(originPassword), `${path} echoed a password: ${text}`);
    }
    const logged = await (async () => {
      for (let i = 0; i < 50 && !output.includes('"configuration"'); i++) await new Promise((r) => setTimeout(r, 100));
      return output;
    })();
    // wrangler itself lists the vars it was given when it starts; the Worker's own line is the one read.
    const line = logged.split('\n').find((l) => l.includes('"event":"configuration"'));
    assert.ok(line, `no configuration log line in:\n${logged.slice(-2000)}`);
    assert.ok(line.includes('redis://***@127.0.0.1:6379'), `the log names the URL redacted: ${line}`);
    assert.ok(!line.includes(password) && !line.includes(originPassword), `the log shows a password: ${line}`);
    // And one line per 5xx.
    const errors = logged.split('\n').filter((l) => l.includes('"event":"server_error"'));
    assert.ok(errors.some((l) => l.includes('"status":500') && l.includes('"method":"GET"')), errors.join('\n'));
    assert.ok(errors.every((l) => !l.includes(password) && !l.includes(originPassword)), 'a 5xx line shows a password');
  } finally {
    await broken.stop();
  }
});

// Hostile input against the Worker in real workerd: path traversal on the static assets, header injection
// through identifiers, oversized cookies, bodies, keys and identifiers, invalid UTF-8 in paths, queries
// and bodies. Each must get a clear 4xx problem (or be ignored safely): never a 5xx, never an HTML error
// page, never a file from outside www/, never an extra response header.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { Browser } from './browser.mjs';
import { roundTrips, workerUrl } from './env.mjs';

const { hostname, port } = new URL(workerUrl);
const root = new URL('../..', import.meta.url);
/** Lines only files outside www/ contain: finding one in a response means the traversal worked. */
const secrets = [
  readFileSync(new URL('wrangler.toml', root), 'utf8').match(/^compatibility_date = .*$/m)[0],
  readFileSync(new URL('package.json', root), 'utf8').match(/"name": "[^"]+"/)[0],
  readFileSync(new URL('Cargo.toml', root), 'utf8').split('\n').find((line) => line.startsWith('[')),
  'root:x:0:0',
];

/**
 * One request written byte for byte (fetch would normalise the path), answered on a fresh connection.
 * The answer is complete at its Content-Length (or the last chunk, or the end of the connection).
 */
function raw(target, { method = 'GET', headers = [], body } = {}) {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      const split = received.indexOf('\r\n\r\n');
      const lines = received.subarray(0, split < 0 ? received.length : split).toString('latin1').split('\r\n');
      const fields = lines.slice(1);
      const get = (name) => fields.find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? null;
      let content = split < 0 ? Buffer.alloc(0) : received.subarray(split + 4);
      const length = get('content-length');
      if (length !== null && content.length < Number(length)) return;
      if (length === null && /chunked/i.test(get('transfer-encoding') ?? '')) {
        if (!content.includes('0\r\n\r\n')) return;
        content = dechunk(content);
      } else if (length === null && split < 0) return;
      done = true;
      socket.destroy();
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const names = fields.map((line) => line.slice(0, line.indexOf(':')).toLowerCase());
      resolve({ status, names, get, body: content.toString('latin1') });
    };
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no answer to ${method} ${target}`)));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      finish();
    });
    socket.on('error', (error) => done || reject(error));
    socket.on('end', () => {
      finish();
      if (!done) {
        done = true;
        resolve({ status: 0, names: [], get: () => null, body: received.toString('latin1') });
      }
    });
    const bytes = Buffer.isBuffer(body) ? body : body === undefined ? null : Buffer.from(body);
    const lines = [`${method} ${target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close', ...headers];
    if (bytes) lines.push(`Content-Length: ${bytes.length}`);
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), bytes ?? Buffer.alloc(0)]));
  });
}

/** A chunked body's content. */
function dechunk(buffer) {
  const parts = [];
  let at = 0;
  for (;;) {
    const end = buffer.indexOf('\r\n', at);
    const size = parseInt(buffer.subarray(at, end).toString('latin1'), 16);
    if (!size) return Buffer.concat(parts);
    parts.push(buffer.subarray(end + 2, end + 2 + size));
    at = end + 2 + size + 2;
  }
}

/** A 4xx problem in JSON, never HTML, never a 5xx. */
async function assertProblem(response, status, what) {
  const body = typeof response.body === 'string' ? response.body : await response.text();
  const type = typeof response.get === 'function' ? response.get('content-type') : response.headers.get('content-type');
  if (status) assert.equal(response.status, status, `${what}: ${body.slice(0, 300)}`);
  assert.ok(response.status >= 400 && response.status < 500, `${what}: status ${response.status}: ${body.slice(0, 300)}`);
  assert.match(type ?? '', /^application\/problem\+json/, `${what}: content type ${type}`);
  const problem = JSON.parse(body);
  assert.equal(problem.status, response.status, what);
  return problem;
}

test('path traversal on the static assets never leaves www/ and never errors', async () => {
  const inside = await raw('/js/../index.html');
  assert.ok([200, 307, 308, 404].includes(inside.status), `/js/../index.html: ${inside.status}`);
  const targets = [
    '/../wrangler.toml',
    '/../../../../etc/passwd',
    '/%2e%2e/wrangler.toml',
    '/%2E%2E/%2E%2E/etc/passwd',
    '/..%2fwrangler.toml',
    '/..%2Fpackage.json',
    '/%2e%2e%2fCargo.toml',
    '/js/..%2f..%2fwrangler.toml',
    '/js/%2e%2e/%2e%2e/package.json',
    '/..%5cwrangler.toml',
    '/..\\wrangler.toml',
    '/%252e%252e/wrangler.toml',
    '/.%2e/.%2e/etc/passwd',
    '//etc/passwd',
    '/%00../wrangler.toml',
    '/index.html%00.js',
    '/api/../../wrangler.toml',
    '/api/%2e%2e/%2e%2e/package.json',
  ];
  for (const target of targets) {
    const answer = await raw(target);
    assert.ok(answer.status > 0 && answer.status < 500, `${target}: status ${answer.status}`);
    for (const secret of secrets) assert.ok(!answer.body.includes(secret), `${target} served a file from outside www/`);
    if (answer.status >= 400) await assertProblem(answer, undefined, target);
  }
});

test('CR/LF in identifiers, ids and names never become response headers', async () => {
  const injected = ['%0d%0aX-Injected:%20yes', '%0aX-Injected:%20yes', '%0d%0aSet-Cookie:%20evil=1', '%E5%98%8A%E5%98%8DX-Injected:%20yes'];
  for (const payload of injected) {
    for (const [method, target] of [
      ['POST', `/api/ratelimit/burst?id=rl${payload}`],
      ['GET', `/api/ratelimit/burst?id=rl${payload}`],
      ['POST', `/api/ratelimit/burst${payload}?id=x`],
      ['GET', `/api/lookup/1${payload}`],
      ['DELETE', `/api/lookup/tags/demo${payload}`],
      ['GET', `/api/no-such-route${payload}`],
    ]) {
      const answer = await raw(target, { method, headers: [`Origin: ${workerUrl}`] });
      const what = `${method} ${target}`;
      assert.ok(answer.status > 0 && answer.status < 500, `${what}: status ${answer.status}`);
      assert.ok(!answer.names.includes('x-injected'), `${what} answered an injected header`);
      assert.ok(!answer.names.includes('set-cookie'), `${what} answered a Set-Cookie`);
    }
  }
  // A session revoked by a made-up id: 404, and still only the Worker's own headers.
  const browser = new Browser();
  await browser.signIn(`injector-${Date.now()}`);
  const answer = await raw('/api/sessions/x%0d%0aSet-Cookie:%20evil=1', {
    method: 'DELETE',
    headers: [`Origin: ${workerUrl}`, `Cookie: ${browser.cookie}`],
  });
  await assertProblem(answer, 404, 'revoke with CR/LF in the id');
  assert.ok(!answer.names.includes('set-cookie'));
  // A user name with CR/LF is data: the one Set-Cookie is the session's.
  const signedIn = await new Browser().signIn('mallory\r\nSet-Cookie: evil=1\r\nX-Injected: yes');
  assert.ok([201, 400].includes(signedIn.status), `sign in: ${signedIn.status}`);
  assert.equal(signedIn.headers.get('x-injected'), null);
  assert.ok(signedIn.setCookies.every((line) => line.startsWith('redge_session=')), signedIn.setCookies.join(' | '));
});

test('oversized cookies and a huge session cookie are refused without a Redis call', async () => {
  const cases = [
    ['a 16 KiB session cookie', `redge_session=${'A'.repeat(16 * 1024)}`],
    ['a 60 KiB session cookie', `redge_session=${'A'.repeat(60 * 1024)}.${'B'.repeat(43)}`],
    ['a long id and a long secret', `redge_session=${'A'.repeat(4000)}.${'B'.repeat(4000)}`],
    ['two thousand cookies', Array.from({ length: 2000 }, (_, i) => `c${i}=v${i}`).join('; ')],
    ['the session cookie a thousand times', Array.from({ length: 1000 }, () => `redge_session=${'A'.repeat(22)}.${'B'.repeat(43)}`).join('; ')],
    ['a cookie full of separators', `redge_session=${';=.,'.repeat(2000)}`],
  ];
  for (const [what, cookie] of cases) {
    const response = await fetch(`${workerUrl}/api/session`, { headers: { cookie } });
    if (response.status === 431 || response.status === 400) {
      // Refused by the runtime before the Worker: a clear 4xx either way.
      await response.arrayBuffer();
      continue;
    }
    const body = await assertProblem(response, 401, what);
    assert.match(body.detail, /sign in/);
    assert.ok(roundTrips(response) <= 1, `${what}: ${roundTrips(response)} round trips`);
  }
});

test('oversized bodies, keys, identifiers and names are 4xx problems', async () => {
  const browser = new Browser();
  await browser.signIn(`big-${Date.now()}`);
  const origin = new URL(workerUrl).origin;
  const megabyte = JSON.stringify({ data: { blob: 'x'.repeat(1 << 20) } });
  for (const [method, path] of [['PATCH', '/api/session'], ['POST', '/api/session'], ['POST', '/api/ratelimit/burst?id=big']]) {
    const response = await fetch(`${workerUrl}${path}`, {
      method,
      headers: { origin, cookie: browser.cookie, 'content-type': 'application/json' },
      body: megabyte,
    });
    await assertProblem(response, 413, `${method} ${path} with 1 MiB`);
  }
  await assertProblem(await fetch(`${workerUrl}/api/lookup/${'9'.repeat(10_000)}`), 400, 'a 10 000-digit lookup id');
  await assertProblem(await fetch(`${workerUrl}/api/ratelimit/burst?id=${'x'.repeat(5000)}`, { method: 'POST' }), 400, 'a 5000-byte identifier');
  await assertProblem(await fetch(`${workerUrl}/api/ratelimit/${'p'.repeat(5000)}?id=x`, { method: 'POST' }), 404, 'a 5000-byte policy name');
  const longTag = await fetch(`${workerUrl}/api/lookup/tags/${'t'.repeat(20_000)}`, { method: 'DELETE' });
  assert.ok(longTag.status === 204 || (longTag.status >= 400 && longTag.status < 500), `a 20 000-byte tag: ${longTag.status}`);
  await longTag.arrayBuffer();
  const longUser = await browser.call('POST', '/api/session', { body: { user: 'u'.repeat(60_000) } });
  assert.equal(longUser.status, 400);
});

test('invalid UTF-8 in paths, queries and bodies is a 4xx problem or ignored safely', async () => {
  const browser = new Browser();
  await browser.signIn(`utf8-${Date.now()}`);
  const origin = new URL(workerUrl).origin;
  for (const target of ['/api/lookup/%ff%fe', '/api/lookup/%c0%af', '/api/ratelimit/%ff?id=x', '/api/%ed%a0%80', '/api/sessions/%ff%ff']) {
    const answer = await raw(target, { method: target.startsWith('/api/sessions') ? 'DELETE' : 'GET', headers: [`Origin: ${origin}`, `Cookie: ${browser.cookie}`] });
    await assertProblem(answer, undefined, target);
  }
  // Raw bytes over 0x7f in the request line: refused by the runtime or answered by the Worker, never 5xx.
  const rawBytes = await raw(Buffer.from([0x2f, 0x61, 0x70, 0x69, 0x2f, 0xff, 0xfe]).toString('latin1'));
  assert.ok(rawBytes.status >= 400 && rawBytes.status < 500, `raw bytes in the path: ${rawBytes.status}`);

  // An identifier that is not UTF-8 is still one identifier, limited like any other.
  const id = `%ff%fe-${Date.now()}`;
  const statuses = [];
  for (let i = 0; i < 6; i++) {
    const answer = await raw(`/api/ratelimit/burst?id=${id}`, { method: 'POST' });
    assert.match(answer.get('content-type') ?? '', /json/);
    statuses.push(answer.status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);

  const badJson = [
    Buffer.from([0x7b, 0x22, 0x75, 0x73, 0x65, 0x72, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), // {"user":"\xff\xfe"}
    Buffer.from('{"user":"\\ud800"}'),
    Buffer.from([0xef, 0xbb, 0xbf, 0xff]),
  ];
  for (const body of badJson) {
    const signIn = await raw('/api/session', { method: 'POST', headers: [`Origin: ${origin}`, 'Content-Type: application/json'], body });
    await assertProblem(signIn, 400, `sign in with ${body.toString('hex')}`);
    assert.ok(!signIn.names.includes('set-cookie'));
    const patch = await raw('/api/session', {
      method: 'PATCH',
      headers: [`Origin: ${origin}`, `Cookie: ${browser.cookie}`, 'Content-Type: application/json'],
      body: Buffer.concat([Buffer.from('{"data":{"k":'), body, Buffer.from('}}')]),
    });
    await assertProblem(patch, 400, `patch with ${body.toString('hex')}`);
  }
  const me = await browser.call('GET', '/api/session');
  assert.equal(me.status, 200);
  assert.deepEqual(me.body.session.data, {}, 'none of the bad bodies was written');
});

// The package's `browser` / `deno` / `default` entry (web.js): it fetches its .wasm next to itself and
// instantiates it with top-level await. Node's fetch cannot read file: URLs, so this file (its own
// process under `node --test`) serves them the way a web server would, then uses the entry for real.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { token, unique, url } from './env.mjs';

const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const target = new URL(input instanceof Request ? input.url : String(input));
  if (target.protocol !== 'file:') return realFetch(input, init);
  return new Response(readFileSync(target), { headers: { 'content-type': 'application/wasm' } });
};

const web = await import(new URL('web.js', import.meta.resolve('redge/package.json')).href);

test('the web entry initialises itself and works against the gateway', async () => {
  const client = new web.Client({ url, token });
  assert.equal(await client.command(['PING']), 'PONG');
  const limiter = new web.RateLimiter(client, { limit: 1, periodMs: 60_000 });
  const id = unique('web');
  assert.equal((await limiter.limit(id)).allowed, true);
  assert.equal((await limiter.limit(id)).allowed, false);
});

test('its errors are its own classes, with codes', async () => {
  assert.throws(() => new web.Client({ url }), (e) => e instanceof web.InvalidArgumentError && e instanceof web.RedgeError && e.code === 'REDGE_INVALID_ARGUMENT');
  await assert.rejects(new web.Client({ url, token: 'wrong' }).command(['PING']), (e) => e instanceof web.HttpError && e.status === 401);
});

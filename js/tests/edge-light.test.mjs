// The package's `edge-light` entry (Vercel Edge): it imports its .wasm with the `?module` suffix, which
// Vercel's bundler turns into a compiled WebAssembly.Module, and instantiates it synchronously. This file
// (its own process under `node --test`) gives Node a loader hook that does what that bundler does, then
// uses the entry for real; and a bundler asked for the `edge-light` condition must pick this entry.
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { build } from 'esbuild';
import { token, unique, url } from './env.mjs';

const hooks = `
export async function resolve(specifier, context, next) {
  if (!specifier.endsWith('.wasm?module')) return next(specifier, context);
  return { url: new URL(specifier, context.parentURL).href, shortCircuit: true };
}
export async function load(url, context, next) {
  if (!url.endsWith('.wasm?module')) return next(url, context);
  const file = JSON.stringify(url.slice(0, -'?module'.length));
  const source = 'import { readFileSync } from "node:fs";' +
    'export default new WebAssembly.Module(readFileSync(new URL(' + file + ')));';
  return { format: 'module', source, shortCircuit: true };
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

const edge = await import(new URL('edge-light.js', import.meta.resolve('redge/package.json')).href);

test('a bundler resolving for Vercel Edge (the edge-light condition) takes the edge-light entry', async () => {
  const { metafile } = await build({
    stdin: { contents: "export { Client } from 'redge';", resolveDir: dirname(fileURLToPath(import.meta.url)), sourcefile: 'edge.js' },
    bundle: true,
    write: false,
    metafile: true,
    platform: 'neutral',
    conditions: ['edge-light'],
    external: ['*.wasm?module'],
    logLevel: 'silent',
  });
  const inputs = Object.keys(metafile.inputs).map((p) => p.split('/').pop());
  assert.ok(inputs.includes('edge-light.js'), `bundled ${inputs.join(', ')}`);
  assert.ok(!inputs.includes('workerd.js') && !inputs.includes('web.js') && !inputs.includes('node.mjs'));
});

test('the edge-light entry initialises itself from the compiled module and works against the gateway', async () => {
  const client = edge.Client.fromEnv({ UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token, OTHER_BINDING: { get: () => null } });
  assert.equal(await client.command(['PING']), 'PONG');
  const limiter = new edge.RateLimiter(client, { limit: 1, periodMs: 60_000 });
  const id = unique('edge-light');
  const [first, second] = await client.batch().limit(limiter, id).limit(limiter, id).send();
  assert.deepEqual([first.allowed, second.allowed], [true, false]);
  assert.throws(() => new edge.Client({ url }), (e) => e instanceof edge.InvalidArgumentError && e.code === 'REDGE_INVALID_ARGUMENT');
});

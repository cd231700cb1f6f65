// The built package as npm would publish it: what `import 'redge'` resolves to, the files `npm pack`
// takes, the TypeScript declarations, and the error classes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as redge from 'redge';

const pkgDir = dirname(fileURLToPath(import.meta.resolve('redge/package.json')));
const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));

test('one package: Node resolves the node entry, Workers, Vercel Edge, browsers and Deno the web build', () => {
  assert.ok(import.meta.resolve('redge').endsWith('/node.mjs'));
  const conditions = manifest.exports['.'];
  assert.deepEqual(Object.keys(conditions), ['types', 'workerd', 'edge-light', 'node', 'browser', 'deno', 'default']);
  assert.equal(conditions['edge-light'], './edge-light.js');
  assert.equal(manifest.name, 'redge');
  assert.match(manifest.version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual(
    Object.keys(redge).sort(),
    ['Batch', 'Cache', 'CacheRead', 'Client', 'ConfigError', 'HttpError', 'InvalidArgumentError', 'OriginError', 'RateLimiter', 'RedgeError', 'RedisError', 'SessionStore', 'UnavailableError'],
    'nothing internal is exported',
  );
});

test('npm pack takes exactly the files the package needs', () => {
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: pkgDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  const files = packed.files.map((f) => f.path).sort();
  assert.deepEqual(files, [...manifest.files, 'package.json'].sort());
  for (const entry of ['workerd.js', 'edge-light.js', 'node.mjs', 'web.js', 'index.d.ts']) assert.ok(files.includes(entry), entry);
});

test('the declarations read like TypeScript: options objects, optional arguments, documentation, no BigInt', () => {
  const whole = readFileSync(join(pkgDir, 'web', 'redge.d.ts'), 'utf8');
  // The public part; the web build's init types (the raw wasm exports) follow it.
  const dts = whole.slice(0, whole.indexOf('export type InitInput'));
  assert.ok(dts.length > 1000);
  assert.match(dts, /limit\(identifier: string, options\?: LimitOptions\): Promise<Decision>;/);
  assert.match(dts, /getOrFetch<T = unknown>\(key: CacheKey, policy: CachePolicy, origin: \(\) => Promise<T \| null \| undefined> \| T \| null \| undefined, ctx\?: .*\): Promise<Lookup<T>>;/);
  assert.match(dts, /static fromEnv\(env: RedisEnv, options\?: ClientTuning\): Client;/);
  assert.match(dts, /static fromEnv\(env: \{ readonly \[name: string\]: unknown \}, options\?: ClientTuning\): Client;/);
  assert.match(dts, /export class Batch<T extends BatchResult\[\] = BatchResult\[\]> \{/);
  assert.match(dts, /limit\(limiter: RateLimiter, identifier: string, options\?: LimitOptions\): Batch<\[\.\.\.T, Decision\]>;/);
  assert.match(dts, /send\(\): Promise<T extends \[\] \? BatchResult\[\] : T>;/);
  assert.match(dts, /\* Charges `identifier` \(an IP, a user id, an API key\)/, 'doc comments are carried over');
  const decision = dts.slice(dts.indexOf('export interface Decision'), dts.indexOf('}', dts.indexOf('export interface Decision')));
  assert.doesNotMatch(decision, /bigint/);
  assert.doesNotMatch(dts, /__redgeSetErrorFactory/);
  assert.doesNotMatch(dts, /: any\b/, 'every value has a real type');
  const index = readFileSync(join(pkgDir, 'index.d.ts'), 'utf8');
  assert.match(index, /export \* from '\.\/errors\.js'/);
});

/** What `tsc --strict --noEmit -p <project>` reports: nothing when the project type-checks. */
function typeCheck(project) {
  const tsc = fileURLToPath(new URL('../../node_modules/.bin/tsc', import.meta.url));
  try {
    return execFileSync(tsc, ['--strict', '--noEmit', '-p', fileURLToPath(project)], { encoding: 'utf8' });
  } catch (error) {
    return `${error.stdout}${error.stderr}` || error.message;
  }
}

test('the declarations compile under tsc --strict, and catch mistyped calls (js/tests/types)', () => {
  assert.equal(typeCheck(new URL('./types', import.meta.url)), '', 'tsc reported errors');
});

test('the example TypeScript Worker (examples/ts-worker) type-checks under tsc --strict', () => {
  assert.equal(typeCheck(new URL('../../examples/ts-worker', import.meta.url)), '', 'tsc reported errors');
});

test('errors are Error subclasses with a code', () => {
  const e = new redge.InvalidArgumentError('bad', { code: 'REDGE_INVALID_ARGUMENT' });
  assert.ok(e instanceof redge.RedgeError && e instanceof Error);
  assert.equal(e.name, 'InvalidArgumentError');
  assert.equal(e.code, 'REDGE_INVALID_ARGUMENT');
  assert.equal(e.retryable, false);
  assert.match(e.stack, /InvalidArgumentError: bad/);
});

// Builds the npm package `redge` into js/pkg: one release wasm-pack build per target (web, for Workers,
// browsers, Deno and bundlers; nodejs, for Node), binaryen's wasm-opt from npm on each (wasm-pack would
// download one), then the hand-written entry points, declarations and README from js/npm.
//
//   node scripts/build-js.mjs     (prints the package's wasm sizes, raw and gzipped)
//
// It also links the built package as `redge` for the Node tests (js/node_modules) and the example Workers
// (examples/js-worker/node_modules, examples/ts-worker/node_modules), exactly as `npm install <dir>` would.
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { run } from './lib/proc.mjs';
import { buildEnv, root } from './lib/toolchain.mjs';

const crate = join(root, 'js');
export const packageDir = join(crate, 'pkg');
const targets = [
  { target: 'web', dir: 'web' },
  { target: 'nodejs', dir: 'node' },
];

// wasm-bindgen declares neither generics nor overloads, so they are added here: the methods whose
// result type is the origin's or the cached value's, the `Batch` class whose type parameter lists its
// entries' results (its methods already name `T`), and `Client.fromEnv`'s second form, for dictionaries
// such as `process.env`. A declaration that is not found fails the build: the Rust side changed.
const ctx = 'ctx?: { waitUntil(promise: Promise<unknown>): void }';
const origin = 'origin: () => Promise<T | null | undefined> | T | null | undefined';
const fromEnv = 'static fromEnv(env: RedisEnv, options?: ClientTuning): Client;';
const fromDictionary = [
  '/**',
  '     * A client from a dictionary of variables such as `process.env`, read as the form above reads a',
  "     * Worker's `env`: a missing variable is a `ConfigError` when called, not a type error.",
  '     */',
  '    static fromEnv(env: { readonly [name: string]: unknown }, options?: ClientTuning): Client;',
].join('\n');
const generic = [
  [`getOrFetch(key: CacheKey, policy: CachePolicy, origin: () => unknown, ${ctx}): Promise<Lookup>;`, `getOrFetch<T = unknown>(key: CacheKey, policy: CachePolicy, ${origin}, ${ctx}): Promise<Lookup<T>>;`],
  [`resolve(origin: () => unknown, ${ctx}): Promise<Lookup>;`, `resolve<T = unknown>(${origin}, ${ctx}): Promise<Lookup<T>>;`],
  ['export class Batch {', 'export class Batch<T extends BatchResult[] = BatchResult[]> {'],
  [fromEnv, `${fromEnv}\n    ${fromDictionary}`],
  ['get(key: CacheKey, policy?: CachePolicy): Promise<CacheEntry>;', 'get<T = unknown>(key: CacheKey, policy?: CachePolicy): Promise<CacheEntry<T>>;'],
  ['update(key: CacheKey, policy: CachePolicy | undefined, change: (current: any) => unknown): Promise<CacheUpdate>;', 'update<T = unknown>(key: CacheKey, policy: CachePolicy | undefined, change: (current: T) => T | undefined): Promise<CacheUpdate<T>>;'],
];

function genericDeclarations(file) {
  let text = readFileSync(file, 'utf8');
  for (const [from, to] of generic) {
    if (!text.includes(from)) throw new Error(`${file}: no declaration ${from}`);
    text = text.replace(from, to);
  }
  writeFileSync(file, text);
}

/** The package version must be the crate's, so the two cannot drift apart. */
function checkVersion() {
  const cargo = readFileSync(join(crate, 'Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)?.[1];
  const npm = JSON.parse(readFileSync(join(crate, 'npm', 'package.json'), 'utf8')).version;
  if (cargo !== npm) throw new Error(`js/Cargo.toml has version ${cargo} but js/npm/package.json has ${npm}: make them equal`);
}

function link(target, at) {
  mkdirSync(dirname(at), { recursive: true });
  try {
    if (lstatSync(at)) rmSync(at, { recursive: true, force: true });
  } catch {
    // nothing there yet
  }
  symlinkSync(relative(dirname(at), target), at, 'dir');
}

/** Raw and gzipped bytes of each wasm file in the package. */
export function sizes(dir = packageDir) {
  return Object.fromEntries(
    targets.map(({ dir: sub }) => {
      const bytes = readFileSync(join(dir, sub, 'redge_bg.wasm'));
      return [sub, { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length }];
    }),
  );
}

export async function buildPackage({ log = console.log } = {}) {
  checkVersion();
  rmSync(packageDir, { recursive: true, force: true });
  const env = buildEnv();
  for (const { target, dir } of targets) {
    log(`wasm-pack build --release --target ${target}`);
    const args = ['build', crate, '--release', '--target', target, '--out-dir', join(packageDir, dir), '--out-name', 'redge', '--no-pack'];
    const built = await run('wasm-pack', args, { cwd: root, env, echo: false });
    if (built.code !== 0) throw new Error(`wasm-pack build --target ${target} failed:\n${built.output.slice(-4000)}`);
    const wasm = join(packageDir, dir, 'redge_bg.wasm');
    const before = statSync(wasm).size;
    const opt = await run(join(root, 'node_modules', '.bin', 'wasm-opt'), ['-Os', wasm, '-o', wasm], { cwd: root, env, echo: false });
    if (opt.code !== 0) throw new Error(`wasm-opt failed:\n${opt.output.slice(-2000)}`);
    log(`${dir}: ${before} bytes from rustc and wasm-bindgen, ${statSync(wasm).size} after wasm-opt -Os`);
    for (const extra of ['.gitignore', 'package.json', 'README.md']) rmSync(join(packageDir, dir, extra), { force: true });
    genericDeclarations(join(packageDir, dir, 'redge.d.ts'));
  }
  for (const file of readdirSync(join(crate, 'npm'))) cpSync(join(crate, 'npm', file), join(packageDir, file));
  cpSync(join(crate, 'README.md'), join(packageDir, 'README.md'));
  // The ESM entry points import the nodejs build through `require`: mark that directory CommonJS.
  writeFileSync(join(packageDir, 'node', 'package.json'), '{ "type": "commonjs" }\n');
  link(packageDir, join(crate, 'node_modules', 'redge'));
  for (const example of ['js-worker', 'ts-worker']) {
    const dir = join(root, 'examples', example);
    if (existsSync(dir)) link(packageDir, join(dir, 'node_modules', 'redge'));
  }
  return { dir: packageDir, sizes: sizes() };
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const { sizes: s } = await buildPackage({ log: (m) => console.log(`[build-js] ${m}`) });
  for (const [dir, { raw, gzip }] of Object.entries(s)) console.log(`[build-js] ${dir}/redge_bg.wasm: ${raw} bytes, ${gzip} gzipped`);
}

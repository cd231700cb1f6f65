// The Worker's build command (wrangler.toml [build], so `npx wrangler deploy` and `wrangler dev` run it):
// installs what the build needs and is missing (the wasm target, the pinned wasm-bindgen and
// worker-build, the npm packages), then runs worker-build in release mode on a Worker crate (output in
// its build/ folder), told where the pinned wasm-bindgen, wasm-opt and esbuild are so that it downloads
// nothing. Whatever is missing and cannot be installed from here is named with the command that
// installs it. The module's `name` section (function names for stack traces) is then removed: it is
// about a sixth of the upload and nothing reads it at run time.
//
//   node scripts/build-worker.mjs [crate]   crate: a folder relative to the repository root, `demo` by
//                                           default (examples/rust-worker builds the Rust example)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './lib/proc.mjs';
import { buildEnv, ensureToolchain, root } from './lib/toolchain.mjs';
import { stripNames } from './lib/wasm-names.mjs';

const log = (message) => console.error(`[build] ${message}`);
try {
  await ensureToolchain({ wasm: false, worker: true, redis: false, log });
} catch (error) {
  log(`cannot build the Worker: ${error.message}`);
  process.exit(1);
}
const crate = process.argv[2] ?? 'demo';
const { code } = await run('worker-build', ['--release'], { cwd: join(root, crate), env: buildEnv() });
if (code !== 0) {
  log('worker-build failed: see its output above');
  process.exit(code);
}
const wasm = join(root, crate, 'build', 'index_bg.wasm');
const { bytes, removed } = stripNames(readFileSync(wasm));
writeFileSync(wasm, bytes);
log(`${wasm.slice(root.length + 1)}: ${bytes.length} bytes (${removed} of function names removed)`);

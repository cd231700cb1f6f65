// The Worker's build command (wrangler.toml [build]): worker-build in release mode, told where the
// pinned wasm-bindgen, wasm-opt and esbuild are so that it downloads nothing.
import { run } from './lib/proc.mjs';
import { buildEnv, root } from './lib/toolchain.mjs';

const { code } = await run('worker-build', ['--release'], { cwd: root, env: buildEnv() });
process.exit(code);

// `npx wrangler deploy --dry-run` from a clean clone of the repository, as a user would run it first:
// the build command must install or find what it needs, and the bundle must hold the Worker and nothing
// meant for local development. The clone shares this checkout's npm packages (the tools are present, as
// the test's premise) and builds into a target directory of its own under this checkout's: the clone
// holds the committed files, which may differ from the working tree's, and cargo names the artifacts of
// both alike, so a shared one would hand the working tree's next build the clone's library.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { run } from '../../scripts/lib/proc.mjs';
import { buildEnv } from '../../scripts/lib/toolchain.mjs';
import { stripNames } from '../../scripts/lib/wasm-names.mjs';

const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

test('wrangler deploy --dry-run from a clean clone builds a bundle with the Worker and no development setting', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'redge-deploy-'));
  const clone = join(dir, 'redge');
  try {
    execFileSync('git', ['clone', '--quiet', '--no-hardlinks', root, clone]);
    symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir');
    const outdir = join(dir, 'dist');
    const env = buildEnv({ CARGO_TARGET_DIR: join(root, 'target', 'deploy-test'), CI: 'true' });
    const wrangler = join(clone, 'node_modules', '.bin', 'wrangler');
    const { code, output } = await run(wrangler, ['deploy', '--dry-run', '--outdir', outdir], { cwd: clone, env, echo: false });
    assert.equal(code, 0, output.slice(-3000));
    assert.match(output, /--dry-run: exiting now/);
    assert.ok(!/SESSION_COOKIE_INSECURE/.test(output), `the deployed configuration carries a development var:\n${output.slice(-3000)}`);

    const files = readdirSync(outdir);
    const wasm = files.find((f) => f.endsWith('.wasm'));
    assert.ok(files.includes('index.js'), files.join(', '));
    assert.ok(wasm, `no wasm module in ${files.join(', ')}`);
    const bytes = readFileSync(join(outdir, wasm));
    assert.deepEqual([...bytes.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], 'a wasm module');
    // (That the module still runs without its names is what every other e2e test shows: they run it.)
    assert.equal(stripNames(bytes).removed, 0, 'the uploaded module carries no name section');
    const gzipped = gzipSync(bytes, { level: 9 }).length;
    // The budget: the module is about 274 KiB gzipped (gzip -9); growth past 290 KiB fails here.
    assert.ok(gzipped < 290 * 1024, `the wasm module is ${gzipped} bytes gzipped: over the 290 KiB budget`);
    assert.ok(statSync(join(outdir, 'index.js')).size > 0);
    assert.ok(existsSync(join(clone, 'demo', 'build', 'index.js')), 'the build command ran in the clone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

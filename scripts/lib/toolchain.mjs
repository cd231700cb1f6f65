// Installs what the build needs and is missing: the wasm target, the pinned cargo tools, the npm packages.
// System prerequisites (Node, Rust, redis-server) are only checked, with the exact install command.
// Every pinned version is read from package.json ("toolchain" and "devDependencies").
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { probe, run } from './proc.mjs';

export const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
/** Where cargo puts what it builds: `CARGO_TARGET_DIR` when set (relative to the repository), else target/. */
export const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, 'target');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
export const pins = pkg.toolchain;

const cargoBin = join(process.env.CARGO_HOME || join(homedir(), '.cargo'), 'bin');

/** The environment every build and tool runs with: cargo's bin on PATH, worker-build told where its tools are. */
export function buildEnv(extra = {}) {
  const bin = join(root, 'node_modules', '.bin');
  return {
    ...process.env,
    PATH: [cargoBin, bin, process.env.PATH].join(delimiter),
    WASM_BINDGEN_BIN: join(cargoBin, 'wasm-bindgen'),
    WASM_OPT_BIN: join(bin, 'wasm-opt'),
    ESBUILD_BIN: join(bin, 'esbuild'),
    WRANGLER_SEND_METRICS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    ...extra,
  };
}

class MissingPrerequisite extends Error {}

function requireCommand(command, args, what, install) {
  const version = probe(command, args, buildEnv());
  if (!version) throw new MissingPrerequisite(`${what} is missing. Install it: ${install}`);
  return version;
}

/** The wasm-bindgen version that Cargo.lock resolved, which the CLI must match exactly. */
function lockedWasmBindgen() {
  const lock = readFileSync(join(root, 'Cargo.lock'), 'utf8');
  const match = lock.match(/name = "wasm-bindgen"\nversion = "([^"]+)"/);
  return match ? match[1] : null;
}

async function cargoInstall(crate, version, log) {
  log(`installing ${crate} ${version} with cargo (a cold build takes several minutes)`);
  const args = ['install', crate, '--version', version];
  let result = await run('cargo', [...args, '--locked'], { env: buildEnv() });
  if (result.code !== 0 && /failed to select a version/.test(result.output)) {
    // The crate's lock file can name a dependency version the registry no longer serves.
    log(`${crate}: its lock file does not resolve against this registry; installing with fresh resolution`);
    result = await run('cargo', args, { env: buildEnv() });
  }
  if (result.code !== 0) throw new Error(`cargo install ${crate} ${version} failed`);
}

/**
 * Makes the machine ready to build and run the stack; the flags pick what is needed:
 * wasm (target and wasm-pack), worker (worker-build), redis (redis-server on PATH).
 */
export async function ensureToolchain({ wasm = true, worker = true, redis = true, log = console.log } = {}) {
  const [major] = process.versions.node.split('.').map(Number);
  if (major < 20) throw new MissingPrerequisite(`Node 20 or newer is required (found ${process.versions.node}): https://nodejs.org`);
  requireCommand('cargo', ['--version'], 'Rust (cargo)', 'https://rustup.rs (then open a new shell)');
  if (redis) requireCommand('redis-server', ['--version'], 'redis-server', 'apt-get install redis-server (Debian/Ubuntu) or brew install redis (macOS)');

  if (wasm || worker) {
    const targets = await run('rustup', ['target', 'list', '--installed'], { env: buildEnv(), echo: false });
    if (targets.code !== 0) {
      throw new MissingPrerequisite('rustup is missing, so the wasm target cannot be added. Install Rust with https://rustup.rs');
    }
    if (!targets.output.includes('wasm32-unknown-unknown')) {
      log('adding the wasm32-unknown-unknown target');
      if ((await run('rustup', ['target', 'add', 'wasm32-unknown-unknown'], { env: buildEnv() })).code !== 0) {
        throw new Error('rustup target add wasm32-unknown-unknown failed');
      }
    }
    const locked = lockedWasmBindgen();
    if (locked && locked !== pins['wasm-bindgen-cli']) {
      throw new Error(`Cargo.lock has wasm-bindgen ${locked} but package.json pins wasm-bindgen-cli ${pins['wasm-bindgen-cli']}: they must match`);
    }
    const tools = [
      ['wasm-bindgen-cli', 'wasm-bindgen'],
      ...(wasm ? [['wasm-pack', 'wasm-pack']] : []),
      ...(worker ? [['worker-build', 'worker-build']] : []),
    ];
    for (const [crate, binary] of tools) {
      const version = probe(join(cargoBin, binary), ['--version']);
      if (!version || !version.includes(pins[crate])) await cargoInstall(crate, pins[crate], log);
    }
  }

  const stamp = join(root, 'node_modules', '.package-lock.json');
  // Reinstall when any pinned package is missing (a dependency added since the last install, too).
  const missingPackage = Object.keys(pkg.devDependencies ?? {}).some((name) => !existsSync(join(root, 'node_modules', name)));
  if (!existsSync(stamp) || missingPackage) {
    log('installing npm packages');
    const hasLock = existsSync(join(root, 'package-lock.json'));
    const result = await run('npm', [hasLock ? 'ci' : 'install', '--no-audit', '--no-fund'], { cwd: root, env: buildEnv() });
    if (result.code !== 0) throw new Error('npm install failed');
  }
}

export { MissingPrerequisite };

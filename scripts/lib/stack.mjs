// The local stack: an ephemeral redis-server, redge-gateway in front of it, and the Worker in `wrangler dev`.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, run } from './proc.mjs';
import { buildEnv, root, targetDir } from './toolchain.mjs';

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until `check()` resolves truthy, or fails with what the process printed. */
async function waitFor(check, { timeoutMs, what, proc }) {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  proc?.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (await check()) return;
    if (exited) throw new Error(`${what} exited before it was ready:\n${proc.tail()}`);
    await sleep(100);
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s${proc ? `:\n${proc.tail()}` : ''}`);
}

/**
 * redis-server on a free port, in a temporary directory. By default it persists nothing; `persist: true`
 * turns on the append-only file with an fsync per write, so that a stop and start keeps every write
 * Redis acknowledged (as a managed Redis such as Upstash does).
 */
export async function startRedis({ persist = false } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'redge-redis-'));
  const durability = persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc: null,
    paused: false,
    async start() {
      this.proc = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...durability, '--dir', dir], { name: 'redis-server' });
      await waitFor(() => portOpen(port), { timeoutMs: 10_000, what: 'redis-server', proc: this.proc });
    },
    async stop() {
      if (this.paused) this.resume();
      await this.proc?.stop();
      this.proc = null;
    },
    /** SIGSTOP: the process keeps its connections but answers nothing, like a Redis that hangs. */
    pause() {
      if (!this.proc) throw new Error('redis-server is not running');
      process.kill(this.proc.pid, 'SIGSTOP');
      this.paused = true;
    },
    /** SIGCONT: it answers again, starting with everything that queued up meanwhile. */
    resume() {
      if (!this.proc) throw new Error('redis-server is not running');
      process.kill(this.proc.pid, 'SIGCONT');
      this.paused = false;
    },
    /** Writes a snapshot (dump.rdb in its directory), which the next start loads: a restart that keeps data. */
    async save() {
      const saved = await run('redis-cli', ['-p', String(port), 'SAVE'], { echo: false });
      if (saved.code !== 0 || !saved.output.includes('OK')) throw new Error(`redis-cli SAVE failed:\n${saved.output}`);
    },
    async dispose() {
      await this.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await redis.start();
  return redis;
}

/**
 * Builds redge-gateway and starts it in front of `redisUrl`. `profile` is `dev` (a debug build, quick to
 * compile: the tests' stack) or `release`, which means the optimized build users run: cargo's `gateway`
 * profile (`cargo build --profile gateway -p redge-gateway`), never cargo's own `--release`, which is
 * tuned for the Worker's wasm size. `stop()` and `start()` take it down and bring it back on the same
 * address with the same token. `output`, when given, receives everything it prints.
 */
export async function startGateway({ redisUrl, profile = 'dev', log = () => {}, output, env = {} }) {
  const optimized = profile === 'release' || profile === 'gateway';
  const args = ['build', '-p', 'redge-gateway', ...(optimized ? ['--profile', 'gateway'] : [])];
  log(`building redge-gateway (${optimized ? 'cargo profile gateway' : 'dev'})`);
  const built = await run('cargo', args, { cwd: root, env: buildEnv(), echo: false });
  if (built.code !== 0) throw new Error(`building redge-gateway failed:\n${built.output.slice(-4000)}`);
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const binary = join(targetDir, optimized ? 'gateway' : 'debug', 'redge-gateway');
  const gateway = {
    url: `http://127.0.0.1:${port}`,
    token,
    proc: null,
    async start() {
      this.proc = start(binary, [], {
        name: 'redge-gateway',
        output: output ?? 'ignore',
        env: { ...process.env, REDGE_GATEWAY_LISTEN: `127.0.0.1:${port}`, REDGE_REDIS_URL: redisUrl, REDGE_GATEWAY_TOKENS: token, ...env },
      });
      await waitFor(() => portOpen(port), { timeoutMs: 10_000, what: 'redge-gateway', proc: this.proc });
    },
    async stop() {
      await this.proc?.stop();
      this.proc = null;
    },
  };
  await gateway.start();
  return gateway;
}

/**
 * Starts the Worker in `wrangler dev` (which builds it first with scripts/build-worker.mjs), configured to
 * reach the gateway, plus any extra `vars`. Resolves once `readyPath` answers. `cwd` picks another
 * Worker (the example JavaScript Worker in examples/js-worker answers /health).
 */
export async function startWorker({ gatewayUrl, token, vars = {}, log = () => {}, echo = false, output, cwd = root, readyPath = '/api/health' }) {
  const port = await freePort();
  // Its own inspector port, so that two `wrangler dev` on one machine do not collide on the default.
  const inspector = await freePort();
  const wrangler = join(root, 'node_modules', '.bin', 'wrangler');
  log(`starting wrangler dev in ${cwd === root ? 'the repository root (it builds the Worker first: a cold build takes a few minutes)' : cwd.slice(root.length + 1)}`);
  // Workers run over plain http://127.0.0.1 here, where browsers drop `Secure` cookies: the development
  // cookie is asked for on the command line, never in a wrangler.toml, so no deployment has it.
  vars = { SESSION_COOKIE_INSECURE: 'true', ...vars };
  const proc = start(
    wrangler,
    ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector), '--show-interactive-dev-session=false', '--var', `UPSTASH_REDIS_REST_URL:${gatewayUrl}`, '--var', `UPSTASH_REDIS_REST_TOKEN:${token}`, ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`])],
    { name: 'wrangler', cwd, env: buildEnv({ CI: 'true' }), output: output ?? (echo ? (text) => process.stdout.write(text) : 'ignore') },
  );
  const url = `http://127.0.0.1:${port}`;
  const answers = async () => {
    try {
      const response = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(5000) });
      await response.arrayBuffer();
      return true;
    } catch {
      return false;
    }
  };
  await waitFor(answers, { timeoutMs: 20 * 60_000, what: 'wrangler dev', proc });
  return { url, proc, stop: () => proc.stop() };
}

/** The whole stack. `worker: false` stops after the gateway. */
export async function startStack({ profile = 'dev', worker = true, log = () => {}, echoWorker = false } = {}) {
  const parts = [];
  const stack = {
    async stop() {
      for (const part of parts.reverse()) await (part.dispose ? part.dispose() : part.stop());
    },
  };
  try {
    stack.redis = await startRedis();
    parts.push(stack.redis);
    log(`redis-server listening on ${stack.redis.url}`);
    stack.gateway = await startGateway({ redisUrl: stack.redis.url, profile, log });
    parts.push(stack.gateway);
    log(`redge-gateway listening on ${stack.gateway.url}`);
    if (worker) {
      stack.worker = await startWorker({ gatewayUrl: stack.gateway.url, token: stack.gateway.token, log, echo: echoWorker });
      parts.push(stack.worker);
    }
    return stack;
  } catch (error) {
    await stack.stop();
    throw error;
  }
}

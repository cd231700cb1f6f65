// What the Worker benchmarks share (`bench/run.mjs` routes, `bench/wan.mjs`): the settings both Workers run
// with, the stack (redis-server, the counting gateway, redge's Worker and the SDK peer in `wrangler dev`),
// the key spaces, the requests of each route and what counts as the expected answer.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { start } from '../../scripts/lib/proc.mjs';
import { freePort, startRedis } from '../../scripts/lib/stack.mjs';
import { buildEnv, root } from '../../scripts/lib/toolchain.mjs';
import { startCountingGateway } from './gateway.mjs';

const log = (m) => console.log(`[bench] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
// Rate limits high enough that every benchmarked request is allowed: the benchmark measures the cost of a
// decision, not of a refusal. The same algorithm (sliding window) on both sides.
export const LIMIT = 100_000_000;
export const WINDOW_MS = 3_600_000;
export const IDLE_S = 1800;
export const CACHE_TTL_MS = 3_600_000;
// redge's deadlines raised to the peer's 5 s, so that a busy machine measures slow answers, not fallbacks.
export const redgeVars = {
  RATELIMIT_POLICIES: JSON.stringify([{ name: 'api', algorithm: 'sliding_window', limit: LIMIT, period_ms: WINDOW_MS }]),
  // Only the dashboard goes through the middleware's check: the other three measure one capability each,
  // as the peer's routes do.
  RATELIMIT_ROUTES: JSON.stringify({ ops: null, session: null, lookup: null, ratelimit: null, dashboard: 'api' }),
  RATELIMIT_TIMEOUT_MS: '5000',
  REDIS_TIMEOUT_MS: '5000',
  CACHE_DEADLINE_MS: '5000',
  CACHE_TTL_MS: String(CACHE_TTL_MS),
  SESSION_IDLE_S: String(IDLE_S),
  DEMO_ORIGIN_LATENCY_MS: '0',
};
export const peerVars = {
  PEER_LIMIT: String(LIMIT),
  PEER_WINDOW_MS: String(WINDOW_MS),
  SESSION_IDLE_S: String(IDLE_S),
  CACHE_TTL_MS: String(CACHE_TTL_MS),
  DEMO_ORIGIN_LATENCY_MS: '0',
};

// ---------------------------------------------------------------------------------------------------------
// Processes and their CPU time

/** Every descendant of `pid` (itself included), from /proc. */
export function descendants(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // gone
    }
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

export function procInfo(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, comm, ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** CPU ticks (utime + stime) of `pids`. */
export const ticksOf = (pids) => pids.reduce((sum, pid) => sum + (procInfo(pid)?.ticks ?? 0), 0);

/** The workerd processes under a `wrangler dev`, and everything else it started (node, esbuild). */
export function workerProcesses(wranglerPid) {
  const all = descendants(wranglerPid).map(procInfo).filter(Boolean);
  return { workerd: all.filter((p) => p.comm === 'workerd').map((p) => p.pid), other: all.filter((p) => p.comm !== 'workerd').map((p) => p.pid) };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP client: node:http with keep-alive (lighter on the shared CPU than fetch)

export function makeClient(base) {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return ({ method = 'GET', path, headers = {}, body }) =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, method, path, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } : headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
}

export async function waitUntil(check, what, ms = 20 * 60_000, proc = null) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`${what} not ready${proc ? `:\n${proc.tail()}` : ''}`);
}

// ---------------------------------------------------------------------------------------------------------
// The stack: redis-server, the release gateway (its request log counts HTTP requests and commands), two Workers

/**
 * Starts the stack. `front({ url, token })`, when given, starts something between the Workers and the
 * gateway (the delay proxy of `bench/wan.mjs`) and resolves to `{ url, stop }`: the Workers are given its
 * URL. `extra` lists more Workers, `{ name, cwd, vars, config }` (`config`: a wrangler config file to use
 * instead of the one in `cwd`), started after the first two are ready (one may reuse redge's build).
 */
export async function startBenchStack({ front = null, extra = [] } = {}) {
  const redis = await startRedis();
  log(`redis-server on ${redis.port}`);
  const { url: gatewayUrl, token, counters, proc: gateway } = await startCountingGateway({ redisUrl: redis.url, log });
  const proxy = front ? await front({ url: gatewayUrl, token }) : null;
  const redisUrl = proxy ? proxy.url : gatewayUrl;

  const wrangler = join(root, 'node_modules', '.bin', 'wrangler');
  const startWrangler = async (name, cwd, vars, config = null) => {
    const port = await freePort();
    const argv = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false'];
    if (config) argv.push('--config', config);
    for (const [k, v] of Object.entries({ UPSTASH_REDIS_REST_URL: redisUrl, UPSTASH_REDIS_REST_TOKEN: token, ...vars })) argv.push('--var', `${k}:${v}`);
    const proc = start(wrangler, argv, { name, cwd, env: buildEnv({ CI: 'true' }) });
    return { name, proc, url: `http://127.0.0.1:${port}` };
  };
  log('building redge\'s Worker and starting both Workers in wrangler dev');
  const redge = await startWrangler('wrangler-redge', root, redgeVars);
  const peer = await startWrangler('wrangler-peer', join(root, 'bench', 'peers', 'routes-upstash'), peerVars);
  await waitUntil(async () => (await fetch(`${redge.url}/api/health`)).ok, 'redge Worker', 20 * 60_000, redge.proc);
  await waitUntil(async () => (await fetch(`${peer.url}/none`)).status === 404, 'peer Worker', 5 * 60_000, peer.proc);
  const workers = { redge, peer };
  for (const x of extra) {
    const w = await startWrangler(`wrangler-${x.name}`, x.cwd ?? root, x.vars ?? redgeVars, x.config ?? null);
    await waitUntil(async () => (await fetch(`${w.url}/api/health`)).ok, x.name, 5 * 60_000, w.proc);
    workers[x.name] = w;
  }
  for (const w of Object.values(workers)) {
    w.request = makeClient(w.url);
    w.processes = workerProcesses(w.proc.pid);
    log(`${w.name}: workerd pids ${w.processes.workerd.join(', ')}`);
    if (!w.processes.workerd.length) throw new Error(`no workerd process found under ${w.name}`);
  }
  const cli = (...a) => execFileSync('redis-cli', ['-p', String(redis.port), ...a], { maxBuffer: 64 << 20 }).toString();
  return {
    redis,
    cli,
    counters,
    gateway,
    proxy,
    workers,
    redge,
    peer,
    async stop() {
      for (const w of Object.values(workers)) await w.proc.stop();
      await proxy?.stop();
      await gateway.stop();
      await redis.dispose();
    },
  };
}

export function commandstats(cli) {
  let calls = 0;
  const per = {};
  for (const m of cli('INFO', 'commandstats').matchAll(/cmdstat_([a-z|_]+):calls=(\d+)/g)) {
    if (m[1] === 'info' || m[1] === 'dbsize' || m[1] === 'copy') continue;
    per[m[1]] = Number(m[2]);
    calls += Number(m[2]);
  }
  return { calls, per };
}

// ---------------------------------------------------------------------------------------------------------
// Key spaces: one real session and one real cache entry per Worker, copied to n keys inside Redis

const b64url = (buf) => buf.toString('base64url');
const fixed = randomBytes(24);

/** The i-th redge session id (16 bytes, as redge encodes them) and the i-th peer token. */
/** The Redis key of the cache entry `key` in the namespace `ns` (the library's `cache::keys::entry`). */
function redgeEntryKey(ns, key) {
  return `${ns}:v:{${createHash('sha1').update(key).digest().subarray(0, 3).toString('base64url')}}:${key}`;
}

/** A session id for copy `i`; it begins with the user's tag once `fixed` holds it (see `seed`). */
export function redgeId(i) {
  const b = Buffer.alloc(16);
  fixed.copy(b, 0, 0, 8);
  b.writeBigUInt64BE(BigInt(i), 8);
  return b64url(b);
}
export function peerToken(i) {
  const b = Buffer.alloc(32);
  fixed.copy(b, 0, 0, 24);
  b.writeBigUInt64BE(BigInt(i), 24);
  return b64url(b);
}

/** Sends `COPY src dst` for every pair from `pairs(i)` through `redis-cli --pipe`. */
export function pipeCopies(port, from, to, pairs) {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-p', String(port), '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.on('exit', (code) => (code === 0 && /errors: 0/.test(output) ? resolve(output) : reject(new Error(`redis-cli --pipe: ${output}`))));
    const cmd = (...parts) => `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
    let i = from;
    const write = () => {
      while (i < to) {
        let chunk = '';
        for (let n = 0; n < 2000 && i < to; n++, i++) for (const [src, dst] of pairs(i)) if (src !== dst) chunk += cmd('COPY', src, dst);
        if (!child.stdin.write(chunk)) return child.stdin.once('drain', write);
      }
      child.stdin.end();
    };
    write();
  });
}

export async function seed(stack) {
  const { redge, peer, cli } = stack;
  // redge: sign in once (the session routes check Origin on writes), read item 1 once (a miss, then written).
  const signIn = await redge.request({ method: 'POST', path: '/api/session', headers: { origin: redge.url }, body: JSON.stringify({ user: 'bench' }) });
  if (signIn.status !== 201) throw new Error(`redge sign-in: ${signIn.status} ${signIn.text}`);
  const cookie = String(signIn.headers['set-cookie']).split(';')[0];
  const [cookieName, redgeToken] = cookie.split('=');
  const [id0, secret] = redgeToken.split('.');
  const peerSignIn = await peer.request({ method: 'POST', path: '/api/session', body: JSON.stringify({ user: 'bench' }) });
  if (peerSignIn.status !== 201) throw new Error(`peer sign-in: ${peerSignIn.status} ${peerSignIn.text}`);
  const peer0 = JSON.parse(peerSignIn.text).token;
  for (const w of [redge, peer]) {
    await w.request({ path: '/api/lookup/1' });
    await sleep(300);
    const again = JSON.parse((await w.request({ path: '/api/lookup/1' })).text);
    if (again.status !== 'hit') throw new Error(`${w.name}: item 1 is not cached after a lookup: ${JSON.stringify(again)}`);
  }
  const sessionKey = cli('--scan', '--pattern', `*:s:${id0}`).trim();
  const entryKey = redgeEntryKey('redge:lookup', 'item:1');
  // A session id begins with its user's tag (3 bytes): the copies keep it, so they stay in its slot.
  Buffer.from(id0, 'base64url').copy(fixed, 0, 0, 3);
  if (!sessionKey || !cli('EXISTS', entryKey).includes('1')) throw new Error(`redge keys not found (session ${sessionKey})`);
  const prefix = sessionKey.slice(0, -id0.length);
  return {
    cookieName,
    secret,
    done: 0, // identifiers 1..n are copies; the signed-in originals are not used by the load
    pairs: (i) => [
      [sessionKey, `${prefix}${redgeId(i)}`],
      [entryKey, redgeEntryKey('redge:lookup', `item:${i}`)],
      [`peer:session:${peer0}`, `peer:session:${peerToken(i)}`],
      ['peer:lookup:item:1', `peer:lookup:item:${i}`],
    ],
  };
}

export async function growKeyspace(stack, keys, n) {
  if (keys.done >= n) return;
  const t = performance.now();
  await pipeCopies(stack.redis.port, keys.done + 1, n + 1, keys.pairs);
  keys.done = n;
  log(`key space ${n}: copied in ${((performance.now() - t) / 1000).toFixed(1)} s; DBSIZE ${stack.cli('DBSIZE').trim()}`);
}

// ---------------------------------------------------------------------------------------------------------
// The routes

/** The request of `route` for the i-th identifier of the key space, on each Worker. */
export function requestFor(which, route, i, keys, ip) {
  const headers = { 'cf-connecting-ip': ip };
  if (which === 'redge') {
    const cookie = `${keys.cookieName}=${redgeId(i)}.${keys.secret}`;
    if (route === 'ratelimit') return { method: 'POST', path: `/api/ratelimit/api?id=k${i}`, headers };
    if (route === 'session') return { path: '/api/session', headers: { ...headers, cookie } };
    if (route === 'cache') return { path: `/api/lookup/${i}`, headers };
    return { path: `/api/dashboard?item=${i}`, headers: { ...headers, cookie } };
  }
  const cookie = `peer_session=${peerToken(i)}`;
  if (route === 'ratelimit') return { method: 'POST', path: `/api/ratelimit?id=k${i}`, headers };
  if (route === 'session') return { path: '/api/session', headers: { ...headers, cookie } };
  if (route === 'cache') return { path: `/api/lookup/${i}`, headers };
  return { path: `/api/dashboard?item=${i}`, headers: { ...headers, cookie } };
}

/** Whether an answer is what the benchmark means to measure (allowed, signed in, a cache hit). */
export function expected(route, response) {
  if (response.status !== 200) return false;
  let body;
  try {
    body = JSON.parse(response.text);
  } catch {
    return false;
  }
  if (route === 'ratelimit') return true;
  if (route === 'session') return Boolean(body.session);
  if (route === 'cache') return body.status === 'hit';
  return body.signed_in === true && body.item?.status === 'hit';
}

/** One closed-loop slice of `ms` with `concurrency` clients against one Worker's route. */

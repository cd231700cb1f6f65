// `npm run soak`: the stack under sustained load, then under faults, on 127.0.0.1 only.
//
// Starts redis-server (append-only file, fsync per write: a restart keeps every acknowledged write, as a
// managed Redis does), the optimized gateway (cargo profile gateway), a local origin this script can make fail, and the Worker in
// `wrangler dev` looking items up from that origin. Then:
//   1. load: SOAK_CONCURRENCY visitors in a closed loop for SOAK_DURATION_S seconds, each signing in,
//      reading its session, writing it with compare-and-set (every acknowledged version is tracked),
//      spending rate limits and looking items up; zero 5xx and zero network errors allowed;
//   2. faults, the load still running: the gateway stopped and restarted, Redis paused (SIGSTOP) and
//      resumed, Redis stopped and restarted, the origin failing. During each, probes check every
//      capability's failure policy; afterwards the time until each capability works again is measured
//      and the load must see zero 5xx again;
//   3. every session ever signed in is read back: each acknowledged write must be there.
// Also: the Worker never restarted (same process, same isolate), and no token or session secret appears
// in any line the gateway or the Worker printed.
//
// `npm run soak -- cluster` runs the same load against a local Redis Cluster (3 masters, 3 replicas) behind the
// gateway in cluster mode, with one fault: a master killed (SIGKILL) under load, its replica promoted. It
// measures, from the kill, the time until each capability works again, and counts acknowledged session writes
// the failover lost (Redis replicates asynchronously, so a write the master acknowledged but had not sent to
// its replica is gone): that number is reported, not hidden, and is not a violation.
//
// Exits 1 on any violated expectation. Prints a summary; writes bench/results/soak.{md,json}
// (soak-cluster.{md,json} for the cluster run).
// Settings (environment): SOAK_DURATION_S (60), SOAK_CONCURRENCY (16), SOAK_FAULT_S (5),
// SOAK_RECOVERY_TIMEOUT_S (30), SOAK_MAX_REQUESTS (2000000: a hard bound on the load), SOAK_RESULTS
// (bench/results; `-` writes nothing).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { startCluster } from './lib/cluster.mjs';
import { run } from './lib/proc.mjs';
import { freePort, startGateway, startRedis, startWorker } from './lib/stack.mjs';
import { ensureToolchain, MissingPrerequisite, root } from './lib/toolchain.mjs';

const setting = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};
const DURATION_S = setting('SOAK_DURATION_S', 60);
const CONCURRENCY = Math.round(setting('SOAK_CONCURRENCY', 16));
const FAULT_S = setting('SOAK_FAULT_S', 5);
const RECOVERY_TIMEOUT_S = setting('SOAK_RECOVERY_TIMEOUT_S', 30);
const MAX_REQUESTS = Math.round(setting('SOAK_MAX_REQUESTS', 2_000_000));
const RESULTS = process.env.SOAK_RESULTS ?? join(root, 'bench', 'results');
/** `npm run soak -- cluster`: a Redis Cluster, and a master failover as the fault. */
const CLUSTER = process.argv.slice(2).includes('cluster');
/** Seconds of load before each fault and after each recovery. */
const CALM_S = 3;
/** The Worker's fresh TTL for lookups: short, so that the origin fault meets stale entries. */
const CACHE_TTL_MS = 2_000;
/** Items the load looks up (all cached by the time the faults start); probes use higher ids. */
const LOAD_ITEMS = 300;
/** Identifiers the load spends rate limits for ("burst": 5 per 10 s each, so some are refused). */
const RATE_IDS = 400;

const log = (message) => console.log(`[soak] ${message}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const violations = [];
function violation(message) {
  if (violations.length < 200) violations.push(message);
  if (violations.length <= 20) log(`VIOLATION: ${message}`);
}

// ---------------------------------------------------------------------------------------------------
// The origin: the demo's items (1..=1000; others 404), failing with 500 while `origin.failing`.

async function startOrigin() {
  const port = await freePort();
  const origin = { url: `http://127.0.0.1:${port}/items`, failing: false, calls: 0, failed: 0 };
  const server = createServer((req, res) => {
    origin.calls += 1;
    const match = /^\/items\/(\d+)$/.exec(req.url ?? '');
    if (origin.failing) {
      origin.failed += 1;
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"the origin is failing on purpose"}');
      return;
    }
    const id = match ? Number(match[1]) : 0;
    if (!(id >= 1 && id <= 1000)) return res.writeHead(404).end();
    const item = { id, name: `Item ${id}`, price_cents: (id * 137) % 10_000, fetched_at: Date.now() };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(item));
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  origin.close = () => new Promise((resolve) => server.close(resolve));
  return origin;
}

// ---------------------------------------------------------------------------------------------------
// Recording: every request is counted under the window it started in.

let window = 'starting';
const windows = new Map();
function stats(name) {
  let s = windows.get(name);
  if (!s) {
    s = { name, started: performance.now(), ended: null, ops: {} };
    windows.set(name, s);
  }
  return s;
}
function enter(name) {
  const previous = windows.get(window);
  if (previous && previous.ended === null) previous.ended = performance.now();
  window = name;
  stats(name);
}
function op(s, name) {
  s.ops[name] ??= { requests: 0, statuses: {}, latencies: [], outcomes: {} };
  return s.ops[name];
}
let totalRequests = 0;

/** What may answer in a window, per operation; anything else is a violation. */
function allowed(windowName, operation, status, body) {
  const phase = windowName.split(':')[1] ?? 'calm';
  const fault = windowName.split(':')[0];
  const redisSide = ['gateway-restart', 'redis-pause', 'redis-restart', 'master-failover'].includes(fault);
  const faulty = phase === 'during' || phase === 'recovering';
  switch (operation) {
    case 'sign-in':
      return status === 201 || (faulty && redisSide && status === 503);
    case 'session-read':
      // 401 on a cluster: the sign-in was lost in the failover (counted by `lost`).
      return status === 200 || (faulty && redisSide && status === 503) || (CLUSTER && status === 401);
    case 'session-write':
      return status === 200 || status === 409 || (faulty && redisSide && status === 503) || (CLUSTER && status === 401);
    case 'rate-limit':
      return status === 200 || status === 429;
    case 'lookup':
      // Only an item never fetched before may fail while the origin does: nothing cached to serve.
      return status === 200 || (faulty && fault === 'origin-failing' && status === 502 && !fetched.has(body?.id));
    default:
      return false;
  }
}

const workerState = { url: null, origin: null };

// The demo's policies, with the `api` policy that guards every session and lookup route per client IP
// sized for this run: all the visitors here share 127.0.0.1, so the default (1000 a minute) would refuse
// most of the load. The route middleware still runs on every request.
const SOAK_POLICIES = JSON.stringify([
  { name: 'burst', algorithm: 'gcra', limit: 5, period_s: 10 },
  { name: 'sliding', algorithm: 'sliding_window', limit: 20, period_s: 60 },
  { name: 'fixed', algorithm: 'fixed_window', limit: 10, period_s: 60 },
  { name: 'bucket', algorithm: 'token_bucket', limit: 10, period_s: 60, burst: 3 },
  { name: 'api', algorithm: 'gcra', limit: 1_000_000, period_s: 60, burst: 100_000 },
]);

/** One request to the Worker; every answer must be JSON (a problem for errors). */
async function call(operation, method, path, { body, cookie } = {}) {
  const started = performance.now();
  const s = stats(window);
  const o = op(s, operation);
  const headers = {};
  if (method !== 'GET') headers.origin = workerState.origin;
  if (cookie) headers.cookie = cookie;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const answer = { status: 0, body: null, setCookies: [], headers: null };
  totalRequests += 1;
  try {
    const response = await fetch(`${workerState.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    answer.status = response.status;
    answer.headers = response.headers;
    answer.setCookies = response.headers.getSetCookie();
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    if (text) {
      try {
        answer.body = JSON.parse(text);
      } catch {
        violation(`${method} ${path} answered ${response.status} that is not JSON (${type}): ${text.slice(0, 200)}`);
      }
    }
    if (response.status >= 400 && !type.startsWith('application/problem+json')) {
      violation(`${method} ${path} answered ${response.status} as ${type}, not a problem`);
    }
  } catch (error) {
    answer.error = String(error.cause ?? error);
  }
  o.requests += 1;
  o.latencies.push(performance.now() - started);
  const key = answer.status === 0 ? 'network error' : String(answer.status);
  o.statuses[key] = (o.statuses[key] ?? 0) + 1;
  // A request in flight when a fault begins or ends may answer as either window allows.
  if (!allowed(s.name, operation, answer.status, answer.body) && !allowed(window, operation, answer.status, answer.body)) {
    violation(`${s.name}: ${operation} ${method} ${path.replace(/\?.*/, '')} answered ${key}${answer.error ? ` (${answer.error})` : ''}: ${JSON.stringify(answer.body)?.slice(0, 240)}`);
  }
  return answer;
}

const outcome = (operation, name) => {
  const o = op(stats(window), operation);
  o.outcomes[name] = (o.outcomes[name] ?? 0) + 1;
};

// ---------------------------------------------------------------------------------------------------
// Visitors: one session each at a time, written with compare-and-set; every acknowledged write tracked.

const everyVisitor = [];
/** Ids known to be in the cache (fresh, or stale within the grace period). */
const fetched = new Set();
const counts = { acknowledged: 0, unacknowledged: 0, appliedLate: 0, signIns: 0, lostSessions: 0, lostWrites: 0 };

/**
 * On a cluster, a failover may lose what the old master acknowledged but had not replicated: a sign-in (the
 * session is then missing) or a write (the session is back at an older version). Such a loss is counted and
 * reported; with one redis-server and its append-only file it is a violation.
 */
function lost(kind, message) {
  if (!CLUSTER) return violation(message);
  if (kind === 'session') counts.lostSessions += 1;
  else counts.lostWrites += 1;
  if (counts.lostSessions + counts.lostWrites <= 20) log(`lost in the failover: ${message}`);
}

class Visitor {
  constructor(n) {
    this.n = n;
    this.user = `soak-${n}-${Date.now()}`;
    this.cookie = null;
    this.id = null;
    this.version = 0;
    this.seq = null;
    this.attempt = 0;
    /** Writes sent since the last acknowledged one whose outcome is unknown (503, network error). */
    this.unknown = new Set();
    everyVisitor.push(this);
  }

  /** Checks a session the Worker returned against what this visitor knows was acknowledged. */
  check(session, where) {
    if (session.id !== this.id) return violation(`${where}: session ${session.id} is not ${this.id}`);
    if (session.version < this.version && !this.unknown.size) {
      lost('write', `${where}: session ${this.id} is back at version ${session.version}; acknowledged: version ${this.version}`);
      this.version = session.version;
      this.seq = session.data?.seq ?? null;
      return;
    }
    const seq = session.data?.seq ?? null;
    if (session.version === this.version) {
      if (seq !== this.seq) violation(`${where}: session ${this.id} at version ${this.version} holds seq ${seq}, acknowledged ${this.seq}`);
      return;
    }
    // A write whose answer was lost (a 503 while Redis hung) may have been applied afterwards: at most
    // one of them (they all expected the same version), and only one that was actually sent.
    if (session.version === this.version + 1 && this.unknown.has(seq)) {
      counts.appliedLate += 1;
      this.version = session.version;
      this.seq = seq;
      this.unknown.clear();
      return;
    }
    violation(`${where}: session ${this.id} is at version ${session.version} (seq ${seq}); acknowledged: version ${this.version} (seq ${this.seq}), unknown outcomes: ${[...this.unknown].join(',') || 'none'}`);
  }

  keepCookie(setCookies, where) {
    for (const line of setCookies) {
      const [pair] = line.split(';');
      const value = pair.slice(pair.indexOf('=') + 1);
      if (!value) {
        lost('session', `${where}: the session cookie of ${this.id} was cleared`);
        this.cookie = null;
        return;
      }
      this.cookie = pair;
    }
  }

  async signIn() {
    const answer = await call('sign-in', 'POST', '/api/session', { body: { user: this.user } });
    if (answer.status !== 201) return;
    counts.signIns += 1;
    this.cookie = answer.setCookies[0]?.split(';')[0] ?? null;
    this.id = answer.body.session.id;
    this.version = answer.body.session.version;
    this.seq = answer.body.session.data?.seq ?? null;
  }

  async read() {
    const answer = await call('session-read', 'GET', '/api/session', { cookie: this.cookie });
    this.keepCookie(answer.setCookies, 'session read');
    if (answer.status === 200) this.check(answer.body.session, 'session read');
    if (answer.status === 401) {
      lost('session', `${window}: session ${this.id} was logged out`);
      this.cookie = null;
    }
  }

  async write() {
    this.attempt += 1;
    const seq = `${this.n}.${this.attempt}`;
    const data = { seq, visitor: this.n, pad: 'x'.repeat(64) };
    const answer = await call('session-write', 'PATCH', '/api/session', { cookie: this.cookie, body: { data, version: this.version } });
    this.keepCookie(answer.setCookies, 'session write');
    if (answer.status === 200) {
      const { session } = answer.body;
      if (session.version !== this.version + 1 || session.data.seq !== seq) {
        violation(`session write acknowledged version ${session.version} seq ${session.data.seq}, expected ${this.version + 1} ${seq}`);
      }
      this.version = session.version;
      this.seq = session.data.seq;
      this.unknown.clear();
      counts.acknowledged += 1;
    } else if (answer.status === 409) {
      // Only possible when a write with an unknown outcome was applied: check() says whether it was.
      this.check(answer.body.session, 'conflict');
      outcome('session-write', 'conflict after a late write');
    } else {
      this.unknown.add(seq);
      counts.unacknowledged += 1;
    }
  }
}

async function visitor(n, stop) {
  let v = new Visitor(n);
  let step = 0;
  while (!stop.now && totalRequests < MAX_REQUESTS) {
    step += 1;
    if (!v.cookie) {
      await v.signIn();
      if (!v.cookie) await sleep(50);
      continue;
    }
    const dice = Math.random();
    if (dice < 0.02) {
      v = new Visitor(n); // a new visitor; the old session stays, to be verified at the end
    } else if (dice < 0.35) {
      await v.read();
    } else if (dice < 0.6) {
      await v.write();
    } else if (dice < 0.8) {
      const answer = await call('rate-limit', 'POST', `/api/ratelimit/burst?id=soak-${Math.floor(Math.random() * RATE_IDS)}`);
      const reason = answer.body?.decision?.reason;
      if (reason) outcome('rate-limit', reason);
    } else {
      const id = 1 + Math.floor(Math.random() ** 2 * LOAD_ITEMS);
      const startedIn = window;
      const answer = await call('lookup', 'GET', `/api/lookup/${id}`);
      // Cached for sure: written on a miss, or read from Redis, with no fault on meanwhile.
      const calm = (w) => !/:(during|recovering)$/.test(w);
      if (['miss', 'hit', 'stale'].includes(answer.body?.cache_status) && calm(startedIn) && calm(window)) fetched.add(id);
      if (answer.body?.cache_status) outcome('lookup', answer.body.cache_status);
    }
    if (step % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

// ---------------------------------------------------------------------------------------------------
// Probes: what each capability answers during a fault, and how long each takes to recover.

async function probe(path, init) {
  const response = await fetch(`${workerState.url}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

let probeIds = 700;
const probeVisitor = { cookie: null, id: null };

async function probeSession(method, body) {
  const headers = { cookie: probeVisitor.cookie };
  if (method !== 'GET') Object.assign(headers, { origin: workerState.origin, 'content-type': 'application/json' });
  return probe('/api/session', { method, headers, body: body && JSON.stringify(body) });
}

/** Runs `check`, recording a failed assertion as a violation of `what`; returns whether it held. */
async function expect(what, check) {
  try {
    await check();
    return true;
  } catch (error) {
    violation(`${what}: ${error.message.split('\n')[0]}`);
    return false;
  }
}

/** The documented behaviour while Redis (or the gateway) cannot be reached. */
async function redisDownBehaviour(fault) {
  const seen = {};
  await expect(`${fault}: health`, async () => {
    const health = await probe('/api/health');
    seen.health = health.status;
    assert.equal(health.status, 503);
  });
  await expect(`${fault}: sessions fail closed and keep the cookie`, async () => {
    const read = await probeSession('GET');
    const write = await probeSession('PATCH', { data: { probe: fault } });
    seen.session_read = read.status;
    seen.session_write = write.status;
    for (const answer of [read, write]) {
      assert.equal(answer.status, 503);
      assert.match(answer.body.detail, /session is kept/);
      assert.equal(answer.headers.getSetCookie().length, 0, 'a Set-Cookie during the outage');
    }
  });
  await expect(`${fault}: rate limits decided locally`, async () => {
    const id = `probe-${fault}-${Date.now()}`;
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const answer = await probe(`/api/ratelimit/burst?id=${id}`, { method: 'POST' });
      statuses.push(answer.status);
      assert.equal(answer.body.decision.reason, 'local_fallback');
    }
    seen.rate_limit = 'local_fallback';
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
  });
  await expect(`${fault}: lookups answered by the origin`, async () => {
    const id = probeIds++;
    const answer = await probe(`/api/lookup/${id}`);
    seen.lookup = `${answer.status} ${answer.body?.status}`;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'bypass');
    assert.equal(answer.body.value.id, id);
  });
  return seen;
}

/** The documented behaviour while the origin fails: stale entries served, others 502, the rest unaffected. */
async function originDownBehaviour(staleId) {
  const seen = {};
  await expect('origin-failing: a stale entry is served', async () => {
    const answer = await probe(`/api/lookup/${staleId}`);
    seen.cached_item = `${answer.status} ${answer.body?.status}`;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'stale');
    assert.equal(answer.body.value.id, staleId);
  });
  await expect('origin-failing: an item never cached is a 502 problem', async () => {
    const answer = await probe(`/api/lookup/${probeIds++}`);
    seen.uncached_item = answer.status;
    assert.equal(answer.status, 502);
    assert.match(answer.headers.get('content-type'), /application\/problem\+json/);
  });
  await expect('origin-failing: sessions, rate limits and health are unaffected', async () => {
    const read = await probeSession('GET');
    const spend = await probe(`/api/ratelimit/burst?id=probe-origin-${Date.now()}`, { method: 'POST' });
    const health = await probe('/api/health');
    seen.session_read = read.status;
    seen.rate_limit = spend.body?.decision?.reason;
    seen.health = health.status;
    assert.equal(read.status, 200);
    assert.equal(spend.body.decision.reason, 'within_limit');
    assert.equal(health.status, 200);
  });
  return seen;
}

// ---------------------------------------------------------------------------------------------------
// The cluster: which master serves a key, so that the failover hits what the probes use.

async function cli(port, args) {
  const answer = await run('redis-cli', ['-p', String(port), ...args], { echo: false });
  if (answer.code !== 0) throw new Error(`redis-cli -p ${port} ${args.join(' ')} failed: ${answer.output}`);
  return answer.output.trim();
}

/** Redis Cluster's hash slot of `key`: CRC16/XMODEM of its hash tag (or of the whole key), mod 16384. */
function slotOf(key) {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/** Each running master's port and the slot ranges it serves. */
async function slotMap(cluster) {
  const map = [];
  for (const port of await cluster.masters()) {
    const me = (await cli(port, ['CLUSTER', 'NODES'])).split('\n').find((line) => line.includes('myself'));
    const ranges = (me?.split(' ').slice(8) ?? []).filter((r) => /^\d/.test(r)).map((r) => r.split('-').map(Number));
    map.push({ port, serves: (slot) => ranges.some(([from, to = from]) => slot >= from && slot <= to) });
  }
  return map;
}

/**
 * What `WAIT 1 <ms>` after a write would cost a session write: `rounds` writes on one master, one at a
 * time, each `SET` alone and each `SET` followed by `WAIT 1 1000` (answered once the replica has it), over
 * one RESP connection. Milliseconds at p50 and p99 for each, and how many WAITs saw no replica.
 */
async function waitCost(port, rounds = 2000) {
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffered = '';
  let waiting = null;
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    buffered += chunk;
    if (waiting && buffered.split('\r\n').length - 1 >= waiting.lines) {
      const lines = buffered.split('\r\n').slice(0, waiting.lines);
      buffered = '';
      const done = waiting.resolve;
      waiting = null;
      done(lines);
    }
  });
  const send = (text, lines) => new Promise((resolve) => {
    waiting = { lines, resolve };
    socket.write(text);
  });
  const measure = async (withWait) => {
    const took = [];
    let unreplicated = 0;
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      const command = `SET soak:wait:{w} ${i}\r\n${withWait ? 'WAIT 1 1000\r\n' : ''}`;
      const lines = await send(command, withWait ? 2 : 1);
      took.push(performance.now() - started);
      if (withWait && lines[1] !== ':1') unreplicated += 1;
    }
    took.sort((a, b) => a - b);
    const at = (q) => Number(took[Math.min(took.length - 1, Math.floor(q * took.length))].toFixed(3));
    return { p50_ms: at(0.5), p99_ms: at(0.99), unreplicated };
  };
  const plain = await measure(false);
  const waited = await measure(true);
  socket.destroy();
  return { rounds, set: plain, set_then_wait: waited };
}

/**
 * Identifiers the rate-limit probe spends after a failover: each on the killed master's slots (a rate-limit
 * key's hash tag is its identifier), a fresh one per probe, so that a decision by Redis proves that master's
 * slots are served again.
 */
const failoverRateIds = [];

/** Polls every capability until each works normally again; milliseconds from `since` for each. */
async function recovery(fault, since, cachedId) {
  const checks = {
    health: async () => (await probe('/api/health')).status === 200,
    sessions: async () => {
      const read = await probeSession('GET');
      return read.status === 200 && read.body.session.id === probeVisitor.id;
    },
    rate_limit: async () => {
      const id = failoverRateIds.shift() ?? `probe-${Math.random()}`;
      return (await probe(`/api/ratelimit/burst?id=${id}`, { method: 'POST' })).body?.decision?.reason === 'within_limit';
    },
    cache: async () => {
      const answer = await probe(`/api/lookup/${cachedId}`);
      return answer.status === 200 && ['hit', 'miss', 'stale'].includes(answer.body.status) && answer.body.breaker === 'closed';
    },
  };
  const recovered = {};
  const deadline = Date.now() + RECOVERY_TIMEOUT_S * 1000;
  while (Object.keys(recovered).length < Object.keys(checks).length && Date.now() < deadline) {
    for (const [name, check] of Object.entries(checks)) {
      if (name in recovered) continue;
      if (await check().catch(() => false)) recovered[name] = Math.round(performance.now() - since);
    }
    await sleep(100);
  }
  for (const name of Object.keys(checks)) {
    if (!(name in recovered)) {
      violation(`${fault}: ${name} did not recover within ${RECOVERY_TIMEOUT_S} s`);
      recovered[name] = null;
    }
  }
  return recovered;
}

// ---------------------------------------------------------------------------------------------------

const quantile = (sorted, q) => (sorted.length ? Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1)) : null);

function summarise(s) {
  const seconds = ((s.ended ?? performance.now()) - s.started) / 1000;
  const all = [];
  const ops = {};
  let requests = 0;
  const statuses = {};
  for (const [name, o] of Object.entries(s.ops)) {
    const sorted = o.latencies.sort((a, b) => a - b);
    all.push(...sorted);
    requests += o.requests;
    for (const [k, v] of Object.entries(o.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    ops[name] = { requests: o.requests, p50_ms: quantile(sorted, 0.5), p99_ms: quantile(sorted, 0.99), statuses: o.statuses, outcomes: o.outcomes };
  }
  all.sort((a, b) => a - b);
  const fivexx = Object.entries(statuses).filter(([k]) => k.startsWith('5')).reduce((n, [, v]) => n + v, 0);
  return {
    seconds: Number(seconds.toFixed(1)),
    requests,
    requests_per_s: Math.round(requests / Math.max(seconds, 0.001)),
    p50_ms: quantile(all, 0.5),
    p99_ms: quantile(all, 0.99),
    statuses,
    '5xx': fivexx,
    network_errors: statuses['network error'] ?? 0,
    ops,
  };
}

async function isolateStart() {
  const text = await (await fetch(`${workerState.url}/api/metrics?scope=isolate`)).text();
  return /^redge_isolate_start_time_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? null;
}

function markdown(results) {
  const load = results.load;
  const lines = [
    `# Soak: sustained load and faults (${results.started_at}, ${results.machine.cores} CPUs, Node ${results.machine.node})`,
    '',
    `Produced by \`${results.command}\`. ${results.redis === 'cluster' ? 'A Redis Cluster of three masters with a replica each (no persistence: the replicas are the copies), redge-gateway in cluster mode' : 'redis-server (append-only file, fsync per write), redge-gateway'}`,
    `(cargo profile gateway) and the Worker in \`wrangler dev\` on 127.0.0.1, the Worker's lookups going to a local origin`,
    `(\`ORIGIN_URL\`, \`CACHE_TTL_MS=${CACHE_TTL_MS}\`). ${results.concurrency} visitors in a closed loop: sign in, read the`,
    'session, write it with compare-and-set, spend the `burst` rate limit, look items up. The faults run with the',
    `load still on; each lasts ${results.fault_s} s. Latencies are client-side (Node \`fetch\` to the Worker and back).`,
    'Outcomes `bypass` (lookups) and `local_fallback` (rate limits) outside the faults are Redis round trips',
    'that missed the cache\'s 150 ms or the limiter\'s 200 ms deadline: the failure policies at work under load.',
    '',
    `**Result: ${results.passed ? 'passed' : 'FAILED'}** (${results.violations.length} violations).`,
    '',
    '## Sustained load',
    '',
    '| requests | seconds | requests/s | p50 ms | p99 ms | 5xx | network errors | statuses |',
    '|---:|---:|---:|---:|---:|---:|---:|---|',
    `| ${load.requests} | ${load.seconds} | ${load.requests_per_s} | ${load.p50_ms} | ${load.p99_ms} | ${load['5xx']} | ${load.network_errors} | ${fmt(load.statuses)} |`,
    '',
    '| operation | requests | p50 ms | p99 ms | statuses | outcomes |',
    '|---|---:|---:|---:|---|---|',
    ...Object.entries(load.ops).map(([name, o]) => `| ${name} | ${o.requests} | ${o.p50_ms} | ${o.p99_ms} | ${fmt(o.statuses)} | ${fmt(o.outcomes)} |`),
    '',
    '## Faults',
    '',
    'Behaviour = what the probes saw during the fault; recovery = milliseconds from the end of the fault (the',
    'restart or SIGCONT returned, the origin answering again; for a master failover, from the kill) until the capability worked normally (health 200;',
    'the probe session readable; a rate-limit decision by Redis; a lookup served through Redis with the breaker',
    'closed). Load statuses are those of the visitors\' requests during the fault and until every capability',
    'recovered.',
    '',
    '| fault | behaviour during the fault | recovery ms (health / sessions / rate limit / cache) | load statuses during the fault | 5xx after recovery |',
    '|---|---|---|---|---:|',
    ...results.faults.map((f) => `| ${f.name} | ${fmt(f.behaviour)} | ${['health', 'sessions', 'rate_limit', 'cache'].map((k) => f.recovery_ms[k] ?? 'never').join(' / ')} | ${fmt(f.during.statuses)} | ${f.after['5xx']} |`),
    '',
    '## Acknowledged writes',
    '',
    `- sessions signed in: ${results.sessions.signed_in}; read back at the end: ${results.sessions.verified} (all must be)`,
    `- session writes acknowledged: ${results.sessions.writes_acknowledged}; every one was found, at its version, or`,
    `  superseded by a later write of the same visitor`,
    `- writes answered 503 or lost on the network (outcome unknown): ${results.sessions.writes_unknown}; found applied`,
    `  later: ${results.sessions.writes_applied_late} (Redis ran them but the answer was lost: run just before a fault cut the reply off, or reached within the deadline's 500 ms of slack; a write reaching a hung Redis later changes nothing)`,
    ...(results.wait_cost
      ? [
          `- what \`WAIT 1\` after each write would cost (${results.wait_cost.rounds} writes one at a time on one master, its replica on the same machine): \`SET\` p50 ${results.wait_cost.set.p50_ms} ms / p99 ${results.wait_cost.set.p99_ms} ms; \`SET\` + \`WAIT 1 1000\` p50 ${results.wait_cost.set_then_wait.p50_ms} ms / p99 ${results.wait_cost.set_then_wait.p99_ms} ms (${results.wait_cost.set_then_wait.unreplicated} not acknowledged by the replica); between machines it adds the master-replica round trip to every write`,
        ]
      : []),
    ...(results.sessions.lost_in_failover
      ? [
          `- lost in the failover (acknowledged by the killed master, not yet on its replica): ${results.sessions.lost_in_failover.sessions} sessions`,
          `  and ${results.sessions.lost_in_failover.writes} session writes; those sessions' users had to sign in again`,
        ]
      : []),
    `- the Worker process and isolate were the same from start to end: ${results.worker_restarts === 0 ? 'yes' : 'NO'}`,
    `- tokens or session secrets in the gateway's or the Worker's output: ${results.secrets_in_logs}`,
    '',
  ];
  if (results.violations.length) lines.push('## Violations', '', ...results.violations.map((v) => `- ${v}`), '');
  return lines.join('\n');
}

const fmt = (object) => Object.entries(object ?? {}).map(([k, v]) => `${k}: ${v}`).join(', ');

async function main() {
  await ensureToolchain({ log });
  const output = [];
  const collect = (text) => {
    output.push(text);
  };
  const cluster = CLUSTER ? await startCluster({ log }) : null;
  const redis = CLUSTER ? null : await startRedis({ persist: true });
  const parts = [cluster ?? redis];
  try {
    if (cluster) log(`Redis Cluster: ${cluster.seeds}`);
    else log(`redis-server on ${redis.url} (append-only, fsync always)`);
    const gateway = await startGateway({
      redisUrl: cluster ? cluster.nodes[0].url : redis.url,
      env: cluster ? { REDGE_REDIS_CLUSTER_NODES: cluster.seeds } : {},
      profile: 'release',
      log,
      output: collect,
    });
    parts.push(gateway);
    log(`redge-gateway on ${gateway.url}`);
    const origin = await startOrigin();
    parts.push({ stop: origin.close });
    const worker = await startWorker({
      gatewayUrl: gateway.url,
      token: gateway.token,
      vars: { ORIGIN_URL: origin.url, CACHE_TTL_MS: String(CACHE_TTL_MS), RATELIMIT_POLICIES: SOAK_POLICIES },
      log,
      output: collect,
    });
    parts.push(worker);
    workerState.url = worker.url;
    workerState.origin = new URL(worker.url).origin;
    let workerExited = false;
    worker.proc.exited.then(() => {
      workerExited = true;
    });
    log(`Worker on ${worker.url}`);

    const probeSignIn = await probe('/api/session', { method: 'POST', headers: { origin: workerState.origin, 'content-type': 'application/json' }, body: '{"user":"soak-probe"}' });
    assert.equal(probeSignIn.status, 201, 'the probe visitor could not sign in');
    probeVisitor.cookie = probeSignIn.headers.getSetCookie()[0].split(';')[0];
    probeVisitor.id = probeSignIn.body.session.id;
    const isolateAtStart = await isolateStart();

    let wait = null;
    if (cluster) {
      const map = await slotMap(cluster);
      const owner = map.find((m) => m.serves(slotOf('{w}')));
      wait = await waitCost(owner.port);
      log(`WAIT cost on one master: SET p50 ${wait.set.p50_ms} ms, SET + WAIT 1 p50 ${wait.set_then_wait.p50_ms} ms (p99 ${wait.set.p99_ms} / ${wait.set_then_wait.p99_ms})`);
    }
    const results = {
      command: CLUSTER ? 'npm run soak -- cluster' : 'npm run soak',
      redis: CLUSTER ? 'cluster' : 'single',
      started_at: new Date().toISOString(),
      machine: { cores: cpus().length, node: process.version },
      duration_s: DURATION_S,
      concurrency: CONCURRENCY,
      fault_s: FAULT_S,
      faults: [],
      wait_cost: wait ?? undefined,
    };
    const stop = { now: false };
    enter('load');
    log(`load: ${CONCURRENCY} visitors for ${DURATION_S} s`);
    const visitors = Array.from({ length: CONCURRENCY }, (_, n) => visitor(n, stop));
    await sleep(DURATION_S * 1000);

    const failover = {
      name: 'master-failover',
      what: "the master serving the probe session's slot killed (SIGKILL) under load; its replica is promoted",
      // Measured from the kill: the cluster heals by itself, there is no end to wait for.
      recoverFromBegin: true,
      killed: null,
      begin: async () => {
        // The probe session's keys are `<prefix>:{<tag>}:...`, the tag being the first 4 characters of its id.
        const map = await slotMap(cluster);
        const slot = slotOf(`{${probeVisitor.id.slice(0, 4)}}`);
        if (Number(await cli(map[0].port, ['CLUSTER', 'KEYSLOT', `{${probeVisitor.id.slice(0, 4)}}`])) !== slot) throw new Error('slotOf disagrees with CLUSTER KEYSLOT');
        const { port, serves } = map.find((m) => m.serves(slot));
        for (let n = 0; failoverRateIds.length < 400; n++) {
          if (serves(slotOf(`probe-failover-${n}`))) failoverRateIds.push(`probe-failover-${n}`);
        }
        await cluster.kill(port);
        failover.killed = { port };
      },
      end: () => {},
      // What the probes see on the killed master's slots right after the kill.
      during: async () => {
        const seen = { killed_port: failover.killed?.port };
        await expect('master-failover: the session fails closed or is served, never signed out', async () => {
          const read = await probeSession('GET');
          seen.session_read = read.status;
          assert.ok([200, 503].includes(read.status), `status ${read.status}`);
          assert.equal(read.headers.getSetCookie().length, 0, 'a Set-Cookie during the failover');
        });
        const spend = await probe(`/api/ratelimit/burst?id=${failoverRateIds.shift()}`, { method: 'POST' });
        seen.rate_limit = spend.body?.decision?.reason;
        return seen;
      },
    };
    const faults = CLUSTER ? [failover] : [
      {
        name: 'gateway-restart',
        what: 'redge-gateway stopped (SIGTERM), started again on the same address',
        begin: () => gateway.stop(),
        end: () => gateway.start(),
        during: () => redisDownBehaviour('gateway-restart'),
      },
      {
        name: 'redis-pause',
        what: 'redis-server paused with SIGSTOP (connections open, nothing answered), then SIGCONT',
        begin: () => redis.pause(),
        end: () => redis.resume(),
        during: () => redisDownBehaviour('redis-pause'),
      },
      {
        name: 'redis-restart',
        what: 'redis-server stopped (SIGTERM), started again on the same port with its append-only file',
        begin: () => redis.stop(),
        end: () => redis.start(),
        during: () => redisDownBehaviour('redis-restart'),
      },
      {
        name: 'origin-failing',
        what: 'the origin answering 500 to every request',
        begin: () => {
          origin.failing = true;
        },
        end: () => {
          origin.failing = false;
        },
        during: async (staleId) => {
          await sleep(CACHE_TTL_MS + 500); // the probe's entry is stale now, within its grace period
          return originDownBehaviour(staleId);
        },
      },
    ];
    for (const fault of faults) {
      if (stop.now || totalRequests >= MAX_REQUESTS) break;
      enter(`${fault.name}:before`);
      const cachedId = probeIds++;
      await probe(`/api/lookup/${cachedId}`);
      await sleep(CALM_S * 1000);
      log(`fault: ${fault.what}`);
      enter(`${fault.name}:during`);
      const faultStarted = performance.now();
      await fault.begin();
      const behaviour = await fault.during(cachedId);
      let since = faultStarted;
      if (!fault.recoverFromBegin) {
        const left = FAULT_S * 1000 - (performance.now() - faultStarted);
        if (left > 0) await sleep(left);
        await fault.end();
        since = performance.now();
      }
      enter(`${fault.name}:recovering`);
      const recovered = await recovery(fault.name, since, cachedId);
      log(`${fault.name}: recovered (ms) ${fmt(recovered)}`);
      enter(`${fault.name}:after`);
      await sleep(CALM_S * 1000);
      enter('between');
      const during = summarise(windows.get(`${fault.name}:during`));
      const recovering = summarise(windows.get(`${fault.name}:recovering`));
      for (const [k, v] of Object.entries(recovering.statuses)) during.statuses[k] = (during.statuses[k] ?? 0) + v;
      results.faults.push({ name: fault.name, what: fault.what, behaviour, recovery_ms: recovered, during, after: summarise(windows.get(`${fault.name}:after`)) });
    }
    stop.now = true;
    await Promise.all(visitors);
    enter('verify');

    log(`verifying ${everyVisitor.length} sessions`);
    let verified = 0;
    for (const v of everyVisitor) {
      if (!v.cookie) continue;
      const answer = await probe('/api/session', { headers: { cookie: v.cookie } });
      if (answer.status !== 200) {
        if (answer.status === 401) lost('session', `verify: session ${v.id} is gone`);
        else violation(`verify: session ${v.id} answered ${answer.status}`);
        continue;
      }
      v.check(answer.body.session, 'verify');
      verified += 1;
    }
    const signedIn = everyVisitor.filter((v) => v.cookie).length;
    if (verified + (CLUSTER ? counts.lostSessions : 0) < signedIn) violation(`verify: ${signedIn - verified} of ${signedIn} sessions could not be read back`);

    const isolateAtEnd = await isolateStart();
    const workerRestarts = workerExited || isolateAtStart !== isolateAtEnd ? 1 : 0;
    if (workerRestarts) violation(`the Worker restarted (process exited: ${workerExited}; isolate start ${isolateAtStart} then ${isolateAtEnd})`);

    // No secret in any line printed: the gateway token, or the secret half of any session token.
    const printed = output.join('');
    const words = new Set(printed.match(/[A-Za-z0-9_-]{43}/g) ?? []);
    let leaks = printed.includes(gateway.token) ? 1 : 0;
    if (leaks) violation('the gateway token appears in the output of the gateway or the Worker');
    for (const v of [...everyVisitor, probeVisitor]) {
      const secret = v.cookie?.split('.')[1];
      if (secret && words.has(secret)) {
        leaks += 1;
        violation(`the secret of session ${v.id} appears in the output of the gateway or the Worker`);
      }
    }

    results.load = summarise(windows.get('load'));
    if (results.load['5xx'] || results.load.network_errors) violation(`load: ${results.load['5xx']} 5xx and ${results.load.network_errors} network errors`);
    for (const f of results.faults) {
      if (f.after['5xx'] || f.after.network_errors) violation(`${f.name}: ${f.after['5xx']} 5xx and ${f.after.network_errors} network errors after recovery`);
    }
    results.requests_total = totalRequests;
    results.sessions = {
      signed_in: signedIn,
      verified,
      writes_acknowledged: counts.acknowledged,
      writes_unknown: counts.unacknowledged,
      writes_applied_late: counts.appliedLate,
      lost_in_failover: CLUSTER ? { sessions: counts.lostSessions, writes: counts.lostWrites } : undefined,
    };
    results.origin = { calls: origin.calls, failed_on_purpose: origin.failed };
    results.worker_restarts = workerRestarts;
    results.secrets_in_logs = leaks;
    results.printed_bytes = printed.length;
    results.violations = violations;
    results.passed = violations.length === 0;

    const l = results.load;
    log(`load: ${l.requests} requests in ${l.seconds} s (${l.requests_per_s}/s), p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, 5xx ${l['5xx']}, network errors ${l.network_errors}`);
    for (const f of results.faults) log(`${f.name}: during ${fmt(f.behaviour)}; recovery ms ${fmt(f.recovery_ms)}; load during ${fmt(f.during.statuses)}; 5xx after ${f.after['5xx']}`);
    log(`sessions: ${verified}/${signedIn} read back; writes acknowledged ${counts.acknowledged}, unknown ${counts.unacknowledged}, applied late ${counts.appliedLate}`);
    if (CLUSTER) log(`lost in the failover: ${counts.lostSessions} sessions, ${counts.lostWrites} acknowledged writes`);
    if (RESULTS !== '-') {
      const name = CLUSTER ? 'soak-cluster' : 'soak';
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
      writeFileSync(join(RESULTS, `${name}.md`), markdown(results));
      log(`wrote ${join(RESULTS, `${name}.md`)} and ${name}.json`);
    }
    log(results.passed ? 'passed' : `FAILED: ${violations.length} violations`);
    return results.passed;
  } finally {
    for (const part of parts.reverse()) await (part.dispose ? part.dispose() : part.stop());
  }
}

try {
  process.exit((await main()) ? 0 : 1);
} catch (error) {
  console.error(`[soak] ${error instanceof MissingPrerequisite ? 'missing prerequisite: ' : ''}${error.stack ?? error}`);
  process.exit(1);
}

// `npm test`: every suite, in order, ending with one line "N passed, N failed".
//   native  cargo test --workspace (pure logic; the gateway against a real redis-server)
//   wasm    wasm-pack test --node (the library compiled to wasm, against the real gateway and Redis)
//   js      the npm package built (scripts/build-js.mjs), its Node tests (tsc --strict over the type tests
//           and the TypeScript example among them), and the example Workers (JavaScript, TypeScript) in
//           wrangler dev, against the real gateway and Redis
//   e2e     the Worker in wrangler dev and the page in headless Chromium, against the real stack
//   cluster a local Redis Cluster (3 masters, 3 replicas) behind the gateway in cluster mode: the wasm
//           suites that cover every script, then the Worker's journey before and after a master is killed
// `npm test -- wasm` (or `npm run test:wasm`, ...) runs one suite.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { run } from './lib/proc.mjs';
import { startCluster } from './lib/cluster.mjs';
import { freePort, startGateway, startStack, startWorker } from './lib/stack.mjs';
import { buildEnv, ensureToolchain, root } from './lib/toolchain.mjs';
import { buildPackage } from './build-js.mjs';

const log = (message) => console.log(`[test] ${message}`);
const all = ['native', 'wasm', 'js', 'e2e', 'cluster'];
const chosen = process.argv.slice(2).filter((a) => all.includes(a));
const suites = chosen.length ? chosen : all;
const totals = { passed: 0, failed: 0 };

/** Adds up the counts a runner printed; a runner that failed without saying how counts as one failure. */
function count(name, { code, output }, pattern) {
  let passed = 0;
  let failed = 0;
  for (const match of output.matchAll(pattern)) {
    passed += Number(match.groups.passed);
    failed += Number(match.groups.failed);
  }
  if (code !== 0 && failed === 0) failed = 1;
  log(`${name}: ${passed} passed, ${failed} failed${code !== 0 && failed === 1 && passed === 0 ? ' (the suite did not run: see above)' : ''}`);
  totals.passed += passed;
  totals.failed += failed;
}

const cargoPattern = /test result: \w+\. (?<passed>\d+) passed; (?<failed>\d+) failed/g;
const nodePattern = /^# pass (?<passed>\d+)\n# fail (?<failed>\d+)/gm;

let stack = null;
async function gatewayStack() {
  stack ??= await startStack({ worker: false, log });
  return stack;
}

/**
 * A small HTTP server through which e2e tests inject faults: stop, start, snapshot, pause (SIGSTOP) and
 * resume (SIGCONT) redis-server; stop and start the gateway.
 */
async function controlServer(redis, gateway) {
  const port = await freePort();
  const actions = {
    '/redis/stop': () => redis.stop(),
    '/redis/start': () => redis.start(),
    '/redis/save': () => redis.save(),
    '/redis/pause': () => redis.pause(),
    '/redis/resume': () => redis.resume(),
    '/gateway/stop': () => gateway.stop(),
    '/gateway/start': () => gateway.start(),
  };
  const server = createServer(async (req, res) => {
    const action = req.method === 'POST' ? actions[req.url] : undefined;
    if (!action) return res.writeHead(404).end();
    try {
      await action();
      res.writeHead(204).end();
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** The wasm suites run against the cluster: together they use every script redge sends. */
const CLUSTER_WASM_SUITES = ['ratelimit', 'ratelimit_leases', 'session', 'session_cache', 'cache', 'plan'];
/** Policies for the cluster journey: the demo's `burst`, and an `api` budget the journey's probes never exhaust. */
const CLUSTER_POLICIES = JSON.stringify([
  { name: 'api', algorithm: 'gcra', limit: 100_000, period: '1m', burst: 10_000 },
  { name: 'burst', algorithm: 'gcra', limit: 5, period: '10s', burst: 5 },
]);

/** The control server of the cluster journey: kills one master once its replica has every write. */
async function clusterControl(cluster) {
  const port = await freePort();
  const server = createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/cluster/kill-master') return res.writeHead(404).end();
    try {
      // The master's replica has every write the master took, so the kill loses none.
      const [master] = await cluster.masters();
      await cluster.caughtUp(master);
      const killed = await cluster.killMaster(0, { wait: false });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(killed));
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

const runners = {
  async native() {
    count('native', await run('cargo', ['test', '--workspace', '--no-fail-fast'], { cwd: root, env: buildEnv() }), cargoPattern);
  },
  async wasm() {
    const { gateway } = await gatewayStack();
    const env = buildEnv({ REDGE_TEST_URL: gateway.url, REDGE_TEST_TOKEN: gateway.token });
    count('wasm', await run('wasm-pack', ['test', '--node', '--', '--test', '*'], { cwd: root, env }), cargoPattern);
  },
  async js() {
    const { sizes } = await buildPackage({ log });
    for (const [target, { raw, gzip }] of Object.entries(sizes)) log(`js: ${target}/redge_bg.wasm is ${raw} bytes, ${gzip} gzipped`);
    const { gateway } = await gatewayStack();
    // A low limit, so that the tests reach it; a short origin latency, so that misses stay quick.
    const example = (name) =>
      startWorker({
        gatewayUrl: gateway.url,
        token: gateway.token,
        vars: { RATE_LIMIT_PER_MINUTE: '5', ORIGIN_LATENCY_MS: '30' },
        cwd: join(root, 'examples', name),
        readyPath: '/health',
        log,
      });
    const tests = join(root, 'js', 'tests');
    const nodeTest = (paths, workerUrl) => {
      const env = { ...process.env, REDGE_TEST_URL: gateway.url, REDGE_TEST_TOKEN: gateway.token, REDGE_JS_WORKER_URL: workerUrl };
      return run(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', ...paths], { cwd: root, env });
    };
    const jsWorker = await example('js-worker');
    try {
      // Every Node test (among them tsc over js/tests/types and examples/ts-worker), with the JavaScript example.
      count('js', await nodeTest([tests], jsWorker.url), nodePattern);
    } finally {
      await jsWorker.stop();
    }
    // The TypeScript example is the same Worker: the same end-to-end tests, against it.
    const tsWorker = await example('ts-worker');
    try {
      count('js (ts-worker)', await nodeTest([join(tests, 'worker.test.mjs')], tsWorker.url), nodePattern);
    } finally {
      await tsWorker.stop();
    }
  },
  async e2e() {
    const { redis, gateway } = await gatewayStack();
    // A second origin allowed by CORS, so the tests can play a page on another site.
    const corsOrigin = 'https://cors-test.example';
    const worker = await startWorker({ gatewayUrl: gateway.url, token: gateway.token, vars: { CORS_ALLOWED_ORIGINS: corsOrigin }, log });
    const control = await controlServer(redis, gateway);
    try {
      const env = { ...process.env, REDGE_E2E_URL: worker.url, REDGE_E2E_GATEWAY: gateway.url, REDGE_E2E_TOKEN: gateway.token, REDGE_E2E_CONTROL: control.url, REDGE_E2E_CORS_ORIGIN: corsOrigin };
      const result = await run(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', join(root, 'tests', 'e2e')], { cwd: root, env });
      count('e2e', result, nodePattern);
    } finally {
      control.close();
      await worker.stop();
    }
  },
  async cluster() {
    const cluster = await startCluster({ log });
    try {
      const gateway = await startGateway({ redisUrl: cluster.nodes[0].url, env: { REDGE_REDIS_CLUSTER_NODES: cluster.seeds }, log });
      try {
        log(`cluster: redge-gateway on ${gateway.url} in front of ${cluster.seeds}`);
        const env = buildEnv({ REDGE_TEST_URL: gateway.url, REDGE_TEST_TOKEN: gateway.token });
        const suites = CLUSTER_WASM_SUITES.flatMap((name) => ['--test', name]);
        count('cluster (wasm)', await run('wasm-pack', ['test', '--node', '--', ...suites], { cwd: root, env }), cargoPattern);
        const worker = await startWorker({ gatewayUrl: gateway.url, token: gateway.token, vars: { RATELIMIT_POLICIES: CLUSTER_POLICIES }, log });
        const control = await clusterControl(cluster);
        try {
          const testEnv = { ...process.env, REDGE_E2E_URL: worker.url, REDGE_E2E_CONTROL: control.url };
          const result = await run(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', join(root, 'tests', 'cluster')], { cwd: root, env: testEnv });
          count('cluster (journey)', result, nodePattern);
        } finally {
          control.close();
          await worker.stop();
        }
      } finally {
        await gateway.stop();
      }
    } finally {
      await cluster.dispose();
    }
  },
};

try {
  await ensureToolchain({ log, worker: suites.includes('e2e') || suites.includes('cluster') });
  for (const suite of suites) {
    log(`suite ${suite}`);
    try {
      await runners[suite]();
    } catch (error) {
      log(`${suite}: could not run: ${error.message}`);
      totals.failed += 1;
    }
  }
} catch (error) {
  log(`cannot run the tests: ${error.message}`);
  totals.failed += 1;
} finally {
  await stack?.stop();
}
console.log(`${totals.passed} passed, ${totals.failed} failed`);
process.exit(totals.failed === 0 && totals.passed > 0 ? 0 : 1);

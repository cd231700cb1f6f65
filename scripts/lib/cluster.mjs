// A local Redis Cluster for tests and benchmarks: three masters and three replicas, each a redis-server
// on a port of its own in a temporary directory, joined with `redis-cli --cluster create`. Put a
// gateway in front of it with
//   startGateway({ redisUrl: cluster.nodes[0].url, env: { REDGE_REDIS_CLUSTER_NODES: cluster.seeds } })
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, run } from './proc.mjs';
import { freePort } from './stack.mjs';

/** How long the nodes wait before they call a silent node failed: short, so a failover takes seconds. */
export const NODE_TIMEOUT_MS = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port whose cluster bus port (port + 10000) is free too, both below 65536. */
async function clusterPort(taken) {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + ((await freePort()) % 10000);
    if (taken.has(port) || taken.has(port + 10000)) continue;
    if (await bindable(port) && await bindable(port + 10000)) return port;
  }
  throw new Error('no free pair of ports for a cluster node');
}

async function bindable(port) {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Runs redis-cli against `port` and answers its output (throws when it fails). */
async function cli(port, args) {
  const result = await run('redis-cli', ['-p', String(port), ...args], { echo: false });
  if (result.code !== 0) throw new Error(`redis-cli -p ${port} ${args.join(' ')} failed:\n${result.output}`);
  return result.output;
}

async function waitFor(check, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

/**
 * Starts the cluster and resolves once every node reports `cluster_state:ok` and every replica has
 * synced. `log` receives progress lines.
 */
export async function startCluster({ log = () => {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'redge-cluster-'));
  const taken = new Set();
  const nodes = [];
  for (let i = 0; i < 6; i++) {
    const port = await clusterPort(taken);
    taken.add(port);
    taken.add(port + 10000);
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir);
    const proc = start(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
        // A replica may be promoted however long ago it last heard from its master.
        '--cluster-replica-validity-factor', '0',
        '--save', '', '--appendonly', 'no', '--dir', nodeDir,
      ],
      { name: `redis-server :${port}` },
    );
    nodes.push({ port, url: `redis://127.0.0.1:${port}`, proc });
  }
  const alive = () => nodes.filter((n) => n.proc);
  const cluster = {
    nodes,
    seeds: nodes.map((n) => n.url).join(','),
    /** The ports of the running masters. */
    async masters() {
      const masters = [];
      for (const node of alive()) {
        if ((await cli(node.port, ['INFO', 'replication'])).includes('role:master')) masters.push(node.port);
      }
      return masters;
    },
    /** Kills the node on `port` with SIGKILL (no goodbye to the other nodes). */
    async kill(port) {
      const node = nodes.find((n) => n.port === port);
      if (!node?.proc) throw new Error(`no running node on port ${port}`);
      process.kill(node.proc.pid, 'SIGKILL');
      await node.proc.exited;
      node.proc = null;
    },
    /**
     * Kills the i-th running master and, unless `wait` is false, waits until its replica has been
     * promoted and every running node reports `cluster_state:ok` again. Answers the killed port and
     * the seconds the promotion took.
     */
    async killMaster(i = 0, { wait = true, timeoutMs = 60_000 } = {}) {
      const before = await this.masters();
      const port = before[i];
      if (port === undefined) throw new Error(`there is no master number ${i}`);
      const killedAt = Date.now();
      await this.kill(port);
      if (!wait) return { port, seconds: null };
      await waitFor(async () => (await this.masters()).length === before.length, `a replica of ${port} to be promoted`, timeoutMs);
      await this.waitOk(timeoutMs);
      return { port, seconds: (Date.now() - killedAt) / 1000 };
    },
    /**
     * Waits until every replica of the master on `port` has every write the master has made so far.
     * (`WAIT` from a new connection would not do: it waits only for that connection's own writes.)
     */
    async caughtUp(port, timeoutMs = 10_000) {
      const offset = async (p) => Number(/master_repl_offset:(\d+)/.exec(await cli(p, ['INFO', 'replication']))?.[1] ?? 0);
      const written = await offset(port);
      const replicas = [];
      for (const node of alive()) {
        if ((await cli(node.port, ['INFO', 'replication'])).includes(`master_port:${port}`)) replicas.push(node.port);
      }
      if (replicas.length === 0) throw new Error(`the master on ${port} has no replica`);
      for (const replica of replicas) {
        await waitFor(async () => (await offset(replica)) >= written, `the replica on ${replica} to catch up with ${port}`, timeoutMs);
      }
    },
    /** Waits until every running node reports `cluster_state:ok` (after a failover, for example). */
    async waitOk(timeoutMs = 30_000) {
      for (const node of alive()) {
        await waitFor(async () => (await cli(node.port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'), `cluster_state:ok on ${node.port}`, timeoutMs);
      }
    },
    async stop() {
      for (const node of alive()) {
        await node.proc.stop();
        node.proc = null;
      }
    },
    async dispose() {
      await this.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const node of nodes) {
      await waitFor(async () => (await cli(node.port, ['PING'])).includes('PONG'), `redis-server on ${node.port}`, 10_000);
    }
    log(`creating a cluster of ${nodes.length} nodes (3 masters, 3 replicas)`);
    const created = await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { echo: false });
    if (!created.output.includes('All 16384 slots covered')) throw new Error(`redis-cli --cluster create failed:\n${created.output}`);
    await cluster.waitOk();
    for (const node of nodes) {
      await waitFor(async () => {
        const info = await cli(node.port, ['INFO', 'replication']);
        return info.includes('role:master') || info.includes('master_link_status:up');
      }, `replica ${node.port} to sync`, 20_000);
    }
    log(`redis cluster ready: ${cluster.seeds}`);
    return cluster;
  } catch (error) {
    await cluster.dispose();
    throw error;
  }
}

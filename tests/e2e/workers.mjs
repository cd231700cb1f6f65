// Extra Workers for tests that need their own configuration, next to the one `npm test` started.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorker } from '../../scripts/lib/stack.mjs';

const root = new URL('../..', import.meta.url).pathname;
export const gatewayUrl = process.env.REDGE_E2E_GATEWAY;
export const gatewayToken = process.env.REDGE_E2E_TOKEN;

/**
 * Starts the Worker that `npm test` already built (demo/build/) in `wrangler dev` with extra `vars`, from a
 * folder whose wrangler.toml has no build step: a second build would rewrite demo/build/ under the running
 * Worker and make it reload mid-test. `gateway` replaces the Redis URL (a wrong one, for a test).
 */
export async function startExtraWorker({ vars = {}, gateway = gatewayUrl, output } = {}) {
  const config = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  const date = config.match(/^compatibility_date = "([^"]+)"/m)[1];
  const dir = mkdtempSync(join(tmpdir(), 'redge-worker-'));
  writeFileSync(join(dir, 'wrangler.toml'), [
    'name = "redge-extra"',
    `main = ${JSON.stringify(join(root, 'demo', 'build', 'index.js'))}`,
    `compatibility_date = "${date}"`,
    '[assets]',
    `directory = ${JSON.stringify(join(root, 'www'))}`,
    'not_found_handling = "none"',
    // The same routing as wrangler.toml: /api/* straight to the Worker.
    ...(config.match(/^run_worker_first = .*$/m) ?? []),
    '',
  ].join('\n'));
  const worker = await startWorker({ cwd: dir, gatewayUrl: gateway, token: gatewayToken, vars, output });
  return {
    url: worker.url,
    async stop() {
      await worker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One command through the gateway, for looking at (or cleaning up) what a Worker wrote. */
export async function redisCommand(...args) {
  const response = await fetch(gatewayUrl, { method: 'POST', headers: { authorization: `Bearer ${gatewayToken}` }, body: JSON.stringify(args) });
  const body = await response.json();
  if (!response.ok) throw new Error(`${args[0]}: ${JSON.stringify(body)}`);
  return body.result;
}

// The redge-gateway users build (cargo profile gateway) for the benchmarks, in front of `redisUrl`, counting from its request log
// (one line per request, with `commands=N`) the HTTP round trips it served and the Redis commands they
// carried. `counters` changes as requests arrive: take a copy before a slice and subtract after it.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { run, start } from '../../scripts/lib/proc.mjs';
import { freePort } from '../../scripts/lib/stack.mjs';
import { buildEnv, root, targetDir } from '../../scripts/lib/toolchain.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startCountingGateway({ redisUrl, log = () => {} }) {
  log('building redge-gateway (cargo profile gateway)');
  const built = await run('cargo', ['build', '--profile', 'gateway', '-p', 'redge-gateway'], { cwd: root, env: buildEnv(), echo: false });
  if (built.code !== 0) throw new Error(`building the gateway failed:\n${built.output.slice(-3000)}`);
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const counters = { requests: 0, commands: 0 };
  let pending = '';
  const proc = start(join(targetDir, 'gateway', 'redge-gateway'), [], {
    name: 'redge-gateway',
    env: { ...process.env, REDGE_GATEWAY_LISTEN: `127.0.0.1:${port}`, REDGE_REDIS_URL: redisUrl, REDGE_GATEWAY_TOKENS: token, RUST_LOG: 'info', NO_COLOR: '1' },
    output: (text) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const m = / request .*commands=(\d+)/.exec(line);
        if (m) {
          counters.requests += 1;
          counters.commands += Number(m[1]);
        }
      }
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const ping = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '["PING"]' });
      if (ping.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redge-gateway was not ready within 10 s:\n${proc.tail()}`);
    await sleep(100);
  }
  return { url, token, counters, proc };
}

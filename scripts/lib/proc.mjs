// Child processes that never outlive us: each runs in its own process group, and every group still
// alive is killed when this process exits, however it exits.
import { spawn, spawnSync } from 'node:child_process';

const groups = new Set();

function killAll(signal) {
  for (const pid of groups) {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }
}

process.on('exit', () => killAll('SIGKILL'));
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAll('SIGTERM');
    process.exit(130);
  });
}

/** Starts a long-running child in its own process group. `output` is 'inherit', 'ignore' or a callback. */
export function start(command, args, { env = process.env, cwd, output = 'ignore', name = command } = {}) {
  const child = spawn(command, args, {
    env,
    cwd,
    detached: true,
    stdio: ['ignore', output === 'inherit' ? 'inherit' : 'pipe', output === 'inherit' ? 'inherit' : 'pipe'],
  });
  groups.add(child.pid);
  const tail = [];
  if (output !== 'inherit') {
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk) => {
        const text = chunk.toString();
        if (typeof output === 'function') output(text);
        tail.push(text);
        if (tail.length > 200) tail.shift();
      });
    }
  }
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      groups.delete(child.pid);
      resolve({ code, signal });
    });
    child.on('error', (error) => {
      groups.delete(child.pid);
      resolve({ code: -1, error });
    });
  });
  return {
    name,
    pid: child.pid,
    exited,
    /** The last lines this process printed, for error messages. */
    tail: () => tail.join('').split('\n').slice(-40).join('\n'),
    /** Stops the whole group: SIGTERM, then SIGKILL after `graceMs`. */
    async stop(graceMs = 5000) {
      if (!groups.has(child.pid)) return exited;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return exited;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }, graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Runs a command to completion, echoing its output; resolves with { code, output }. */
export function run(command, args, { env = process.env, cwd, echo = true } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (target) => (chunk) => {
      output += chunk.toString();
      if (echo) target.write(chunk);
    };
    child.stdout.on('data', take(process.stdout));
    child.stderr.on('data', take(process.stderr));
    child.on('exit', (code) => resolve({ code: code ?? 1, output }));
    child.on('error', (error) => resolve({ code: 1, output: String(error) }));
  });
}

/** The first line of `command args`, or null when the command is missing or fails. */
export function probe(command, args = ['--version'], env = process.env) {
  const result = spawnSync(command, args, { env, encoding: 'utf8' });
  if (result.status !== 0 || result.error) return null;
  return (result.stdout || result.stderr).trim().split('\n')[0];
}

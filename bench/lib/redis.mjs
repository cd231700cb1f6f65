// Redis's own count of the commands it ran (`INFO commandstats`, commands inside scripts included), for
// per-request deltas in the benchmarks. The INFO calls themselves are left out.
import { execFileSync } from 'node:child_process';

/** `{ calls, per }`: commands run so far in all, and by name, on the redis-server at `port`. */
export function commandStats(port) {
  const text = execFileSync('redis-cli', ['-p', String(port), 'INFO', 'commandstats']).toString();
  let calls = 0;
  const per = {};
  for (const m of text.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) {
    if (m[1] === 'info') continue;
    per[m[1]] = Number(m[2]);
    calls += Number(m[2]);
  }
  return { calls, per };
}

// Where the stack that `npm test` started lives. Run these files through `npm run test:e2e`.
export const workerUrl = process.env.REDGE_E2E_URL;
export const controlUrl = process.env.REDGE_E2E_CONTROL;
/** An origin the Worker's CORS configuration allows (besides its own). */
export const corsOrigin = process.env.REDGE_E2E_CORS_ORIGIN ?? 'https://cors-test.example';
if (!workerUrl || !controlUrl) {
  throw new Error('REDGE_E2E_URL and REDGE_E2E_CONTROL are not set: run the end-to-end suite with `npm run test:e2e`');
}

/** Posts one fault-injection action to the test runner's control server. */
async function control(path) {
  const response = await fetch(`${controlUrl}${path}`, { method: 'POST' });
  if (response.status !== 204) throw new Error(`${path} failed: ${await response.text()}`);
}

/**
 * Acts on the stack's redis-server: `stop`, `start`, `save` (a snapshot: the next start keeps the data),
 * `pause` (SIGSTOP: connections stay open, nothing is answered) or `resume` (SIGCONT).
 */
export const redis = (action) => control(`/redis/${action}`);

/** Stops or starts the stack's redge-gateway (same address and token after a start). */
export const gateway = (action) => control(`/gateway/${action}`);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the last value. */
export async function eventually(fn, { timeoutMs = 10_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let value;
  while (Date.now() < deadline) {
    value = await fn();
    if (value) return value;
    await sleep(intervalMs);
  }
  return value;
}

/** The Redis round trips a response reports in `Server-Timing` (`redis;dur=3;desc="1 round trip"`). */
export function roundTrips(response) {
  const header = response.headers.get('server-timing') ?? '';
  const match = /(?:^|,)\s*redis;[^,]*desc="(\d+) round trips?"/.exec(header);
  if (!match) throw new Error(`no Redis round-trip count in Server-Timing: ${JSON.stringify(header)}`);
  return Number(match[1]);
}

// Calls to the Worker's API: JSON in and out, problem details, and the Redis cost of each request read
// from its Server-Timing header. Every call is announced to listeners (the request strip).

const listeners = new Set();

/** Calls `listener(entry)` after every API request. */
export function onRequest(listener) {
  listeners.add(listener);
}

/**
 * Parses `Server-Timing` (`redis;dur=3;desc="1 round trip", bg;desc="0 round trips", total;dur=4`) into
 * `{ roundTrips, backgroundTrips, redisMs, totalMs }`: `roundTrips` are the Redis round trips the response
 * waited for, `backgroundTrips` those the request scheduled to run after its response; fields the header
 * lacks are null.
 */
export function parseServerTiming(header) {
  const timing = { roundTrips: null, backgroundTrips: null, redisMs: null, totalMs: null };
  if (!header) return timing;
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().split(';');
    const values = {};
    for (const param of params) {
      const at = param.indexOf('=');
      if (at < 0) continue;
      values[param.slice(0, at).trim()] = param.slice(at + 1).trim().replace(/^"|"$/g, '');
    }
    const count = /^(\d+) round trips?$/.exec(values.desc ?? '');
    if (name === 'redis') {
      timing.redisMs = values.dur === undefined ? null : Number(values.dur);
      timing.roundTrips = count ? Number(count[1]) : null;
    } else if (name === 'bg') {
      timing.backgroundTrips = count ? Number(count[1]) : null;
    } else if (name === 'total') {
      timing.totalMs = values.dur === undefined ? null : Number(values.dur);
    }
  }
  return timing;
}

/**
 * Sends one request. Resolves (never rejects) with
 * `{ ok, status, body, problem, timing, clientMs, missing, error }`:
 * `problem` is the RFC 9457 body of an error, `missing` is true when the Worker has no such route
 * (the feature is not deployed), `error` is set when the Worker could not be reached at all.
 */
export async function call(method, path, { json } = {}) {
  const started = performance.now();
  const init = { method, headers: { accept: 'application/json' }, credentials: 'same-origin' };
  if (json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  let result;
  try {
    const response = await fetch(path, init);
    const type = response.headers.get('content-type') ?? '';
    const text = await response.text();
    let body = null;
    if (text && type.includes('json')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    const problem = !response.ok && type.includes('problem+json') ? body : null;
    const missing = problem !== null
      && ((response.status === 404 && /^no route for /.test(problem.detail ?? ''))
        || response.status === 405);
    result = {
      ok: response.ok,
      status: response.status,
      body,
      problem,
      missing,
      headers: response.headers,
      timing: parseServerTiming(response.headers.get('server-timing')),
      clientMs: Math.round(performance.now() - started),
      error: null,
    };
  } catch (error) {
    result = {
      ok: false, status: 0, body: null, problem: null, missing: false, headers: new Headers(),
      timing: parseServerTiming(null), clientMs: Math.round(performance.now() - started), error: error.message,
    };
  }
  const entry = { method, path, ...result, at: new Date() };
  for (const listener of listeners) listener(entry);
  return result;
}

let routeList = null;

/** The Worker's routes (`GET /api`), as a set of "METHOD /pattern" strings; empty if unknown. */
export async function routes() {
  routeList ??= call('GET', '/api').then((answer) => new Set(
    answer.ok && Array.isArray(answer.body?.routes) ? answer.body.routes.map((r) => `${r.method} ${r.path}`) : [],
  ));
  return routeList;
}

/** A short human message for a failed call. */
export function describeFailure(answer) {
  if (answer.error) return `The Worker did not answer: ${answer.error}`;
  if (answer.problem) return answer.problem.detail || answer.problem.title || `HTTP ${answer.status}`;
  return `HTTP ${answer.status}`;
}

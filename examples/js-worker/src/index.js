// A rate-limited, session-aware, cached route on redge's npm package, in plain JavaScript.
//
//   POST /sign-in    {"user": "ada"}  -> a session cookie
//   POST /sign-out                    -> the session ends, the cookie is cleared
//   GET  /items/:id                   -> the item (1 to 1000) from a slow origin, cached in Redis,
//                                        rate-limited per client IP, with the signed-in user; the
//                                        session, the rate limit and the cache read cost ONE round trip
//   GET  /popular/:id                 -> the same items through the colo tier, with no rate limit or
//                                        session: a value this location's Cache API holds (up to 10 s
//                                        after Redis confirmed it) costs NO round trip
//   GET  /health                      -> ok
//
// Every response says in `x-redis-round-trips` how many Redis round trips it cost (this isolate's count
// during the request: exact when requests do not overlap).
import { Cache, Client, RateLimiter, SessionStore, UnavailableError } from 'redge';

let app = null;

/** Built once per isolate: the limiter's block cache and the cache's single flight live across requests. */
function build(env) {
  const client = Client.fromEnv(env, { timeoutMs: 1000 });
  return {
    client,
    limiter: new RateLimiter(client, { limit: Number(env.RATE_LIMIT_PER_MINUTE ?? 60), periodMs: 60_000, algorithm: 'slidingWindow', prefix: 'example:rl' }),
    sessions: new SessionStore(client, { insecureDev: env.SESSION_COOKIE_INSECURE === 'true', prefix: 'example:session' }),
    cache: new Cache(client, { namespace: 'example' }),
    // Built at the first request: the colo tier keys its entries under the Worker's own origin.
    popular: null,
    originLatencyMs: Number(env.ORIGIN_LATENCY_MS ?? 50),
  };
}

/** The demo origin: a slow lookup by id; ids above 1000 do not exist. */
async function fetchItem(id, latencyMs) {
  await new Promise((resolve) => setTimeout(resolve, latencyMs));
  if (id > 1000) return null;
  return { id, name: `Item ${id}`, priceCents: (id * 137) % 10_000 };
}

const json = (body, status = 200, headers = {}) => Response.json(body, { status, headers });

async function item(request, ctx, id, clientIp) {
  const { client, sessions, limiter, cache, originLatencyMs } = app;
  // The session, the rate limit and the cache read go to Redis together: one round trip.
  const batch = client.batch();
  batch.loadSession(sessions, sessions.readCookie(request.headers.get('cookie')));
  batch.limit(limiter, `ip:${clientIp}`);
  batch.lookup(cache, { key: `item:${id}`, tags: ['items'] }, { group: 'items', ttlMs: 30_000, graceMs: 300_000, negativeTtlMs: 10_000 });
  const [loaded, decision, read] = await batch.send();
  const user = loaded?.session.user ?? null;
  const headers = { ...decision.headers };
  if (loaded?.setCookie) headers['set-cookie'] = loaded.setCookie;
  if (!decision.allowed) {
    // Refused: the cache read is dropped, so the origin is never called.
    return json({ error: 'too many requests', retryAfterMs: decision.retryAfter }, 429, headers);
  }
  // A hit is served as it is; a miss calls the origin once per isolate and writes (one more round trip).
  const lookup = await read.resolve(() => fetchItem(id, originLatencyMs), ctx);
  headers['x-cache'] = lookup.status;
  if (!lookup.found) return json({ error: `no item ${id}`, user }, 404, headers);
  return json({ item: lookup.value, user, remaining: decision.remaining }, 200, headers);
}

async function popular(ctx, id, origin) {
  app.popular ??= new Cache(app.client, { namespace: 'example-popular', colo: origin });
  // Fresh for 30 s in Redis; each location's Cache API keeps a copy for up to 10 s, written after the
  // response through ctx.waitUntil, and served from there without asking Redis.
  const policy = { group: 'popular', ttlMs: 30_000, coloTtlMs: 10_000 };
  const lookup = await app.popular.getOrFetch(`item:${id}`, policy, () => fetchItem(id, app.originLatencyMs), ctx);
  const headers = { 'x-cache': lookup.status, 'x-cache-tier': lookup.fromColo ? 'colo' : lookup.fromMemory ? 'memory' : 'redis' };
  if (!lookup.found) return json({ error: `no item ${id}` }, 404, headers);
  return json({ item: lookup.value }, 200, headers);
}

async function signIn(request) {
  const { sessions } = app;
  const body = await request.json().catch(() => null);
  if (typeof body?.user !== 'string' || body.user === '') return json({ error: 'send {"user": "<name>"}' }, 400);
  const current = sessions.readCookie(request.headers.get('cookie'));
  const issued = await sessions.signIn(body.user, { data: { signedInAt: Date.now() }, replacing: current });
  return json({ user: issued.session.user, session: issued.session.id }, 200, { 'set-cookie': issued.setCookie });
}

async function signOut(request) {
  const { sessions } = app;
  const revoked = await sessions.revoke(sessions.readCookie(request.headers.get('cookie')));
  return json({ ended: revoked.ended }, 200, { 'set-cookie': sessions.clearCookie() });
}

async function route(request, ctx) {
  const url = new URL(request.url);
  if (url.pathname === '/health') return new Response('ok');
  const match = /^\/items\/([^/]+)$/.exec(url.pathname);
  if (match && request.method === 'GET') {
    const id = Number(match[1]);
    if (!Number.isInteger(id) || id < 1) return json({ error: 'an item id is a whole number from 1' }, 400);
    return item(request, ctx, id, request.headers.get('cf-connecting-ip') ?? 'unknown');
  }
  const popularMatch = /^\/popular\/([^/]+)$/.exec(url.pathname);
  if (popularMatch && request.method === 'GET') {
    const id = Number(popularMatch[1]);
    if (!Number.isInteger(id) || id < 1) return json({ error: 'an item id is a whole number from 1' }, 400);
    return popular(ctx, id, url.origin);
  }
  if (url.pathname === '/sign-in' && request.method === 'POST') return signIn(request);
  if (url.pathname === '/sign-out' && request.method === 'POST') return signOut(request);
  return json({ error: 'not found', routes: ['POST /sign-in', 'POST /sign-out', 'GET /items/:id', 'GET /popular/:id', 'GET /health'] }, 404);
}

export default {
  async fetch(request, env, ctx) {
    try {
      app ??= build(env);
    } catch (error) {
      // A missing secret or a bad setting: say which, on every request, until it is fixed.
      return json({ error: error.message, code: error.code }, 500);
    }
    const before = app.client.stats().roundTrips;
    let response;
    try {
      response = await route(request, ctx);
    } catch (error) {
      // Redis down or slow: 503, and the session cookie is left alone (nobody is signed out).
      const status = error instanceof UnavailableError ? 503 : 500;
      response = json({ error: error.message, code: error.code }, status);
    }
    response.headers.set('x-redis-round-trips', String(app.client.stats().roundTrips - before));
    return response;
  },
};

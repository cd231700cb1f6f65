// A rate-limited, session-aware, cached route on redge's npm package, in TypeScript: the same Worker as
// examples/js-worker, with keys of its own (`example-ts:`). `Env` is what `wrangler types` generated from
// wrangler.toml and .dev.vars (worker-configuration.d.ts).
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
import { Cache, Client, RateLimiter, RedgeError, SessionStore, UnavailableError } from 'redge';

interface Item {
  id: number;
  name: string;
  priceCents: number;
}

interface App {
  client: Client;
  limiter: RateLimiter;
  sessions: SessionStore;
  cache: Cache;
  /** Built at the first request: the colo tier keys its entries under the Worker's own origin. */
  popular: Cache | null;
  originLatencyMs: number;
}

let app: App | null = null;

/** Built once per isolate: the limiter's block cache and the cache's single flight live across requests. */
function build(env: Env): App {
  const client = Client.fromEnv(env, { timeoutMs: 1000 });
  return {
    client,
    limiter: new RateLimiter(client, { limit: Number(env.RATE_LIMIT_PER_MINUTE), periodMs: 60_000, algorithm: 'slidingWindow', prefix: 'example-ts:rl' }),
    sessions: new SessionStore(client, { insecureDev: env.SESSION_COOKIE_INSECURE === 'true', prefix: 'example-ts:session' }),
    cache: new Cache(client, { namespace: 'example-ts' }),
    popular: null,
    originLatencyMs: Number(env.ORIGIN_LATENCY_MS),
  };
}

/** The demo origin: a slow lookup by id; ids above 1000 do not exist. */
async function fetchItem(id: number, latencyMs: number): Promise<Item | null> {
  await new Promise((resolve) => setTimeout(resolve, latencyMs));
  if (id > 1000) return null;
  return { id, name: `Item ${id}`, priceCents: (id * 137) % 10_000 };
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response => Response.json(body, { status, headers });

async function item({ client, sessions, limiter, cache, originLatencyMs }: App, request: Request, ctx: ExecutionContext, id: number, clientIp: string): Promise<Response> {
  // The session, the rate limit and the cache read go to Redis together: one round trip. Chained, the
  // batch's type follows the calls, so each element of the result has its own type.
  const [loaded, decision, read] = await client
    .batch()
    .loadSession(sessions, sessions.readCookie(request.headers.get('cookie')))
    .limit(limiter, `ip:${clientIp}`)
    .lookup(cache, { key: `item:${id}`, tags: ['items'] }, { group: 'items', ttlMs: 30_000, graceMs: 300_000, negativeTtlMs: 10_000 })
    .send();
  const user = loaded?.session.user ?? null;
  const headers: Record<string, string> = { ...decision.headers };
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

async function popular(app: App, ctx: ExecutionContext, id: number, origin: string): Promise<Response> {
  app.popular ??= new Cache(app.client, { namespace: 'example-ts-popular', colo: origin });
  // Fresh for 30 s in Redis; each location's Cache API keeps a copy for up to 10 s, written after the
  // response through ctx.waitUntil, and served from there without asking Redis.
  const policy = { group: 'popular', ttlMs: 30_000, coloTtlMs: 10_000 };
  const lookup = await app.popular.getOrFetch(`item:${id}`, policy, () => fetchItem(id, app.originLatencyMs), ctx);
  const tier = lookup.fromColo ? 'colo' : lookup.fromMemory ? 'memory' : 'redis';
  const headers = { 'x-cache': lookup.status, 'x-cache-tier': tier };
  if (!lookup.found) return json({ error: `no item ${id}` }, 404, headers);
  return json({ item: lookup.value }, 200, headers);
}

async function signIn({ sessions }: App, request: Request): Promise<Response> {
  const body: unknown = await request.json().catch(() => null);
  const user = typeof body === 'object' && body !== null && 'user' in body ? body.user : undefined;
  if (typeof user !== 'string' || user === '') return json({ error: 'send {"user": "<name>"}' }, 400);
  const current = sessions.readCookie(request.headers.get('cookie'));
  const issued = await sessions.signIn(user, { data: { signedInAt: Date.now() }, replacing: current });
  return json({ user: issued.session.user, session: issued.session.id }, 200, { 'set-cookie': issued.setCookie });
}

async function signOut({ sessions }: App, request: Request): Promise<Response> {
  const revoked = await sessions.revoke(sessions.readCookie(request.headers.get('cookie')));
  return json({ ended: revoked.ended }, 200, { 'set-cookie': sessions.clearCookie() });
}

async function route(app: App, request: Request, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === '/health') return new Response('ok');
  const match = /^\/items\/([^/]+)$/.exec(url.pathname);
  if (match && request.method === 'GET') {
    const id = Number(match[1]);
    if (!Number.isInteger(id) || id < 1) return json({ error: 'an item id is a whole number from 1' }, 400);
    return item(app, request, ctx, id, request.headers.get('cf-connecting-ip') ?? 'unknown');
  }
  const popularMatch = /^\/popular\/([^/]+)$/.exec(url.pathname);
  if (popularMatch && request.method === 'GET') {
    const id = Number(popularMatch[1]);
    if (!Number.isInteger(id) || id < 1) return json({ error: 'an item id is a whole number from 1' }, 400);
    return popular(app, ctx, id, url.origin);
  }
  if (url.pathname === '/sign-in' && request.method === 'POST') return signIn(app, request);
  if (url.pathname === '/sign-out' && request.method === 'POST') return signOut(app, request);
  return json({ error: 'not found', routes: ['POST /sign-in', 'POST /sign-out', 'GET /items/:id', 'GET /popular/:id', 'GET /health'] }, 404);
}

/** An error as JSON: redge's errors carry a stable `code`. */
const problem = (error: unknown, status: number): Response =>
  json({ error: error instanceof Error ? error.message : String(error), code: error instanceof RedgeError ? error.code : undefined }, status);

export default {
  async fetch(request, env, ctx) {
    try {
      app ??= build(env);
    } catch (error) {
      // A missing secret or a bad setting: say which, on every request, until it is fixed.
      return problem(error, 500);
    }
    const before = app.client.stats().roundTrips;
    let response: Response;
    try {
      response = await route(app, request, ctx);
    } catch (error) {
      // Redis down or slow: 503, and the session cookie is left alone (nobody is signed out).
      response = problem(error, error instanceof UnavailableError ? 503 : 500);
    }
    response.headers.set('x-redis-round-trips', String(app.client.stats().roundTrips - before));
    return response;
  },
} satisfies ExportedHandler<Env>;

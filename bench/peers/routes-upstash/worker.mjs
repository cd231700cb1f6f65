// The peer of redge's benchmarked routes, written the way the official SDKs' docs show them:
//   POST /api/ratelimit?id=<identifier>  @upstash/ratelimit sliding window: 200, or 429
//   POST /api/session {"user"}           sign in: a JSON record under a random token (SET NX PX), cookie
//   GET  /api/session                    the record by the cookie's token (GET); when less than half the
//                                        idle window is left, SET it again with a new expiry (sliding TTL)
//   GET  /api/lookup/<id>                cache-aside: GET, on a miss call the origin, then SET PX
//   GET  /api/dashboard?item=<id>        the three at once (Promise.all): rate limit by client IP, session,
//                                        cached item; the SDK's default auto-pipelining batches what it can
//   GET  /api/dashboard/sequential?item=<id>  the same three, each awaited before the next starts (the
//                                        other way the SDK docs write it): one round trip after another
// Settings (vars): PEER_LIMIT and PEER_WINDOW_MS (sliding window), SESSION_IDLE_S (default 1800),
// CACHE_TTL_MS (default 30000), DEMO_ORIGIN_LATENCY_MS (default 300; items 1..1000 exist).
import { Ratelimit } from '@upstash/ratelimit';
import { Redis } from '@upstash/redis/cloudflare';

let state = null;

function setup(env) {
  const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
  const limit = Number(env.PEER_LIMIT ?? 1000);
  const windowMs = Number(env.PEER_WINDOW_MS ?? 60_000);
  const ratelimit = new Ratelimit({ redis, limiter: Ratelimit.slidingWindow(limit, `${windowMs} ms`), prefix: 'peer:rl', analytics: false });
  return {
    redis,
    ratelimit,
    idleMs: Number(env.SESSION_IDLE_S ?? 1800) * 1000,
    ttlMs: Number(env.CACHE_TTL_MS ?? 30_000),
    originLatencyMs: Number(env.DEMO_ORIGIN_LATENCY_MS ?? 300),
  };
}

const COOKIE = 'peer_session';

function token() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function cookieToken(request) {
  const header = request.headers.get('cookie') ?? '';
  for (const part of header.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === COOKIE) return value.join('=');
  }
  return null;
}

async function limit(ctx, identifier) {
  const { success, limit: quota, remaining, reset, pending } = await state.ratelimit.limit(identifier);
  ctx.waitUntil(pending);
  return { success, limit: quota, remaining, reset };
}

async function readSession(request) {
  const t = cookieToken(request);
  if (!t) return null;
  const key = `peer:session:${t}`;
  const session = await state.redis.get(key);
  if (!session) return null;
  const now = Date.now();
  if ((session.expires_at - now) * 2 < state.idleMs) {
    session.expires_at = now + state.idleMs;
    await state.redis.set(key, session, { px: state.idleMs, xx: true });
  }
  return session;
}

async function origin(id) {
  if (state.originLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, state.originLatencyMs));
  if (id > 1000) return null;
  return { id, name: `Item ${id}`, price_cents: (id * 137) % 10_000, fetched_at: Date.now() };
}

async function lookup(id) {
  const key = `peer:lookup:item:${id}`;
  const cached = await state.redis.get(key);
  if (cached !== null) return { status: 'hit', value: cached };
  const value = await origin(id);
  if (value !== null) await state.redis.set(key, value, { px: state.ttlMs });
  return { status: 'miss', value };
}

const clientIp = (request) => request.headers.get('cf-connecting-ip') ?? 'anonymous';

export default {
  async fetch(request, env, ctx) {
    state ??= setup(env);
    const url = new URL(request.url);
    const { pathname } = url;
    try {
      if (pathname === '/api/ratelimit' && request.method === 'POST') {
        const decision = await limit(ctx, url.searchParams.get('id') ?? clientIp(request));
        return Response.json({ decision }, { status: decision.success ? 200 : 429 });
      }
      if (pathname === '/api/session' && request.method === 'POST') {
        const { user } = await request.json();
        const t = token();
        const now = Date.now();
        const session = { user, created_at: now, expires_at: now + state.idleMs, data: {} };
        await state.redis.set(`peer:session:${t}`, session, { px: state.idleMs, nx: true });
        return Response.json({ session, token: t }, { status: 201, headers: { 'set-cookie': `${COOKIE}=${t}; HttpOnly; SameSite=Lax; Path=/` } });
      }
      if (pathname === '/api/session' && request.method === 'GET') {
        const session = await readSession(request);
        return session ? Response.json({ session }) : Response.json({ error: 'no valid session' }, { status: 401 });
      }
      const item = pathname.match(/^\/api\/lookup\/(\d+)$/);
      if (item && request.method === 'GET') {
        const id = Number(item[1]);
        const found = await lookup(id);
        return found.value === null ? Response.json({ id, status: found.status }, { status: 404 }) : Response.json({ id, ...found });
      }
      if ((pathname === '/api/dashboard' || pathname === '/api/dashboard/sequential') && request.method === 'GET') {
        const id = Number(url.searchParams.get('item') ?? 1);
        let decision;
        let session;
        let found;
        if (pathname === '/api/dashboard') {
          [decision, session, found] = await Promise.all([limit(ctx, clientIp(request)), readSession(request), lookup(id)]);
        } else {
          decision = await limit(ctx, clientIp(request));
          if (decision.success) {
            session = await readSession(request);
            found = await lookup(id);
          }
        }
        if (!decision.success) return Response.json({ error: 'rate limited', decision }, { status: 429 });
        return Response.json({ signed_in: session !== null, session, ratelimit: decision, item: { id, ...found } });
      }
      return Response.json({ error: 'not found' }, { status: 404 });
    } catch (error) {
      return Response.json({ error: String(error?.message ?? error) }, { status: 500 });
    }
  },
};

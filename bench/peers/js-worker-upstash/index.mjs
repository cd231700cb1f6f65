// examples/js-worker's routes on the official SDKs, the way their docs show them: Ratelimit with a
// sliding window per client IP (its default ephemeral block cache, analytics off), sessions as a random
// token whose JSON record is a Redis string with an expiry, and cache-aside (GET; on a miss the origin,
// then SET PX). It counts its own Redis round trips by wrapping fetch.
//   POST /sign-in {"user"}   GET /items/:id   GET /health
// PEER_PARALLEL=true: the three reads are issued at once (Promise.all) on a client with
// `enableAutoPipelining`, which sends commands of the same tick as one pipeline: the SDK's own way to
// save round trips.
import { Ratelimit } from '@upstash/ratelimit';
import { Redis } from '@upstash/redis/cloudflare';

let roundTrips = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = (...args) => {
  roundTrips += 1;
  return realFetch(...args);
};

let app = null;
const SESSION_S = 1800;
const TTL_MS = 30_000;

function build(env) {
  const parallel = env.PEER_PARALLEL === 'true';
  const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN, enableTelemetry: false, enableAutoPipelining: parallel });
  const limit = Number(env.RATE_LIMIT_PER_MINUTE ?? 60);
  const limiter = new Ratelimit({ redis, limiter: Ratelimit.slidingWindow(limit, '60 s'), prefix: 'peer:rl', analytics: false });
  return { redis, limiter, parallel, originLatencyMs: Number(env.ORIGIN_LATENCY_MS ?? 50) };
}

async function fetchItem(id, latencyMs) {
  await new Promise((resolve) => setTimeout(resolve, latencyMs));
  if (id > 1000) return null;
  return { id, name: `Item ${id}`, priceCents: (id * 137) % 10_000 };
}

function readCookie(header) {
  const match = /(?:^|;\s*)peer_session=([A-Za-z0-9_-]+)/.exec(header ?? '');
  return match ? match[1] : null;
}

async function item(request, ctx, id) {
  const { redis, limiter, parallel, originLatencyMs } = app;
  const token = readCookie(request.headers.get('cookie'));
  const identity = `ip:${request.headers.get('cf-connecting-ip') ?? 'unknown'}`;
  const key = `peer:item:${id}`;
  const readSession = () => (token ? redis.get(`peer:session:${token}`) : null);
  let session;
  let limited;
  let value;
  if (parallel) {
    [session, limited, value] = await Promise.all([readSession(), limiter.limit(identity), redis.get(key)]);
  } else {
    session = await readSession();
    limited = await limiter.limit(identity);
    value = limited.success ? await redis.get(key) : null;
  }
  const user = session?.user ?? null;
  const { success, remaining, reset, pending } = limited;
  ctx.waitUntil(pending);
  if (!success) return Response.json({ error: 'too many requests', retryAfterMs: reset - Date.now() }, { status: 429 });
  let status = 'hit';
  if (value === null) {
    status = 'miss';
    value = await fetchItem(id, originLatencyMs);
    if (value !== null) await redis.set(key, value, { px: TTL_MS });
  }
  if (value === null) return Response.json({ error: `no item ${id}`, user }, { status: 404, headers: { 'x-cache': status } });
  return Response.json({ item: value, user, remaining }, { headers: { 'x-cache': status } });
}

async function signIn(request) {
  const body = await request.json().catch(() => null);
  if (typeof body?.user !== 'string' || body.user === '') return Response.json({ error: 'send {"user": "<name>"}' }, { status: 400 });
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  await app.redis.set(`peer:session:${token}`, { user: body.user, signedInAt: Date.now() }, { ex: SESSION_S });
  return Response.json({ user: body.user }, { headers: { 'set-cookie': `peer_session=${token}; Max-Age=${SESSION_S}; Path=/; HttpOnly; SameSite=Lax` } });
}

export default {
  async fetch(request, env, ctx) {
    app ??= build(env);
    const before = roundTrips;
    const url = new URL(request.url);
    let response;
    try {
      const match = /^\/items\/(\d+)$/.exec(url.pathname);
      if (url.pathname === '/health') response = new Response('ok');
      else if (match) response = await item(request, ctx, Number(match[1]));
      else if (url.pathname === '/sign-in' && request.method === 'POST') response = await signIn(request);
      else response = Response.json({ error: 'not found' }, { status: 404 });
    } catch (error) {
      response = Response.json({ error: String(error?.message ?? error) }, { status: 503 });
    }
    response = new Response(response.body, response);
    response.headers.set('x-redis-round-trips', String(roundTrips - before));
    return response;
  },
};

// The peer for bench/cache.mjs: the same cache-aside lookup as redge's GET /api/lookup/{id}, written the
// way the official SDK's docs suggest (GET, on a miss call the origin, then SET with an expiry), with the
// same demo origin. It counts its own Redis round trips by wrapping fetch.
import { Redis } from '@upstash/redis/cloudflare';

let roundTrips = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = (...args) => {
  roundTrips += 1;
  return realFetch(...args);
};

let redis;
let originCalls = 0;
const TTL_MS = 30_000;

async function origin(id, env) {
  originCalls += 1;
  const latency = Number(env.DEMO_ORIGIN_LATENCY_MS ?? 300);
  if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
  if (id > 1000) return null;
  return { id, name: `Item ${id}`, price_cents: (id * 137) % 10_000, fetched_at: Date.now() };
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/api/cache/metrics') return Response.json({ origin_calls: originCalls });
    const match = pathname.match(/^\/api\/lookup\/(\d+)$/);
    if (!match) return Response.json({ error: 'not found' }, { status: 404 });
    redis ??= new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
    const id = Number(match[1]);
    const key = `peer:lookup:item:${id}`;
    const startTrips = roundTrips;
    const started = Date.now();
    let status = 'hit';
    let value = await redis.get(key);
    if (value === null) {
      status = 'miss';
      value = await origin(id, env);
      if (value !== null) await redis.set(key, value, { px: TTL_MS });
    }
    return Response.json({
      id,
      value,
      status,
      took_ms: Date.now() - started,
      origin_calls: originCalls,
      round_trips: roundTrips - startTrips,
    });
  },
};

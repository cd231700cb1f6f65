// A minimal Worker around the official SDKs, as their docs show it: one Ratelimit per algorithm, the
// default ephemeral (in-memory) block cache, the default timeout, analytics off.
//   POST /<name>?id=<identifier>  ->  200 or 429 with {success, limit, remaining, reset, reason}
// Policies come from the PEER_POLICIES var (JSON): [{"name","algorithm":"sliding_window"|"token_bucket",
// "limit","period_ms","burst"}]; the token bucket refills `limit` tokens every `period_ms`, up to `burst`.
import { Ratelimit } from '@upstash/ratelimit';
import { Redis } from '@upstash/redis/cloudflare';

let limiters = null;

function build(env) {
  const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
  const out = new Map();
  for (const p of JSON.parse(env.PEER_POLICIES)) {
    const window = `${p.period_ms} ms`;
    const limiter =
      p.algorithm === 'token_bucket'
        ? Ratelimit.tokenBucket(p.limit, window, p.burst ?? p.limit)
        : p.algorithm === 'fixed_window'
          ? Ratelimit.fixedWindow(p.limit, window)
          : Ratelimit.slidingWindow(p.limit, window);
    out.set(p.name, new Ratelimit({ redis, limiter, prefix: `peer:${p.name}`, analytics: false }));
  }
  return out;
}

export default {
  async fetch(request, env, ctx) {
    limiters ??= build(env);
    const url = new URL(request.url);
    const limiter = limiters.get(url.pathname.slice(1));
    if (!limiter) return Response.json({ error: 'unknown policy' }, { status: 404 });
    const id = url.searchParams.get('id') ?? 'anonymous';
    try {
      const { success, limit, remaining, reset, reason, pending } = await limiter.limit(id);
      ctx.waitUntil(pending);
      return Response.json({ success, limit, remaining, reset, reason: reason ?? null }, { status: success ? 200 : 429 });
    } catch (error) {
      return Response.json({ error: String(error?.message ?? error) }, { status: 500 });
    }
  },
};

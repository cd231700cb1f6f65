// Type-checked (never run) by package.test.mjs with `tsc --strict` against the built package's
// declarations: the README's uses compile, and the mistakes below are caught by the types.
import { Cache, CacheRead, Client, InvalidArgumentError, RateLimiter, SessionStore, type CacheEntry, type CacheUpdate, type Decision, type Lookup } from 'redge';

declare const env: Record<string, unknown>;

export async function handler(request: Request, ctx: { waitUntil(promise: Promise<unknown>): void }): Promise<Response> {
  const client = Client.fromEnv(env, { timeoutMs: 500 });
  const direct = new Client({ url: 'https://eu1-example.upstash.io', token: 'token', retries: 1 });
  const pong = await direct.command(['PING']);
  const replies = await direct.pipeline([['GET', 'k'], ['INCRBY', 'n', 2]]);
  const stats: number = direct.stats().roundTrips;

  const limiter = new RateLimiter(client, { limit: 60, periodMs: 60_000 });
  const layered = new RateLimiter(client, {
    policies: [
      { name: 'burst', limit: 5, periodMs: 10_000, algorithm: 'tokenBucket', burst: 3 },
      { name: 'daily', limit: 1000, periodMs: 86_400_000, algorithm: 'slidingWindow' },
    ],
    failure: 'open',
    legacyHeaders: true,
  });
  const decision: Decision = await limiter.limit('ip:1', { cost: 2 });
  const peeked = await layered.peek('user:1', { policies: ['daily'] });
  const wait: number = decision.retryAfter + peeked.reset;
  if (!decision.allowed) return new Response('Too many requests', { status: 429, headers: decision.headers });

  const sessions = new SessionStore(client, { idleMs: 60_000, insecureDev: true });
  const issued = await sessions.signIn('ada', { data: { plan: 'pro' } });
  const loaded = await sessions.load(sessions.readCookie(request.headers.get('cookie')));
  const user: string | null = loaded?.session.user ?? null;
  const updated = await sessions.update(issued.token, { plan: 'free' }, { expectedVersion: issued.session.version });
  const conflict: boolean = updated.status === 'conflict';
  await sessions.revoke(issued.token, 'all');

  const cache = new Cache(client, { namespace: 'app' });
  const lookup: Lookup<{ id: number }> = await cache.getOrFetch({ key: 'item:1', tags: ['items'] }, { ttlMs: 30_000 }, async () => ({ id: 1 }), ctx);
  const id: number | undefined = lookup.value?.id;
  await cache.set({ key: 'balance:1', tags: ['user:1'] }, 1_250, { ttlMs: 5_000 });
  const entry: CacheEntry<number> = await cache.get<number>('balance:1');
  const stale: boolean = entry.status === 'stale';
  const change: CacheUpdate<number> = await cache.update('balance:1', undefined, (cents: number) => (cents >= 500 ? cents - 500 : undefined));
  const existed: boolean = await cache.delete('balance:1');

  const batch = client.batch();
  batch.loadSession(sessions, issued.token);
  batch.limit(limiter, 'ip:1');
  batch.lookup(cache, 'item:1', { ttlMs: 30_000 });
  const [, , read] = await batch.send();
  if (read instanceof CacheRead) await read.resolve(() => ({ id: 1 }), ctx);

  try {
    await limiter.limit('ip:1', { cost: 1_000 });
  } catch (error) {
    if (error instanceof InvalidArgumentError && error.code === 'REDGE_INSUFFICIENT_CAPACITY') return new Response(String(error.capacity));
  }

  // @ts-expect-error an identifier is a string
  await limiter.limit(42);
  // @ts-expect-error options are checked: `cots` is not `cost`
  await limiter.limit('ip:1', { cots: 1 });
  // @ts-expect-error a quota needs periodMs
  new RateLimiter(client, { limit: 1 });
  // @ts-expect-error the failure policy is one of three names
  new RateLimiter(client, { limit: 1, periodMs: 1, failure: 'maybe' });
  // @ts-expect-error an update returns the value's type (or undefined to keep it)
  await cache.update<number>('balance:1', {}, (cents) => String(cents));
  // @ts-expect-error get's statuses are not lookup statuses
  const hit: 'hit' = entry.status;
  // @ts-expect-error a reason is not a free string
  const reason: 'nope' = decision.reason;

  return Response.json({ pong, replies, stats, wait, user, conflict, id, reason, stale, change, existed, hit });
}

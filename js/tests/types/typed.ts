// Type-checked (never run) by package.test.mjs with `tsc --strict`: `Client.fromEnv` takes a Worker's `Env`
// as `wrangler types` generates it, and a chained `Batch` resolves to a tuple that follows its calls.
import { Cache, CacheRead, Client, RateLimiter, SessionStore, type Batch, type BatchResult, type Decision, type LoadedSession } from 'redge';

/** True only when A and B are the same type. */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function same<A, B>(proof: Equal<A, B>): void {
  void proof;
}

// What `wrangler types` writes (worker-configuration.d.ts): an interface, so without an index signature,
// with vars as literal types, secrets as strings and other bindings of any type.
declare namespace Cloudflare {
  interface Env {
    RATE_LIMIT_PER_MINUTE: '60';
    UPSTASH_REDIS_REST_URL: string;
    UPSTASH_REDIS_REST_TOKEN: string;
    SESSIONS: { get(key: string): Promise<string | null> };
    QUEUE: { send(message: unknown): Promise<void> };
  }
}
interface Env extends Cloudflare.Env {}
declare const env: Env;

// A Worker whose secrets were never declared, or declared with the wrong type.
interface EnvWithoutSecrets {
  SESSIONS: { get(key: string): Promise<string | null> };
  RATE_LIMIT_PER_MINUTE: '60';
}
interface EnvWithoutToken {
  UPSTASH_REDIS_REST_URL: string;
  QUEUE: { send(message: unknown): Promise<void> };
}
interface EnvWithNumberUrl {
  UPSTASH_REDIS_REST_URL: number;
  UPSTASH_REDIS_REST_TOKEN: string;
}
declare const withoutSecrets: EnvWithoutSecrets;
declare const withoutToken: EnvWithoutToken;
declare const numberUrl: EnvWithNumberUrl;

// Node's `process.env` (declared here as @types/node declares it) and other dictionaries of variables.
interface ProcessEnv {
  [key: string]: string | undefined;
  TZ?: string;
}
declare const processEnv: ProcessEnv;
declare const record: Record<string, unknown>;

export async function fromEnv(): Promise<void> {
  Client.fromEnv(env);
  Client.fromEnv(env, { timeoutMs: 500 });
  Client.fromEnv(processEnv);
  Client.fromEnv(record);
  Client.fromEnv({ UPSTASH_REDIS_REST_URL: 'https://eu1-example.upstash.io', UPSTASH_REDIS_REST_TOKEN: 'token' });
  // @ts-expect-error the Worker declares neither secret
  Client.fromEnv(withoutSecrets);
  // @ts-expect-error the Worker declares no token
  Client.fromEnv(withoutToken);
  // @ts-expect-error a variable is a string
  Client.fromEnv(numberUrl);
  // @ts-expect-error the environment is an object
  Client.fromEnv('https://eu1-example.upstash.io');
  // @ts-expect-error the environment is required
  Client.fromEnv();
  // @ts-expect-error options are checked: `timeout` is not `timeoutMs`
  Client.fromEnv(env, { timeout: 500 });
}

export async function batches(client: Client, sessions: SessionStore, limiter: RateLimiter, cache: Cache): Promise<void> {
  // Chained: one element type per call, in order.
  const chained = client.batch().loadSession(sessions, 'token').limit(limiter, 'ip:1').lookup(cache, 'item:1');
  same<typeof chained, Batch<[LoadedSession | null, Decision, CacheRead]>>(true);
  const [loaded, decision, read] = await chained.send();
  same<typeof loaded, LoadedSession | null>(true);
  same<typeof decision, Decision>(true);
  same<typeof read, CacheRead>(true);
  const user: string | undefined = loaded?.session.user;
  const allowed: boolean = decision.allowed;
  const lookup = await read.resolve(async () => ({ id: 1 }));
  const id: number | undefined = lookup.value?.id;
  void [user, allowed, id];

  // The order of the calls is the order of the tuple.
  const [first, second] = await client.batch().limit(limiter, 'a').loadSession(sessions, null).send();
  same<[typeof first, typeof second], [Decision, LoadedSession | null]>(true);
  // @ts-expect-error a two-call batch has no third result
  const [, , third] = await client.batch().limit(limiter, 'a').limit(limiter, 'b').send();
  void third;
  // @ts-expect-error a decision is not a session
  const wrong: LoadedSession | null = (await client.batch().limit(limiter, 'a').send())[0];
  void wrong;

  // Filled in separate statements, the type cannot follow: `send()` resolves to the union array.
  const statements = client.batch();
  statements.loadSession(sessions, 'token');
  statements.limit(limiter, 'ip:1');
  const results = await statements.send();
  same<typeof results, BatchResult[]>(true);
  same<Awaited<ReturnType<Batch<[]>['send']>>, BatchResult[]>(true);

  // A chained batch is a `Batch` wherever one is expected.
  const plain: Batch = chained;
  void plain;
}

// A quota's period: milliseconds or a duration as `@upstash/ratelimit` writes it, exactly one of them.
export function periods(client: Client): void {
  void new RateLimiter(client, { limit: 10, periodMs: 10_000 });
  void new RateLimiter(client, { limit: 10, period: '10 s' });
  void new RateLimiter(client, { policies: [{ name: 'burst', limit: 5, period: '1m' }, { name: 'daily', limit: 1000, period: '1 d' }] });
  // @ts-expect-error a quota needs a period
  void new RateLimiter(client, { limit: 10 });
  // @ts-expect-error not both
  void new RateLimiter(client, { limit: 10, period: '10 s', periodMs: 10_000 });
  // @ts-expect-error a unit is needed
  void new RateLimiter(client, { limit: 10, period: '10' });
}

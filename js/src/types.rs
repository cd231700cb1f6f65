//! The TypeScript shapes of the options objects and results, added to the generated declarations.
//! They mirror `options/` (in) and `shapes.rs` (out); the Node tests check the runtime agrees, and
//! `tsc --strict` checks `js/tests/types/usage.ts` against them.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
import type { RedisError } from "../errors.js";

/** `new Client(options)`. */
export interface ClientOptions extends ClientTuning {
  /** The service's base URL, such as `https://eu1-example.upstash.io` or `http://127.0.0.1:8079`. */
  url: string;
  /** Its bearer token. */
  token: string;
}

/** How a client sends. */
export interface ClientTuning {
  /** Deadline of one call in ms, retries included: 1 to 60000, default 1000. */
  timeoutMs?: number;
  /** Retries of failed read-only commands: 0 to 2, default 2. */
  retries?: number;
  /** Also retry writes whose response was lost (they may be applied twice). Default false. */
  retryWrites?: boolean;
}

/**
 * The two variables `Client.fromEnv` reads, as `wrangler types` declares them in a Worker's `interface Env`
 * (next to any other bindings, which are not read).
 */
export interface RedisEnv {
  readonly UPSTASH_REDIS_REST_URL: string;
  readonly UPSTASH_REDIS_REST_TOKEN: string;
}

/** What `Client.stats()` counts. */
export interface ClientStats {
  /** HTTP requests sent, retries included. */
  roundTrips: number;
  /** Redis commands they carried. */
  commands: number;
  /** Requests that were retries. */
  retries: number;
}

/** A command argument. */
export type RedisArgument = string | number | boolean | bigint | Uint8Array;
/** A command's reply. */
export type RedisReply = string | number | bigint | null | Uint8Array | RedisReply[];

/** `gcra` (smooth, the default), `slidingWindow`, `fixedWindow`, `tokenBucket` or `slidingLog` (the exact sliding window, limit at most 10000). */
export type Algorithm = "gcra" | "slidingWindow" | "fixedWindow" | "tokenBucket" | "slidingLog";

/** A unit of a `Duration`. */
export type DurationUnit = "ms" | "s" | "m" | "h" | "d" | "w";

/** A period as `@upstash/ratelimit` writes it: a number and a unit, with or without one space (`"10 s"`, `"1m"`, `"500 ms"`). */
export type Duration = `${number}${DurationUnit}` | `${number} ${DurationUnit}`;

/** A quota: `limit` requests per period (`periodMs`, or `period` as a `Duration`), `burst` at once. */
export type Quota = {
  algorithm?: Algorithm;
  /** Requests per period. */
  limit: number;
  /** Requests allowed at once (GCRA and token bucket); default `limit`. */
  burst?: number;
} & (
  | {
      /** The period in ms. */
      periodMs: number;
      period?: never;
    }
  | {
      /** The period as a duration: `"10 s"`, `"1 m"`. */
      period: Duration;
      periodMs?: never;
    }
);

/** One named policy. */
export type PolicyOptions = Quota & {
  /** 1 to 64 of `a-z 0-9 _ -`; it appears in keys and in the `RateLimit` headers. */
  name: string;
};

/** Settings every limiter shares. */
export interface LimiterSettings {
  /** Key prefix, default `redge:rl`. */
  prefix?: string;
  /** What a check answers when Redis fails or is slow: `local` (this isolate's own limiter, the default), `open` (allow) or `closed` (refuse for 1 s). */
  failure?: "local" | "open" | "closed";
  /** How long a check waits for Redis before the failure policy answers, in ms (default 200). */
  timeoutMs?: number;
  /** Also emit `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`. */
  legacyHeaders?: boolean;
  /** Decide identifiers this isolate sees often from quota leased from Redis up front, with no round trip on the request's path (`fixedWindow` policies only): `true` for the defaults, or the settings to change. Never an over-admission; see the README for the bound on under-admission. Hand each decision's `pending` to `ctx.waitUntil`. */
  leases?: boolean | LeaseOptions;
}

/** `leases` settings; every one is optional. */
export interface LeaseOptions {
  /** Requests per period this isolate must see of an identifier before it leases (default 20). */
  hotAfter?: number;
  /** The largest lease, in percent of the limit, 1 to 100 (default 10). */
  maxPercent?: number;
  /** How long one lease should last at the observed rate, in ms: it sets the lease size (default 2000). */
  renewEveryMs?: number;
  /** How far ahead another caller's clock may be, in ms: a lease stops this much before its window ends (default 250). */
  maxSkewMs?: number;
  /** How long a renewal waits for Redis, in ms (default 1000). */
  timeoutMs?: number;
}

/** `new RateLimiter(client, options)`: one quota, or several named policies. */
export type RateLimiterOptions = (Quota & LimiterSettings) | ({ policies: PolicyOptions[] } & LimiterSettings);

/** `limiter.limit(identifier, options)`. */
export interface LimitOptions {
  /** What the request costs: a whole number, default 1; 0 only looks. */
  cost?: number;
  /** Which policies to check, by name; default all. */
  policies?: string[];
}

/** Which policies `peek` and `reset` concern; default all. */
export interface PolicySelection {
  policies?: string[];
}

/** Why a decision came out as it did. */
export type Reason = "withinLimit" | "limitExceeded" | "blockedLocally" | "failOpen" | "failClosed" | "localFallback" | "leased";

/** One policy's part of a decision. */
export interface PolicyDecision {
  policy: string;
  limit: number;
  periodMs: number;
  allowed: boolean;
  remaining: number;
  /** When this policy's budget is full again, Unix ms. */
  reset: number;
  /** Ms until this policy lets the request pass. */
  retryAfter: number;
}

/** A rate-limit decision. A denial is `allowed: false`, never an error. */
export interface Decision {
  /** Whether the request passes (and was charged by every policy). */
  allowed: boolean;
  /** The deciding policy's requests per period. */
  limit: number;
  /** Requests of cost 1 the deciding policy still allows. */
  remaining: number;
  /** When the deciding policy's budget is full again, Unix ms. */
  reset: number;
  /** Ms until this request would pass; 0 when allowed. */
  retryAfter: number;
  /** Why: Redis decided (`withinLimit`, `limitExceeded`), this isolate remembered a block (`blockedLocally`), units leased earlier paid for it (`leased`: `remaining` is then an estimate), or Redis failed and the failure policy answered. */
  reason: Reason;
  /** The deciding policy. */
  policy: string;
  /** Every policy checked, in order. */
  policies: PolicyDecision[];
  /** `RateLimit-Policy`, `RateLimit`, and `Retry-After` when refused: pass to `new Response(body, { headers })`. */
  headers: Record<string, string>;
  /** The background work this check left due (lease renewals), already running: pass to `ctx.waitUntil`. Resolves when done; never rejects. */
  pending: Promise<void>;
}

/** What one entry of a `Batch` resolves to: `loadSession` a `LoadedSession` or `null`, `limit` a `Decision`, `lookup` a `CacheRead`. */
export type BatchResult = LoadedSession | null | Decision | CacheRead;

/** `new SessionStore(client, options)`. */
export interface SessionStoreOptions {
  /** Idle timeout in ms (default 30 minutes); reads extend it, at most once per half window. */
  idleMs?: number;
  /** Absolute lifetime in ms (default 12 hours). */
  absoluteMs?: number;
  /** Key prefix, default `redge:session`. */
  prefix?: string;
  /** Cookie name without the `__Host-` prefix, default `redge_session`. */
  cookieName?: string;
  /** Plain-HTTP development: no `__Host-` prefix, no `Secure`. Never in production. */
  insecureDev?: boolean;
  /** The largest data, as JSON bytes (default 16384). */
  maxDataBytes?: number;
  /** Serve a session this store read from Redis less than this many ms ago again with no round trip: 0 (off, the default) to 60000. A sign-out, revocation or write through another isolate is seen here only within this time; through this store at once. */
  cacheMs?: number;
  /** The most sessions that cache holds (default 10000; the oldest read goes first). */
  cacheEntries?: number;
}

/** `store.signIn(user, options)`. */
export interface SignInOptions {
  /** The session's data: anything `JSON.stringify` accepts (default `{}`). */
  data?: unknown;
  /** The current session's token: it ends in the same step (rotation on sign-in). */
  replacing?: string | null;
}

/** `store.update(token, data, options)`. */
export interface UpdateOptions {
  /** Write only if the session's `version` is still this one. */
  expectedVersion?: number;
}

/** A session. */
export interface Session {
  /** The public id (never the secret). */
  id: string;
  user: string;
  /** Unix ms. */
  created: number;
  /** Unix ms of the last refresh or write. */
  lastSeen: number;
  /** Unix ms at which it ends without a refresh. */
  idleExpiresAt: number;
  /** Unix ms at which it ends whatever happens. */
  absoluteExpiresAt: number;
  /** Data version, for `expectedVersion`. */
  version: number;
  data: unknown;
  counters: Record<string, number>;
}

/** A new session. */
export interface IssuedSession {
  /** The token: it carries the secret, put it in the cookie only. */
  token: string;
  session: Session;
  /** The `Set-Cookie` header value. */
  setCookie: string;
}

/** A session read back. */
export interface LoadedSession {
  session: Session;
  /** Whether this read extended the session. */
  refreshed: boolean;
  /** When refreshed, the `Set-Cookie` value to send again; otherwise null. */
  setCookie: string | null;
}

/** What `update` did. */
export interface UpdateResult {
  status: "saved" | "conflict" | "unauthenticated";
  /** The session after the write (`saved`) or as it stands (`conflict`). */
  session: Session | null;
}

/** What `revoke` did. */
export interface RevokeResult {
  status: "ended" | "notFound" | "unauthenticated";
  ended: number;
}

/** One of the user's sessions. */
export interface SessionSummary {
  id: string;
  created: number;
  lastSeen: number;
  expiresAt: number;
  /** The session making the request. */
  current: boolean;
}

/** `new Cache(client, options)`. */
export interface CacheOptions {
  /** Prefix of every key, default `cache`. */
  namespace?: string;
  /** Most entries in this isolate's memory tier, default 1000. */
  memoryEntries?: number;
  /** Most payload bytes in the memory tier, default 8 MiB. */
  memoryBytes?: number;
  /** The colo tier: the Worker's own origin (`https://api.example.com`), under which fresh values are kept in the location's Cache API (`caches.default`) for policies with `coloTtlMs`. Off when absent. */
  colo?: string;
}

/** A cache key, optionally with tags for `invalidateTag`. */
export type CacheKey = string | { key: string; tags?: string[] };

/** How a group of keys is cached. Every field is optional. */
export interface CachePolicy {
  /** A label for metrics, default `default`. */
  group?: string;
  /** How long a value is fresh, ms (default 60000). */
  ttlMs?: number;
  /** How long after that it may still be served while one refresh runs, or while the origin fails, ms (default 0). */
  graceMs?: number;
  /** How long "not found" is remembered, ms (default 0: never). */
  negativeTtlMs?: number;
  /** Bigger values are returned but not written (default 1 MiB). */
  maxValueBytes?: number;
  /** Deadline of the cache's own round trips; past it the origin answers (default 150). */
  deadlineMs?: number;
  /** On a miss, take a Redis lease for this long so that one isolate anywhere calls the origin. */
  leaseMs?: number;
  /** How long a lookup that lost the lease polls for the value, ms (default 300). */
  leaseWaitMs?: number;
  /** Also keep fresh values in this isolate's memory for this long, ms (default 0: off). */
  memoryTtlMs?: number;
  /** Keep fresh values in the location's Cache API for this long, shared by every isolate there (needs the cache's `colo`; at most 300000; default 0: off). A hit there costs no round trip; a change made in Redis reaches colo readers within this time. */
  coloTtlMs?: number;
}

/** A lookup's answer. */
export interface Lookup<T = unknown> {
  /** The value, or null for "not found". */
  value: T | null;
  found: boolean;
  status: "hit" | "miss" | "stale" | "negative" | "bypass";
  /** Served from this isolate's memory, without a round trip. */
  fromMemory: boolean;
  /** Served from the location's Cache API (the colo tier), with no round trip. */
  fromColo: boolean;
  /** This lookup called the origin. */
  originCalled: boolean;
  /** The origin failed and a stale value was served. */
  originFailed: boolean;
  /** Too big to be written. */
  oversize: boolean;
  tookMs: number;
}

/** What `cache.get` found. */
export interface CacheEntry<T = unknown> {
  /** `stale`: past its TTL, inside the policy's grace; `absent`: a remembered "not found"; `notCached`: nothing usable. */
  status: "fresh" | "stale" | "absent" | "notCached";
  /** The value, or null for `absent` and `notCached`. */
  value: T | null;
}

/** What `cache.update` did. */
export interface CacheUpdate<T = unknown> {
  /** `written`: the function's value was stored; `kept`: it returned undefined; `notCached`: nothing to change, the function was not called. */
  status: "written" | "kept" | "notCached";
  /** The value now cached (written or kept), or null for `notCached`. */
  value: T | null;
}

/** One key group's counters. */
export interface CacheGroupMetrics {
  lookups: number;
  hits: number;
  memoryHits: number;
  misses: number;
  stale: number;
  negative: number;
  bypass: number;
  /** Lookups that joined another lookup's origin call. */
  coalesced: number;
  originCalls: number;
  originErrors: number;
  /** Redis failures. */
  cacheErrors: number;
}

/** `cache.metrics()`: this isolate's counters. */
export interface CacheMetrics {
  /** The circuit breaker in front of Redis. */
  breaker: "closed" | "open" | "halfOpen";
  originCalls: number;
  groups: Record<string, CacheGroupMetrics>;
}

"#;

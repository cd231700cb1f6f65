// Browsers, Deno and bundlers: the .wasm file next to this one is fetched and instantiated once, before
// the module's exports are available (top-level await).
import init, * as bindings from './web/redge.js';
import { register } from './errors.js';

await init({ module_or_path: new URL('./web/redge_bg.wasm', import.meta.url) });
register(bindings);

export { Batch, Cache, CacheRead, Client, RateLimiter, SessionStore } from './web/redge.js';
export { RedgeError, ConfigError, InvalidArgumentError, UnavailableError, HttpError, RedisError, OriginError } from './errors.js';

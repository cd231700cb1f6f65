// Cloudflare Workers (workerd, `wrangler dev` and `wrangler deploy`): wrangler bundles the .wasm file as a
// compiled WebAssembly.Module, which is instantiated synchronously when the Worker starts.
import wasm from './web/redge_bg.wasm';
import * as bindings from './web/redge.js';
import { register } from './errors.js';

bindings.initSync({ module: wasm });
register(bindings);

export { Batch, Cache, CacheRead, Client, RateLimiter, SessionStore } from './web/redge.js';
export { RedgeError, ConfigError, InvalidArgumentError, UnavailableError, HttpError, RedisError, OriginError } from './errors.js';

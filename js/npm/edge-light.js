// Vercel Edge (the `edge-light` condition): its bundler hands over a `.wasm` file imported with the `?module`
// suffix as a compiled WebAssembly.Module, and the runtime compiles no wasm from bytes, so the module is
// instantiated synchronously from that import, as on workerd.
import wasm from './web/redge_bg.wasm?module';
import * as bindings from './web/redge.js';
import { register } from './errors.js';

bindings.initSync({ module: wasm });
register(bindings);

export { Batch, Cache, CacheRead, Client, RateLimiter, SessionStore } from './web/redge.js';
export { RedgeError, ConfigError, InvalidArgumentError, UnavailableError, HttpError, RedisError, OriginError } from './errors.js';

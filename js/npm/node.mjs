// Node.js 20 and newer: the nodejs build, which reads and instantiates its .wasm file synchronously.
import { createRequire } from 'node:module';
import { register } from './errors.js';

const bindings = createRequire(import.meta.url)('./node/redge.js');
register(bindings);

export const { Batch, Cache, CacheRead, Client, RateLimiter, SessionStore } = bindings;
export { RedgeError, ConfigError, InvalidArgumentError, UnavailableError, HttpError, RedisError, OriginError } from './errors.js';

// The error classes every redge call rejects with. The wasm module builds them through the factory that
// each entry point registers (see `register`), so `instanceof` works with the classes exported here.

/** The base class: every error redge produces, with a stable `code` such as `REDGE_TIMEOUT`. */
export class RedgeError extends Error {
  constructor(message, properties = {}) {
    super(message);
    this.name = new.target.name;
    this.code = properties.code ?? 'REDGE_ERROR';
    this.retryable = properties.retryable ?? false;
    for (const [key, value] of Object.entries(properties)) {
      if (!(key in this) || key === 'code' || key === 'retryable') this[key] = value;
    }
  }
}

/** A missing or invalid setting (`REDGE_CONFIG`): an environment variable, a URL, a token. */
export class ConfigError extends RedgeError {}

/** A bad argument (`REDGE_INVALID_ARGUMENT`, `REDGE_TOO_LARGE`, `REDGE_INSUFFICIENT_CAPACITY`); nothing was sent. */
export class InvalidArgumentError extends RedgeError {}

/** Redis could not be reached, answered 5xx or did not answer in time (`REDGE_UNREACHABLE`, `REDGE_UNAVAILABLE`, `REDGE_TIMEOUT`). */
export class UnavailableError extends RedgeError {}

/** The HTTP Redis service refused the request (`REDGE_UNAUTHORIZED` for a bad token, `REDGE_HTTP`); `status` holds the HTTP status. */
export class HttpError extends RedgeError {}

/** Redis refused the command (`REDGE_REDIS`); the message is Redis's own text. */
export class RedisError extends RedgeError {}

/** The origin call a concurrent lookup of the same key made failed (`REDGE_ORIGIN`). */
export class OriginError extends RedgeError {}

const classes = { RedgeError, ConfigError, InvalidArgumentError, UnavailableError, HttpError, RedisError, OriginError };

/** Hands the wasm module the factory that builds these classes. */
export function register(bindings) {
  bindings.__redgeSetErrorFactory((name, message, properties) => new (classes[name] ?? RedgeError)(message, properties ?? {}));
}

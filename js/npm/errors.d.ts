/** The stable codes of redge's errors. */
export type RedgeErrorCode =
  | 'REDGE_CONFIG'
  | 'REDGE_INVALID_ARGUMENT'
  | 'REDGE_TOO_LARGE'
  | 'REDGE_INSUFFICIENT_CAPACITY'
  | 'REDGE_UNREACHABLE'
  | 'REDGE_UNAVAILABLE'
  | 'REDGE_TIMEOUT'
  | 'REDGE_UNAUTHORIZED'
  | 'REDGE_HTTP'
  | 'REDGE_REDIS'
  | 'REDGE_ORIGIN'
  | 'REDGE_PROTOCOL'
  | 'REDGE_REPLY_TYPE'
  | 'REDGE_CONFLICT'
  | 'REDGE_INTERNAL';

/** The base class: every error redge produces. */
export class RedgeError extends Error {
  /** A stable code such as `REDGE_TIMEOUT`, to branch on. */
  readonly code: RedgeErrorCode;
  /** Whether sending the same request again may succeed. */
  readonly retryable: boolean;
  /** The HTTP status, for `HttpError` and `REDGE_UNAVAILABLE`. */
  readonly status?: number;
  /** For `REDGE_INSUFFICIENT_CAPACITY`: the policy, the cost asked for, and the most it allows at once. */
  readonly policy?: string;
  readonly cost?: number;
  readonly capacity?: number;
}
/** A missing or invalid setting (`REDGE_CONFIG`). */
export class ConfigError extends RedgeError {}
/** A bad argument; nothing was sent (`REDGE_INVALID_ARGUMENT`, `REDGE_TOO_LARGE`, `REDGE_INSUFFICIENT_CAPACITY`). */
export class InvalidArgumentError extends RedgeError {}
/** Redis unreachable, 5xx or too slow (`REDGE_UNREACHABLE`, `REDGE_UNAVAILABLE`, `REDGE_TIMEOUT`). */
export class UnavailableError extends RedgeError {}
/** The HTTP Redis service refused the request (`REDGE_UNAUTHORIZED`, `REDGE_HTTP`). */
export class HttpError extends RedgeError {}
/** Redis refused the command (`REDGE_REDIS`); the message is Redis's text. */
export class RedisError extends RedgeError {}
/** The origin call a concurrent lookup made failed (`REDGE_ORIGIN`). */
export class OriginError extends RedgeError {}

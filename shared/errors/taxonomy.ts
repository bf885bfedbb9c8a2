/**
 * The one error taxonomy of the suite. Every module throws (or normalises into) a SentinelError, so a
 * handler decides retry-or-not from `kind` alone:
 * - `retryable`: throttling, 5xx, timeouts, connection resets. Throwing lets FC's async retry policy run.
 * - `poison`: bad input; retrying can never succeed. Handlers answer it without throwing, so FC does not retry.
 * - `permanent`: the cloud refused the call for a reason retrying will not change (403, not found, bad state).
 * - `config`: a missing or malformed setting; fatal at start-up.
 */
export type ErrorKind = 'retryable' | 'poison' | 'permanent' | 'config';

export interface SentinelErrorOptions {
  code: string;
  cause?: unknown;
  /** The HTTP status the remote service answered, when there was one. */
  statusCode?: number;
  /** Milliseconds the service asked us to wait before retrying (Retry-After, x-acs-retry-after). */
  retryAfterMs?: number;
  /** For poison and config errors: the path of the offending field, e.g. `data.userIdentity.type`. */
  path?: string;
  /** The service that answered, e.g. `kms`, `cs`, `fc`, `kubernetes`. */
  service?: string;
  requestId?: string;
}

export class SentinelError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly statusCode?: number;
  readonly retryAfterMs?: number;
  readonly path?: string;
  readonly service?: string;
  readonly requestId?: string;

  constructor(kind: ErrorKind, message: string, options: SentinelErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SentinelError';
    this.kind = kind;
    this.code = options.code;
    this.statusCode = options.statusCode;
    this.retryAfterMs = options.retryAfterMs;
    this.path = options.path;
    this.service = options.service;
    this.requestId = options.requestId;
  }

  get retryable(): boolean {
    return this.kind === 'retryable';
  }

  /** A JSON-safe summary for logs and responses: no stack, no cause, no request data. */
  toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      code: this.code,
      message: this.message,
      ...(this.path === undefined ? {} : { path: this.path }),
      ...(this.statusCode === undefined ? {} : { statusCode: this.statusCode }),
      ...(this.service === undefined ? {} : { service: this.service }),
      ...(this.requestId === undefined ? {} : { requestId: this.requestId }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
    };
  }
}

/** Bad input that can never succeed: names the path of what is wrong. */
export class PoisonError extends SentinelError {
  constructor(message: string, options: Partial<SentinelErrorOptions> = {}) {
    super('poison', message, { code: 'InvalidInput', ...options });
    this.name = 'PoisonError';
  }
}

export class ConfigError extends SentinelError {
  constructor(message: string, options: Partial<SentinelErrorOptions> = {}) {
    super('config', message, { code: 'InvalidConfiguration', ...options });
    this.name = 'ConfigError';
  }
}

export class RetryableError extends SentinelError {
  constructor(message: string, options: Partial<SentinelErrorOptions> = {}) {
    super('retryable', message, { code: 'Retryable', ...options });
    this.name = 'RetryableError';
  }
}

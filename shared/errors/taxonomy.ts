/**
 * The one error taxonomy of the suite. Our code throws SentinelErrors; what an SDK or Node throws becomes one in
 * `normalizeError` (normalize.ts). Every caller then decides from `kind` alone:
 * - `retryable` (RetryableError): throttling, 5xx, timeouts, connection resets, a malformed answer. A function
 *   throws it, so FC's async retry policy runs; the webhook answers 503; the CLI exits 1.
 * - `poison` (PoisonError): bad input that can never succeed. A function answers it without throwing, so FC
 *   does not retry it; the CLI exits 2 (its UsageError is one).
 * - `permanent` (`new SentinelError('permanent', …)`): the cloud refused for a reason retrying will not change
 *   (403, not found, a bad state). A function throws it all the same (FC's retry policy bounds the attempts);
 *   the webhook answers 502; the CLI exits 1.
 * - `config` (ConfigError): a missing or malformed setting, at start-up or when a setting kept in KMS Secrets
 *   Manager is read. Every invocation fails with it; the webhook answers 503 NotConfigured; the CLI exits 2.
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

import { loadConfig, type SentinelConfig } from '../config';
import { ConfigError, normalizeError, RetryableError, SentinelError } from '../errors';
import { createLogger, type Logger, type LogSink, redact, redactString } from '../log';

/** The Function Compute `context` a Node.js handler receives (docs/cloud-facts.md#fc-events). */
export interface FcContext {
  requestId: string;
  credentials?: { accessKeyId?: string; accessKeySecret?: string; securityToken?: string };
  function?: { name?: string; handler?: string; memory?: number; timeout?: number };
  region?: string;
  accountId?: string;
}

export interface Invocation {
  requestId: string;
  log: Logger;
  config: SentinelConfig;
  context: FcContext;
  /** Epoch ms at which FC stops the invocation (start + function timeout). */
  deadline: number;
  remainingMs(): number;
  /** The clock the deadline is measured on (injectable through HandlerDeps.now, for tests). */
  now(): number;
}

/** What a handler answers for poison input: FC sees a success, so it does not retry an event that can never work. */
export interface PoisonResult {
  ok: false;
  poison: true;
  error: { code: string; message: string; path?: string };
}

export interface HandlerDeps {
  env?: Record<string, string | undefined>;
  sink?: LogSink;
  now?: () => number;
}

const DEFAULT_TIMEOUT_S = 60;

/**
 * Wraps a use case as an FC handler: one logger per invocation carrying the request id; configuration read
 * once per instance (a bad setting fails every invocation with its clear message); every error classified:
 * - poison → logged and answered as a PoisonResult, no retry;
 * - retryable / permanent / config → logged and thrown with a redacted message, so FC's async retry policy
 *   and destinations see the failure.
 */
export function defineHandler<R>(
  name: string,
  body: (event: unknown, invocation: Invocation) => Promise<R>,
  deps: HandlerDeps = {},
): (event: unknown, context: FcContext) => Promise<R | PoisonResult> {
  let config: SentinelConfig | undefined;
  let configError: SentinelError | undefined;
  const now = deps.now ?? Date.now;

  return async (event, context) => {
    const started = now();
    const requestId = context?.requestId ?? 'local';
    if (!config && !configError) {
      try {
        config = loadConfig(deps.env ?? process.env);
      } catch (err) {
        configError = normalizeError(err);
      }
    }
    const log = createLogger({
      level: config?.logLevel ?? 'info',
      bindings: { function: name, requestId },
      ...(deps.sink ? { sink: deps.sink } : {}),
    });
    if (configError || !config) {
      const err = configError ?? new ConfigError('configuration unavailable');
      log.error('invalid configuration', { error: err.toJSON() });
      throw forFc(err, redactString(err.message));
    }
    const deadline = started + (context?.function?.timeout ?? DEFAULT_TIMEOUT_S) * 1000;
    const invocation: Invocation = {
      requestId,
      log,
      config,
      context,
      deadline,
      remainingMs: () => deadline - now(),
      now,
    };
    try {
      const result = safeAnswer(await body(event, invocation));
      log.debug('invocation finished', { durationMs: now() - started });
      return result;
    } catch (thrown) {
      const err = normalizeError(thrown);
      if (err.kind === 'poison') {
        log.warn('poison input refused', { error: err.toJSON(), durationMs: now() - started });
        return {
          ok: false,
          poison: true,
          error: {
            code: err.code,
            message: redactString(err.message),
            ...(err.path ? { path: err.path } : {}),
          },
        };
      }
      log.error('invocation failed', { error: err.toJSON(), durationMs: now() - started });
      throw forFc(err, redactString(`${err.kind}: ${err.message}`));
    }
  };
}

interface HttpAnswer {
  statusCode: number;
  body: string;
  isBase64Encoded?: boolean;
  headers?: Record<string, string>;
}

const isHttpAnswer = (r: unknown): r is HttpAnswer =>
  typeof r === 'object' &&
  r !== null &&
  typeof (r as HttpAnswer).statusCode === 'number' &&
  typeof (r as HttpAnswer).body === 'string';

/**
 * Every answer passes the redaction guard, as logs do: an answer quotes checks, steps and errors, and an SDK's
 * error quotes the string it signed, STS token included (an enable that failed at UpdateKMSEncryption). An HTTP
 * answer's JSON body is redacted as JSON (a Secret's `data` by its key), any other body as text; a base64 body
 * is bytes the suite made (it sends none today).
 */
function safeAnswer<R>(result: R): R {
  if (!isHttpAnswer(result)) return redact(result) as R;
  if (result.isBase64Encoded) return result;
  let body: string;
  try {
    body = JSON.stringify(redact(JSON.parse(result.body)));
  } catch {
    body = redactString(result.body);
  }
  return { ...result, body };
}

/**
 * What FC records of a failure (its name and message, in the async invocation's record and destinations): the
 * same kind and code, a redacted message, and no cause, which may hold request data or an SDK's raw answer.
 */
function forFc(err: SentinelError, message: string): SentinelError {
  if (err.kind === 'retryable') return new RetryableError(message, { code: err.code });
  if (err.kind === 'config') return new ConfigError(message, { code: err.code });
  return new SentinelError(err.kind, message, { code: err.code });
}

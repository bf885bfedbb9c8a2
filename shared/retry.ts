import { setTimeout as sleep } from 'node:timers/promises';
import { normalizeError, type SentinelError } from './errors';

/**
 * The suite's retry policies, in one module: the Kubernetes decision table the sweep follows (below,
 * `decide`), and the plain bounded retry (`withRetries`) that ActionTrail lookups and notification deliveries
 * use, each with its named backoff. No SDK retries on its own (`autoretry: false`); FC retries invocations.
 */
export interface Backoff {
  maxAttempts: number;
  /** The wait after the `attempt`-th failure (0-based). */
  delayMs: (attempt: number) => number;
}

/** ActionTrail LookupEvents allows 2 calls a second per account: a throttled call waits 1 s, 2 s, … */
export const ACTIONTRAIL_BACKOFF: Backoff = { maxAttempts: 5, delayMs: (attempt) => 1_000 * (attempt + 1) };

/** Notification deliveries: 429 and 5xx and network failures, exponentially. */
export const notifyBackoff = (maxAttempts = 4, baseDelayMs = 500): Backoff => ({
  maxAttempts,
  delayMs: (attempt) => baseDelayMs * 2 ** attempt,
});

/**
 * Calls `call` until it succeeds, `retryable` says no, or the attempts run out; the last error is thrown.
 * `wait` is injectable for tests.
 */
export async function withRetries<T>(
  call: (attempt: number) => Promise<T>,
  backoff: Backoff,
  retryable: (err: unknown) => boolean,
  wait: (ms: number) => Promise<unknown> = sleep,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(attempt);
    } catch (err) {
      if (attempt + 1 >= backoff.maxAttempts || !retryable(err)) throw err;
      await wait(backoff.delayMs(attempt));
    }
  }
}

/**
 * What the sweep does about a failed Kubernetes call: the whole retry policy in one place, the way
 * kube-storage-version-migrator keeps it in `errors.go`.
 *
 * - 429: wait for Retry-After (or back off), lower the concurrency, retry.
 * - 5xx, timeouts, connection resets: bounded retries with jittered exponential backoff.
 * - 409 Conflict: refetch the object and retry.
 * - 404: the Secret went away: count it as gone.
 * - 403, 422, an admission webhook's denial (400 BadRequest with a webhook message), other 4xx: skip it,
 *   record the reason, go on.
 * - 401: the credentials stopped working (an expired temporary kubeconfig): fatal for the whole sweep.
 */
export type Decision =
  | { action: 'retry'; delayMs: number; throttled: boolean }
  | { action: 'refetch' }
  | { action: 'gone' }
  | { action: 'skip'; reason: string; code: string }
  | { action: 'fatal'; error: SentinelError };

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Upper bound on a server's Retry-After we honour; longer asks become this. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 8,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

/** Full jitter: uniform in [0, min(max, base·2^attempt)] (AWS Architecture Blog, "Exponential Backoff and Jitter"). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/**
 * Classifies `err` for the `attempt`-th try (0-based). `random` is injectable so tests are deterministic.
 */
export function decide(
  err: unknown,
  attempt: number,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  random = Math.random,
): Decision {
  const e = normalizeError(err, { service: 'kubernetes' });
  const status = e.statusCode;
  const exhausted = attempt + 1 >= policy.maxAttempts;
  if (status === 404) return { action: 'gone' };
  if (status === 409)
    return exhausted
      ? { action: 'skip', reason: 'conflict persisted after retries', code: 'Conflict' }
      : { action: 'refetch' };
  if (status === 401) return { action: 'fatal', error: e };
  if (status === 429) {
    if (exhausted) return { action: 'skip', reason: 'throttled on every attempt', code: e.code };
    const delayMs =
      e.retryAfterMs !== undefined
        ? Math.min(e.retryAfterMs, policy.maxRetryAfterMs)
        : backoffMs(policy, attempt, random);
    return { action: 'retry', delayMs, throttled: true };
  }
  if (e.kind === 'retryable') {
    if (exhausted)
      return {
        action: 'skip',
        reason: `${e.code} persisted after ${policy.maxAttempts} attempts`,
        code: e.code,
      };
    return { action: 'retry', delayMs: backoffMs(policy, attempt, random), throttled: false };
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return { action: 'skip', reason: skipReason(e), code: e.code };
  }
  return { action: 'fatal', error: e };
}

function skipReason(e: SentinelError): string {
  // An admission webhook's denial reads `admission webhook "x" denied the request: ...`; keep it whole.
  const message = e.message.replace(/^kubernetes: /, '');
  return message.length > 300 ? `${message.slice(0, 297)}...` : message;
}

import { setTimeout as sleep } from 'node:timers/promises';
import { normalizeError, type SentinelError } from './errors';

/**
 * The suite's retry policies and its one retry loop, in one module: the Kubernetes decision table the sweep,
 * the estimate and the census follow (below, `decide`), the plain bounded retry (`withRetries`) that
 * ActionTrail lookups, notification deliveries and etcd reads use, each with its named backoff, and the loop
 * all of them run in (`retrying`). No SDK retries on its own (`autoretry: false`); FC retries invocations.
 */
export interface Backoff {
  maxAttempts: number;
  /** The wait after the `attempt`-th failure (0-based). */
  delayMs: (attempt: number) => number;
}

/** ActionTrail LookupEvents allows 2 calls a second per account: a throttled call waits 1 s, 2 s, … */
export const ACTIONTRAIL_BACKOFF: Backoff = { maxAttempts: 5, delayMs: (attempt) => 1_000 * (attempt + 1) };

/** etcd range reads (the sandbox's and a self-managed control plane's evidence): a busy etcd, briefly. */
export const ETCD_BACKOFF: Backoff = { maxAttempts: 4, delayMs: (attempt) => 250 * 2 ** attempt };

/** Notification deliveries: 429 and 5xx and network failures, exponentially. */
export const notifyBackoff = (maxAttempts = 4, baseDelayMs = 500): Backoff => ({
  maxAttempts,
  delayMs: (attempt) => baseDelayMs * 2 ** attempt,
});

/** What a failed try leads to: another try with `arg` after `retryInMs`, or the end with `value`. */
export type Next<A, T> = { retryInMs: number; arg: A } | { value: T };

/**
 * One call as the retry loop runs it. Each try gets `arg`, what a failure may change for the next one (a
 * cursor moved by a 410, a Secret read again after a 409). `failed` decides after each failure, and throws to
 * give up; `succeeded` turns a try's result into the answer outside the try, so its own errors are not
 * retried. Built once per page (or per listing), not per Secret: the sweep's hot path allocates nothing for it.
 */
export interface Retried<A, R, T> {
  attempt(arg: A, attempt: number): Promise<R>;
  succeeded(arg: A, result: R): T;
  failed(arg: A, err: unknown, attempt: number): Next<A, T>;
}

export interface RetryLimits {
  /** Epoch ms: a wait that would end past it is not waited; the failure is thrown (as `stopped` makes it). */
  deadline?: number;
  /** Aborting ends a wait at once; the failure is thrown (as `stopped` makes it). */
  signal?: AbortSignal;
  /** The error thrown when the deadline or the signal ends the retrying; the failure itself by default. */
  stopped?: (err: unknown, why: 'deadline' | 'aborted') => unknown;
  clock?: () => number;
  /** Injectable for tests. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
}

/** One object for every call without limits (a sweep's writes): nothing is allocated per call for it. */
const NO_LIMITS: RetryLimits = Object.freeze({});

/**
 * The suite's one retry loop: try, and after a failure do what `failed` says (wait and try again, end with a
 * value, or throw), within the deadline and until the signal aborts.
 */
export async function retrying<A, R, T>(
  call: Retried<A, R, T>,
  arg: A,
  limits: RetryLimits = NO_LIMITS,
): Promise<T> {
  let next = arg;
  for (let attempt = 0; ; attempt++) {
    let result: R;
    try {
      result = await call.attempt(next, attempt);
    } catch (err) {
      const then = call.failed(next, err, attempt);
      if ('value' in then) return then.value;
      next = then.arg;
      await pause(then.retryInMs, err, limits);
      continue;
    }
    return call.succeeded(next, result);
  }
}

async function pause(ms: number, err: unknown, limits: RetryLimits): Promise<void> {
  const stop = (why: 'deadline' | 'aborted') => (limits.stopped ? limits.stopped(err, why) : err);
  if (limits.signal?.aborted) throw stop('aborted');
  if (limits.deadline !== undefined && (limits.clock ?? Date.now)() + ms > limits.deadline)
    throw stop('deadline');
  if (ms <= 0) return;
  const wait =
    limits.wait ?? ((t: number, signal?: AbortSignal) => sleep(t, undefined, signal ? { signal } : {}));
  try {
    await wait(ms, limits.signal);
  } catch (abort) {
    if (limits.signal?.aborted) throw stop('aborted');
    throw abort;
  }
}

/**
 * Calls `call` until it succeeds, `retryable` says no, or the attempts run out; the last error is thrown.
 * `wait` is injectable for tests.
 */
export function withRetries<T>(
  call: (attempt: number) => Promise<T>,
  backoff: Backoff,
  retryable: (err: unknown) => boolean,
  wait: (ms: number) => Promise<unknown> = sleep,
): Promise<T> {
  return retrying<undefined, T, T>(
    {
      attempt: (_, attempt) => call(attempt),
      succeeded: (_, result) => result,
      failed: (_, err, attempt) => {
        if (attempt + 1 >= backoff.maxAttempts || !retryable(err)) throw err;
        return { retryInMs: backoff.delayMs(attempt), arg: undefined };
      },
    },
    undefined,
    { wait },
  );
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

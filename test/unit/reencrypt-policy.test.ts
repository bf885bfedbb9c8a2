import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  annotationPatch,
  FORCED,
  isCurrent,
  KEY_VERSION_ANNOTATION,
  ROTATION_TIME_ANNOTATION,
  SEALED_UNDER_ANNOTATION,
  stalePatch,
} from '../../shared/reencrypt/annotations';
import { AdaptiveLimiter } from '../../shared/reencrypt/throttle';
import {
  ACTIONTRAIL_BACKOFF,
  backoffMs,
  DEFAULT_RETRY_POLICY,
  decide,
  notifyBackoff,
  retrying,
  withRetries,
} from '../../shared/retry';

const k8s = (code: number, reason: string, message = `${reason}!`, headers: Record<string, string> = {}) =>
  new ApiException(
    code,
    `HTTP-Code: ${code}\nMessage: ${message}`,
    JSON.stringify({ kind: 'Status', code, reason, message }),
    headers,
  );

describe('the retry policy', () => {
  const half = () => 0.5;
  it.each([
    [
      '429 with Retry-After',
      k8s(429, 'TooManyRequests', 'slow', { 'retry-after': '3' }),
      { action: 'retry', delayMs: 3000, throttled: true },
    ],
    [
      '429 without Retry-After backs off',
      k8s(429, 'TooManyRequests'),
      { action: 'retry', delayMs: 100, throttled: true },
    ],
    ['500', k8s(500, 'InternalError'), { action: 'retry', delayMs: 100, throttled: false }],
    ['503', k8s(503, 'ServiceUnavailable'), { action: 'retry', delayMs: 100, throttled: false }],
    [
      'a reset connection',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      { action: 'retry', delayMs: 100, throttled: false },
    ],
    ['409 refetches', k8s(409, 'Conflict'), { action: 'refetch' }],
    ['404 is gone', k8s(404, 'NotFound'), { action: 'gone' }],
  ] as const)('%s', (_name, err, expected) => {
    expect(decide(err, 0, DEFAULT_RETRY_POLICY, half)).toEqual(expected);
  });

  it('skips 403, 422 and admission denials with their reason', () => {
    expect(decide(k8s(403, 'Forbidden', 'secrets "x" is forbidden'), 0)).toMatchObject({
      action: 'skip',
      code: 'Forbidden',
      reason: expect.stringContaining('forbidden'),
    });
    expect(
      decide(k8s(422, 'Invalid', 'Secret "x" is invalid: metadata.annotations: Too long'), 0),
    ).toMatchObject({ action: 'skip', code: 'Invalid' });
    const denial = decide(
      k8s(400, 'BadRequest', 'admission webhook "policy.example.com" denied the request: frozen'),
      0,
    );
    expect(denial).toMatchObject({
      action: 'skip',
      reason: expect.stringContaining('admission webhook "policy.example.com" denied the request: frozen'),
    });
  });

  it('stops retrying after the last attempt and says why', () => {
    const last = DEFAULT_RETRY_POLICY.maxAttempts - 1;
    expect(decide(k8s(503, 'ServiceUnavailable'), last)).toMatchObject({
      action: 'skip',
      reason: expect.stringContaining('persisted after 8 attempts'),
    });
    expect(decide(k8s(409, 'Conflict'), last)).toMatchObject({ action: 'skip', code: 'Conflict' });
    expect(decide(k8s(429, 'TooManyRequests'), last)).toMatchObject({ action: 'skip' });
  });

  it('treats 401 as fatal for the sweep', () => {
    expect(decide(k8s(401, 'Unauthorized'), 0)).toMatchObject({ action: 'fatal' });
  });

  it('caps a huge Retry-After and grows the backoff exponentially with full jitter', () => {
    expect(decide(k8s(429, 'TooManyRequests', 'x', { 'retry-after': '3600' }), 0)).toMatchObject({
      delayMs: 60_000,
    });
    expect([0, 1, 2, 3, 10].map((a) => backoffMs(DEFAULT_RETRY_POLICY, a, () => 1))).toEqual([
      200, 400, 800, 1600, 10_000,
    ]);
    expect(backoffMs(DEFAULT_RETRY_POLICY, 3, () => 0)).toBe(0);
  });
});

describe('the adaptive limiter', () => {
  it('halves on throttling, never below one, and climbs back after successes', () => {
    const limiter = new AdaptiveLimiter(16, 3, () => 0);
    limiter.onThrottle(0);
    expect(limiter.concurrency).toBe(8);
    for (let i = 0; i < 5; i++) limiter.onThrottle(0);
    expect(limiter.concurrency).toBe(1);
    for (let i = 0; i < 9; i++) limiter.onSuccess();
    expect(limiter.concurrency).toBe(4);
    for (let i = 0; i < 300; i++) limiter.onSuccess();
    expect(limiter.concurrency).toBe(16);
    expect(limiter.throttleEvents).toBe(6);
  });

  it('keeps at most `concurrency` tasks running', async () => {
    const limiter = new AdaptiveLimiter(3);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        limiter.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 2));
          running--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });

  it('pauses new work for the Retry-After a server asked for', async () => {
    let now = 1_000;
    const slept: number[] = [];
    const limiter = new AdaptiveLimiter(
      4,
      20,
      () => now,
      async (ms) => {
        slept.push(ms);
      },
    );
    limiter.onThrottle(50);
    now += 10;
    await Promise.all([1, 2].map(() => limiter.run(async () => undefined)));
    expect(slept, 'each task started during the pause waits out what is left of it').toEqual([40, 40]);
    now += 40;
    await limiter.run(async () => undefined);
    expect(slept, 'no wait once the pause is over').toHaveLength(2);
  });
});

describe('the patches', () => {
  it('annotate carries metadata.annotations only', () => {
    const patch = annotationPatch('v2', new Date('2026-11-29T08:00:00.123Z'));
    expect(patch).toEqual({
      metadata: {
        annotations: {
          [ROTATION_TIME_ANNOTATION]: '2026-11-29T08:00:00Z',
          [KEY_VERSION_ANNOTATION]: 'v2',
          // No proof: removed, so an older rewrite's proof never vouches for this one.
          [SEALED_UNDER_ANNOTATION]: null,
        },
      },
    });
    expect(annotationPatch('v2', new Date(), 'a1b2c3').metadata.annotations[SEALED_UNDER_ANNOTATION]).toBe(
      'a1b2c3',
    );
    expect(JSON.stringify(patch)).not.toMatch(/"(data|stringData|type|immutable)"/);
    expect(stalePatch('123')).toEqual({ metadata: { resourceVersion: '123' } });
    expect(isCurrent({ [KEY_VERSION_ANNOTATION]: 'v2' }, 'v2')).toBe(true);
    expect(isCurrent({ [KEY_VERSION_ANNOTATION]: 'v1' }, 'v2')).toBe(false);
    expect(isCurrent(undefined, 'v2')).toBe(false);
    // Where the API servers can prove it, only a mark written under proof counts.
    expect(isCurrent({ [KEY_VERSION_ANNOTATION]: 'v2' }, 'v2', true)).toBe(false);
    expect(isCurrent({ [KEY_VERSION_ANNOTATION]: 'v2', [SEALED_UNDER_ANNOTATION]: FORCED }, 'v2', true)).toBe(
      false,
    );
    expect(
      isCurrent({ [KEY_VERSION_ANNOTATION]: 'v2', [SEALED_UNDER_ANNOTATION]: 'a1b2c3' }, 'v2', true),
    ).toBe(true);
  });
});

describe('the plain bounded retry (ActionTrail, notifications)', () => {
  it('retries only what is retryable, waits as the backoff says, and throws the last error', async () => {
    const waits: number[] = [];
    const wait = async (ms: number) => {
      waits.push(ms);
    };
    let calls = 0;
    const flaky = () => {
      calls++;
      return calls < 3 ? Promise.reject(new Error(`busy ${calls}`)) : Promise.resolve('ok');
    };
    await expect(withRetries(flaky, ACTIONTRAIL_BACKOFF, () => true, wait)).resolves.toBe('ok');
    expect(waits).toEqual([1_000, 2_000]);
    calls = 0;
    await expect(withRetries(flaky, notifyBackoff(2, 10), () => true, wait)).rejects.toThrow('busy 2');
    calls = 0;
    await expect(withRetries(flaky, notifyBackoff(5, 10), () => false, wait)).rejects.toThrow('busy 1');
    expect(calls).toBe(1);
  });
});

describe('the one retry loop', () => {
  const flaky = (failures: number) => {
    let calls = 0;
    return {
      attempt: async (arg: string, n: number) => {
        calls++;
        if (n < failures) throw new Error(`busy ${arg}`);
        return `${arg}:${n}`;
      },
      succeeded: (_arg: string, result: string) => result.toUpperCase(),
      calls: () => calls,
    };
  };

  it('tries again with what `failed` gives, ends with its value, or throws what it throws', async () => {
    const f = flaky(2);
    const waits: number[] = [];
    const wait = async (ms: number) => void waits.push(ms);
    const answer = await retrying(
      { ...f, failed: (arg, _err, n) => ({ retryInMs: 10 * (n + 1), arg: `${arg}+` }) },
      'a',
      { wait },
    );
    expect(answer).toBe('A++:2');
    expect(waits).toEqual([10, 20]);
    await expect(retrying({ ...flaky(1), failed: () => ({ value: 'given up' }) }, 'b')).resolves.toBe(
      'given up',
    );
    await expect(
      retrying(
        {
          ...flaky(1),
          failed: (_arg, err) => {
            throw err;
          },
        },
        'c',
      ),
    ).rejects.toThrow('busy c');
  });

  it('waits past no deadline and ends a wait on abort, throwing what `stopped` makes of the failure', async () => {
    const stopped = (err: unknown, why: string) => new Error(`${why}: ${(err as Error).message}`);
    const retryLater = { ...flaky(5), failed: (arg: string) => ({ retryInMs: 60_000, arg }) };
    await expect(retrying(retryLater, 'd', { deadline: Date.now() + 1_000, stopped })).rejects.toThrow(
      'deadline: busy d',
    );
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 20);
    const started = Date.now();
    await expect(retrying(retryLater, 'e', { signal: abort.signal, stopped })).rejects.toThrow(
      'aborted: busy e',
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';

/**
 * Bounded writes in flight, adapting to the API server: halves on 429 (never below 1), then climbs back by one
 * after every `recoverAfter` consecutive successes, up to the configured maximum (AIMD, as TCP does). A 429's
 * Retry-After also pauses new work for everyone, not just the request that got it.
 */
export class AdaptiveLimiter {
  private readonly limit: LimitFunction;
  private successes = 0;
  private pausedUntil = 0;
  throttleEvents = 0;

  constructor(
    readonly max: number,
    private readonly recoverAfter = 20,
    private readonly now: () => number = Date.now,
    private readonly wait: (ms: number) => Promise<unknown> = sleep,
  ) {
    this.limit = pLimit(max);
  }

  get concurrency(): number {
    return this.limit.concurrency;
  }

  get active(): number {
    return this.limit.activeCount;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    return this.limit(async () => {
      const pause = this.pausedUntil - this.now();
      if (pause > 0) await this.wait(pause);
      return task();
    });
  }

  onSuccess(): void {
    this.successes++;
    if (this.successes >= this.recoverAfter && this.limit.concurrency < this.max) {
      this.limit.concurrency = this.limit.concurrency + 1;
      this.successes = 0;
    }
  }

  onThrottle(retryAfterMs: number): void {
    this.throttleEvents++;
    this.successes = 0;
    this.limit.concurrency = Math.max(1, Math.floor(this.limit.concurrency / 2));
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + retryAfterMs);
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';

/**
 * Polite mode: the sweep's own request latency is the signal that the API server is getting busy for everyone.
 * A sweep at the ceiling queues every other client behind it (BENCHMARKS.md, "Neighbours": a probe's p99 rose
 * ~14× during a default sweep), and 429s come only once APF's queues are full, far too late for the others.
 */
export interface PoliteOptions {
  /** Back off once a window's p90 latency exceeds this many times the baseline (the best window seen). */
  latencyFactor: number;
  /** Completed requests per judgement. */
  window: number;
  /** Writes in flight at most, however fast the server answers (the ceiling's half is reached well below). */
  maxConcurrency: number;
  /** The clock the latency is read from (sub-millisecond by default; injectable for tests). */
  clock?: () => number;
}

/** Chosen from `npm run bench -- --neighbours` (BENCHMARKS.md, "Neighbours"). */
export const DEFAULT_POLITE: PoliteOptions = { latencyFactor: 1.5, window: 20, maxConcurrency: 5 };

/**
 * Bounded writes in flight, adapting to the API server: halves on 429 (never below 1), then climbs back by one
 * after every `recoverAfter` consecutive successes, up to the configured maximum (AIMD, as TCP does). A 429's
 * Retry-After also pauses new work for everyone, not just the request that got it.
 *
 * Polite (`polite` given): it starts with one write in flight and judges every `window` completed writes: a
 * window whose p90 latency stays under `latencyFactor` × the baseline adds one; one above it takes a third
 * away (never below one). The baseline is the lowest window p90 seen, so it is measured at the lowest load
 * this sweep put on the server, and falls if the cluster gets quieter. The p90, not the median: the other
 * clients feel the queue's tail first. Like TCP Vegas, it backs off when queues start to build, not when they
 * overflow.
 */
export class AdaptiveLimiter {
  private readonly limit: LimitFunction;
  private successes = 0;
  private pausedUntil = 0;
  private readonly samples: number[] = [];
  throttleEvents = 0;
  /** Polite: the lowest window median seen (ms), and how many times latency made it back off. */
  baselineMs?: number;
  latencyBackoffs = 0;

  constructor(
    readonly max: number,
    private readonly recoverAfter = 20,
    private readonly now: () => number = Date.now,
    private readonly wait: (ms: number) => Promise<unknown> = sleep,
    readonly polite?: PoliteOptions,
  ) {
    this.limit = pLimit(polite ? 1 : max);
  }

  /** The most writes in flight this limiter allows: polite mode has a lower bound of its own. */
  get ceiling(): number {
    return this.polite ? Math.min(this.max, this.polite.maxConcurrency) : this.max;
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
      if (!this.polite) return task();
      const clock = this.polite.clock ?? performance.now.bind(performance);
      const started = clock();
      const result = await task();
      this.observe(clock() - started);
      return result;
    });
  }

  onSuccess(): void {
    if (this.polite) return;
    this.successes++;
    if (this.successes >= this.recoverAfter && this.limit.concurrency < this.max) {
      this.limit.concurrency = this.limit.concurrency + 1;
      this.successes = 0;
    }
  }

  onThrottle(retryAfterMs: number): void {
    this.throttleEvents++;
    this.successes = 0;
    this.samples.length = 0;
    this.limit.concurrency = Math.max(1, Math.floor(this.limit.concurrency / 2));
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + retryAfterMs);
  }

  /** Polite: one write's latency (retries and their waits included: a 429 counts as slow). */
  private observe(ms: number): void {
    const polite = this.polite;
    if (!polite) return;
    this.samples.push(ms);
    if (this.samples.length < polite.window) return;
    const tail = p90Of(this.samples);
    this.samples.length = 0;
    if (this.baselineMs === undefined || tail < this.baselineMs) this.baselineMs = tail;
    const c = this.limit.concurrency;
    // A floor of 1 ms: on loopback a quiet server answers in a fraction of one, and twice nothing is nothing.
    if (tail > polite.latencyFactor * Math.max(1, this.baselineMs)) {
      this.latencyBackoffs++;
      this.limit.concurrency = Math.max(1, Math.floor((c * 2) / 3));
    } else if (c < this.ceiling) this.limit.concurrency = c + 1;
  }
}

function p90Of(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length * 0.9) - 1] ?? 0;
}

import type { SweepCounters } from './checkpoint';
import type { SecretRef } from './secrets-api';

export interface Failure {
  namespace: string;
  name: string;
  code: string;
  reason: string;
}

const MAX_LISTED_FAILURES = 1000;

/** Where a visited Secret ended. */
export type Outcome = Exclude<keyof SweepCounters, 'total'>;

export const zeroCounters = (): SweepCounters => ({
  total: 0,
  rewritten: 0,
  alreadyCurrent: 0,
  gone: 0,
  failed: 0,
});

/**
 * What a sweep counts, in one place: every Secret visited ends in exactly one of rewritten, already current,
 * gone or failed (so `total` is their sum once the Secrets in flight finish), plus the work around it
 * (pages, retries; the lister counts its relists). Counters carry over from a checkpoint, so a job's report
 * covers all its invocations. Failures beyond the first 1,000 are counted, not listed.
 */
export class Tally {
  readonly counters: SweepCounters;
  readonly failures: Failure[] = [];
  failuresNotListed = 0;
  pages = 0;
  retries = 0;
  /** Dry runs: Secrets that would be written. */
  wouldRewrite = 0;
  /** How many Secrets the sweep expects in all, when the API server said (see `expectFrom`). */
  expected: number | undefined;

  constructor(from?: SweepCounters, expected?: number) {
    this.counters = { ...(from ?? zeroCounters()) };
    this.expected = expected;
  }

  /**
   * A sweep's very first page of the whole cluster carries the server's estimate of what follows
   * (`remainingItemCount`): the expected total, for a percentage while sweeping. Never set from a later page.
   */
  expectFrom(page: { items: unknown[]; remainingItemCount?: number }): void {
    if (this.expected === undefined && this.counters.total === 0 && page.remainingItemCount !== undefined)
      this.expected = page.items.length + page.remainingItemCount;
  }

  visited(): void {
    this.counters.total++;
  }
  // Each outcome returns its name, so the caller can count a page's share too (a checkpoint saved while the
  // next page is under way holds the counters of the pages before it only).
  rewritten(): Outcome {
    this.counters.rewritten++;
    return 'rewritten';
  }
  alreadyCurrent(): Outcome {
    this.counters.alreadyCurrent++;
    return 'alreadyCurrent';
  }
  gone(): Outcome {
    this.counters.gone++;
    return 'gone';
  }
  failed(secret: Pick<SecretRef, 'namespace' | 'name'>, code: string, reason: string): Outcome {
    this.counters.failed++;
    if (this.failures.length < MAX_LISTED_FAILURES)
      this.failures.push({ namespace: secret.namespace, name: secret.name, code, reason });
    else this.failuresNotListed++;
    return 'failed';
  }

  /** The counters now without `part` (what one page in progress added), as a copy. */
  without(part: SweepCounters): SweepCounters {
    const c = this.counters;
    return {
      total: c.total - part.total,
      rewritten: c.rewritten - part.rewritten,
      alreadyCurrent: c.alreadyCurrent - part.alreadyCurrent,
      gone: c.gone - part.gone,
      failed: c.failed - part.failed,
    };
  }

  /** The counters now, as a copy (for progress and checkpoints). */
  snapshot(): SweepCounters {
    return { ...this.counters };
  }
}

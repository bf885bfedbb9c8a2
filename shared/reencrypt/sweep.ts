import { setTimeout as sleep } from 'node:timers/promises';
import { SentinelError } from '../errors';
import type { SweepCounters } from '../events/job';
import { annotationPatch, isCurrent, stalePatch } from './annotations';
import { DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE } from './defaults';
import { DEFAULT_RETRY_POLICY, type Decision, decide, type RetryPolicy } from './retry';
import { expiredContinueToken, type SecretRef, type SecretStore } from './secrets-api';
import { AdaptiveLimiter } from './throttle';

/**
 * The re-encryption sweep: every Secret of a cluster (or a selection) is written again, so the API server
 * stores it under the key version it encrypts with now. It reads like the algorithm:
 *
 *   list a page (metadata only, `limit`) → rewrite its Secrets with bounded concurrency → remember the page →
 *   next page, until the list ends, the deadline comes, or the caller stops it.
 *
 * Retry decisions come from `retry.ts`, concurrency from `throttle.ts`, the Kubernetes calls from
 * `secrets-api.ts`. Pages are visited in key order (namespace/name), which is what makes checkpoints exact:
 * a checkpoint is "the page's continue token + the last Secret started", and a resumed sweep skips nothing
 * and repeats nothing.
 */
export type Strategy = 'annotate' | 'stale-only';

export interface Selection {
  namespaces?: string[];
  excludeNamespaces?: string[];
  labelSelector?: string;
}

export interface SweepCheckpoint {
  targetKeyVersionId: string;
  strategy: Strategy;
  /** With named namespaces: the index of the namespace in progress (sorted order). */
  namespaceIndex: number;
  /** The continue token that fetched the page in progress; absent for a first page. */
  continueToken?: string;
  /** `namespace/name` of the last Secret started in that page (or of the last page done, after a relist). */
  resumeAfter?: string;
  /**
   * Set on the checkpoints saved after each page: the sweep may have gone on writing before it died. A
   * continue token lists from the snapshot the sweep started with, so on resume the first page's Secrets are
   * read again (metadata) before writing, and none is written twice.
   */
  recheck?: boolean;
  counters: SweepCounters;
}

export interface Failure {
  namespace: string;
  name: string;
  code: string;
  reason: string;
}

export interface SweepProgress {
  counters: SweepCounters;
  pages: number;
  concurrency: number;
  inFlight: number;
  elapsedMs: number;
  ratePerSecond: number;
}

export interface SweepReport extends SweepCounters {
  /** True when every selected Secret was visited; false when the deadline or a stop request ended the sweep. */
  complete: boolean;
  targetKeyVersionId: string;
  strategy: Strategy;
  dryRun: boolean;
  failures: Failure[];
  /** Failures beyond the first 1,000 are counted, not listed. */
  failuresNotListed: number;
  durationMs: number;
  /** Secrets visited per second. */
  ratePerSecond: number;
  pages: number;
  retries: number;
  throttled: number;
  relists: number;
  concurrency: { max: number; final: number };
  /** Where a later call resumes; present when `complete` is false. */
  checkpoint?: SweepCheckpoint;
  /** Dry runs: Secrets that would be written, and what that costs in KMS calls. */
  wouldRewrite?: number;
  estimatedKmsCalls?: { kmsV2: number; kmsV1: number };
}

export interface SweepOptions {
  store: SecretStore;
  targetKeyVersionId: string;
  strategy?: Strategy;
  selection?: Selection;
  pageSize?: number;
  concurrency?: number;
  checkpoint?: SweepCheckpoint;
  /**
   * Epoch ms: no new Secret is started from then on; what is in flight finishes. Every call starts at least
   * one Secret all the same, so a budget spent before the sweep began (slow set-up, a margin as long as the
   * timeout) still moves a job forward instead of handing over forever.
   */
  deadline?: number;
  /** Aborting stops taking new work, like the deadline (the CLI wires SIGINT to it). */
  signal?: AbortSignal;
  dryRun?: boolean;
  onProgress?: (progress: SweepProgress) => void;
  /** Called after every page with the checkpoint to resume from. */
  onCheckpoint?: (checkpoint: SweepCheckpoint) => void | Promise<void>;
  retryPolicy?: RetryPolicy;
  /** Injectable clock and randomness, for tests. */
  clock?: () => number;
  random?: () => number;
}

export { DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE } from './defaults';

const MAX_LISTED_FAILURES = 1000;
const PROGRESS_INTERVAL_MS = 250;

const keyOf = (s: Pick<SecretRef, 'namespace' | 'name'>): string => `${s.namespace}/${s.name}`;
const zero = (): SweepCounters => ({ total: 0, rewritten: 0, alreadyCurrent: 0, gone: 0, failed: 0 });

export async function sweep(options: SweepOptions): Promise<SweepReport> {
  const clock = options.clock ?? Date.now;
  const strategy = options.strategy ?? options.checkpoint?.strategy ?? 'annotate';
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
  const started = clock();
  const limiter = new AdaptiveLimiter(options.concurrency ?? DEFAULT_CONCURRENCY, 20, clock);
  const { store, targetKeyVersionId, selection = {} } = options;

  if (options.checkpoint && options.checkpoint.targetKeyVersionId !== targetKeyVersionId) {
    throw new SentinelError(
      'poison',
      `the checkpoint is for key version ${options.checkpoint.targetKeyVersionId}, not ${targetKeyVersionId}`,
      {
        code: 'CheckpointMismatch',
        path: 'checkpoint.targetKeyVersionId',
      },
    );
  }

  const counters = { ...(options.checkpoint?.counters ?? zero()) };
  const failures: Failure[] = [];
  let failuresNotListed = 0;
  let pages = 0;
  let retries = 0;
  let relists = 0;
  let wouldRewrite = 0;
  let lastProgress = 0;

  const namespaces = selection.namespaces?.length
    ? [...new Set(selection.namespaces)].filter((n) => !selection.excludeNamespaces?.includes(n)).sort()
    : undefined;
  const fieldSelector =
    !namespaces && selection.excludeNamespaces?.length
      ? selection.excludeNamespaces.map((n) => `metadata.namespace!=${n}`).join(',')
      : undefined;

  let namespaceIndex = options.checkpoint?.namespaceIndex ?? 0;
  let continueToken = options.checkpoint?.continueToken;
  /** Every Secret at or before this key (in list order) is done: skipped if a page shows it again. */
  let skipThrough = options.checkpoint?.resumeAfter;
  /** Secrets started by this call (the deadline spares the first one: see `deadline`). */
  let startedHere = 0;
  const stopRequested = () =>
    options.signal?.aborted === true ||
    (options.deadline !== undefined && startedHere > 0 && clock() >= options.deadline);
  const elapsed = () => Math.max(1, clock() - started);
  const progress = (force = false) => {
    if (!options.onProgress) return;
    const now = clock();
    if (!force && now - lastProgress < PROGRESS_INTERVAL_MS) return;
    lastProgress = now;
    options.onProgress({
      counters: { ...counters },
      pages,
      concurrency: limiter.concurrency,
      inFlight: limiter.active,
      elapsedMs: now - started,
      ratePerSecond: (counters.total * 1000) / elapsed(),
    });
  };
  const fail = (s: SecretRef, code: string, reason: string) => {
    counters.failed++;
    if (failures.length < MAX_LISTED_FAILURES)
      failures.push({ namespace: s.namespace, name: s.name, code, reason });
    else failuresNotListed++;
  };

  /** Waits out a retry decision, telling the limiter about throttling. */
  async function pause(decision: Extract<Decision, { action: 'retry' }>): Promise<void> {
    retries++;
    if (decision.throttled) limiter.onThrottle(decision.delayMs);
    await sleep(decision.delayMs);
  }

  let recheckPage = options.checkpoint?.recheck === true;

  async function rewrite(secret: SecretRef, recheck: boolean): Promise<void> {
    let current = secret;
    if (strategy === 'annotate' && isCurrent(current.annotations, targetKeyVersionId)) {
      counters.alreadyCurrent++;
      return;
    }
    if (options.dryRun) {
      wouldRewrite++;
      return;
    }
    let refetch = recheck;
    for (let attempt = 0; ; attempt++) {
      try {
        if (refetch) {
          // 409, or a page listed from an old snapshot: someone (maybe a sweep that died) wrote the Secret
          // since. If that write carries the target version already, nothing is left to do.
          current = await store.get(current.namespace, current.name);
          refetch = false;
          if (strategy === 'annotate' && isCurrent(current.annotations, targetKeyVersionId)) {
            counters.alreadyCurrent++;
            return;
          }
        }
        const patch =
          strategy === 'annotate'
            ? annotationPatch(targetKeyVersionId, new Date(clock()))
            : stalePatch(current.resourceVersion);
        const written = await store.patchMetadata(current.namespace, current.name, patch);
        limiter.onSuccess();
        // stale-only: the server stores the no-op only for a stale Secret, which moves its resourceVersion.
        if (strategy === 'stale-only' && written.resourceVersion === current.resourceVersion)
          counters.alreadyCurrent++;
        else counters.rewritten++;
        return;
      } catch (err) {
        const decision = decide(err, attempt, policy, options.random);
        switch (decision.action) {
          case 'retry':
            await pause(decision);
            continue;
          case 'refetch':
            retries++;
            refetch = true;
            continue;
          case 'gone':
            counters.gone++;
            return;
          case 'skip':
            fail(current, decision.code, decision.reason);
            return;
          case 'fatal':
            throw decision.error;
        }
      }
    }
  }

  const MAX_RELISTS = 20;
  async function listPage(namespace: string | undefined) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await store.list({
          limit: pageSize,
          ...(namespace ? { namespace } : {}),
          ...(continueToken ? { continueToken } : {}),
          ...(selection.labelSelector ? { labelSelector: selection.labelSelector } : {}),
          ...(fieldSelector ? { fieldSelector } : {}),
        });
      } catch (err) {
        const expired = expiredContinueToken(err);
        if (expired.expired && relists < MAX_RELISTS) {
          // 410: go on with the server's inconsistent continue token, or list again from the start; either
          // way `skipThrough` skips what is done (keys are ordered), so nothing is missed or counted twice.
          relists++;
          continueToken = expired.token;
          continue;
        }
        const decision = decide(err, attempt, policy, options.random);
        if (decision.action === 'retry') {
          await pause(decision);
          continue;
        }
        if (decision.action === 'fatal') throw decision.error;
        throw new SentinelError(
          'permanent',
          `listing Secrets failed: ${decision.action === 'skip' ? decision.reason : decision.action}`,
          { code: decision.action === 'skip' ? decision.code : 'ListFailed', cause: err },
        );
      }
    }
  }

  const scopes = namespaces ?? [undefined];
  let complete = true;
  sweeping: for (; namespaceIndex < scopes.length; namespaceIndex++) {
    const namespace = scopes[namespaceIndex];
    for (;;) {
      if (stopRequested()) {
        complete = false;
        break sweeping;
      }
      const pageToken = continueToken;
      const page = await listPage(namespace);
      pages++;
      let lastStarted: string | undefined;
      let stopped = false;
      /** A fatal error (401, an unexpected one): the page's queued Secrets are not started, then it is thrown. */
      let fatal: { error: unknown } | undefined;
      const floor = skipThrough;
      const recheck = recheckPage;
      recheckPage = false;
      await Promise.all(
        page.items
          .filter((s) => floor === undefined || keyOf(s) > floor)
          .map((secret) =>
            limiter.run(async () => {
              // p-limit starts tasks in order, so the Secrets started form a prefix of the page.
              if (stopped || stopRequested()) {
                stopped = true;
                return;
              }
              lastStarted = keyOf(secret);
              startedHere++;
              counters.total++;
              try {
                await rewrite(secret, recheck);
              } catch (error) {
                stopped = true;
                fatal ??= { error };
              }
              progress();
            }),
          ),
      );
      if (fatal) throw fatal.error;
      progress(true);
      if (stopped) {
        // Resume with the same page, after the last Secret started (every earlier one is done).
        continueToken = pageToken;
        skipThrough = lastStarted ?? skipThrough;
        complete = false;
        break sweeping;
      }
      // The floor only rises: after a relist from the start, pages below it are skipped, not done again.
      const last = page.items.at(-1);
      if (last && (skipThrough === undefined || keyOf(last) > skipThrough)) skipThrough = keyOf(last);
      continueToken = page.continueToken;
      if (!continueToken) break;
      await options.onCheckpoint?.(checkpointNow(true));
    }
    continueToken = undefined;
    skipThrough = undefined;
  }

  function checkpointNow(recheck = false): SweepCheckpoint {
    return {
      targetKeyVersionId,
      strategy,
      namespaceIndex,
      ...(continueToken ? { continueToken } : {}),
      ...(skipThrough ? { resumeAfter: skipThrough } : {}),
      ...(recheck ? { recheck } : {}),
      counters: { ...counters },
    };
  }

  const durationMs = clock() - started;
  return {
    complete,
    targetKeyVersionId,
    strategy,
    dryRun: options.dryRun === true,
    ...counters,
    failures,
    failuresNotListed,
    durationMs,
    ratePerSecond: Math.round(((counters.total * 1000) / Math.max(1, durationMs)) * 10) / 10,
    pages,
    retries,
    throttled: limiter.throttleEvents,
    relists,
    concurrency: { max: limiter.max, final: limiter.concurrency },
    ...(complete ? {} : { checkpoint: checkpointNow() }),
    ...(options.dryRun
      ? {
          wouldRewrite,
          // KMS v2 derives each write's DEK from a seed: one Encrypt per API server at adoption, not per
          // Secret. Under KMS v1 every write would be one Encrypt call.
          estimatedKmsCalls: { kmsV2: 1, kmsV1: wouldRewrite },
        }
      : {}),
  };
}

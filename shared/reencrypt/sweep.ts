import type { FlowControl } from '../cluster/kube-http';
import { SentinelError } from '../errors';
import {
  DEFAULT_ETCD_SPACE,
  EtcdSpaceGuard,
  type EtcdSpaceOptions,
  type EtcdSpaceReport,
} from '../etcd/space';
import {
  DEFAULT_RETRY_POLICY,
  type Decision,
  decide,
  type Retried,
  type RetryPolicy,
  retrying,
} from '../retry';
import { annotationPatch, isCurrent, SEALED_UNDER_ANNOTATION, stalePatch } from './annotations';
import type { SweepCheckpoint, SweepCounters } from './checkpoint';
import { type Cursor, keyOf, pageDone, startCursor, stoppedIn, toCheckpoint } from './cursor';
import type { Strategy } from './defaults';
import { DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE } from './defaults';
import type { Estimate } from './estimate';
import { type Listed, SecretLister, type Selection } from './lister';
import type { SecretRef, SecretStore } from './secrets-api';
import { type Failure, type Outcome, Tally, zeroCounters } from './tally';
import { AdaptiveLimiter, DEFAULT_POLITE, type PoliteOptions } from './throttle';

export type { SweepCheckpoint } from './checkpoint';
/**
 * The re-encryption sweep: every Secret of a cluster (or a selection) is written again, so the API server
 * stores it under the key version it encrypts with now. It reads like the algorithm:
 *
 *   list a page (metadata only, `limit`) → rewrite its Secrets with bounded concurrency → remember the page →
 *   next page, until the list ends, the deadline comes, or the caller stops it.
 *
 * Retry decisions come from `retry.ts`, concurrency from `throttle.ts`, pages from `lister.ts` (the one
 * paged lister), the Kubernetes calls from the `SecretStore` of `secrets-api.ts`. Pages are visited in key
 * order (namespace/name), which is what makes checkpoints exact: a checkpoint is "the page's continue token
 * + the last Secret started", and a resumed sweep skips nothing and repeats nothing.
 */
export type { Strategy } from './defaults';
export type { Selection } from './lister';
export type { Failure } from './tally';

export interface SweepProgress {
  counters: SweepCounters;
  /** The Secrets expected in all, when the API server estimated it. */
  expected?: number;
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
  /** Polite mode: the latency it judged against (ms) and how often it backed off for it. */
  polite?: { baselineMs?: number; latencyBackoffs: number };
  /** The API Priority and Fairness level and flow schema that served the sweep's last request (UIDs). */
  flowControl?: FlowControl;
  /** The etcd space guard: the database's size against the quota, and the pauses for compaction. */
  etcdSpace?: EtcdSpaceReport;
  /** Where a later call resumes; present when `complete` is false. */
  checkpoint?: SweepCheckpoint;
  /** Dry runs: Secrets that would be written, and what that costs in KMS calls. */
  wouldRewrite?: number;
  estimatedKmsCalls?: { kmsV2: number; kmsV1: number };
  /** Dry runs of the CLI and the webhook: the estimate (shared/reencrypt/estimate.ts). */
  estimate?: Estimate;
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
  /** annotate: what the API servers proved the rewrites are sealed under, written with each mark. */
  sealedUnder?: string;
  /** annotate: skip only Secrets whose mark was written under proof (the API servers' evidence is readable). */
  requireProof?: boolean;
  /**
   * annotate: write every Secret whose mark was not written under exactly this evidence token (encryption was
   * just turned on: a mark from an earlier time with encryption on says nothing about a Secret written while
   * it was off); without a token (nothing proven), `rewriteAll` writes every Secret.
   */
  sealedUnderOnly?: string;
  rewriteAll?: boolean;
  /** annotate: a mark written before this instant (encryption was turned on again then) is not trusted. */
  marksSince?: Date;
  /** Called after every page with the checkpoint to resume from. */
  onCheckpoint?: (checkpoint: SweepCheckpoint) => void | Promise<void>;
  retryPolicy?: RetryPolicy;
  /**
   * Polite mode (`throttle.ts`): writes in flight follow the sweep's own latency against its baseline, so
   * the API server's other clients do not queue behind the sweep. `true` takes `DEFAULT_POLITE`.
   */
  polite?: boolean | PoliteOptions;
  /**
   * The etcd space guard (`shared/etcd/space.ts`), where the store can read etcd's size: the quota and the
   * share of it past which growth pauses the sweep until a compaction. `false` turns it off; unset, etcd's
   * default quota. Dry runs write nothing and read no size.
   */
  etcdSpace?: EtcdSpaceOptions | false;
  /** Injectable clock and randomness, for tests. */
  clock?: () => number;
  random?: () => number;
}

export { DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE } from './defaults';

const PROGRESS_INTERVAL_MS = 250;

/** One sweep's fixed inputs and its running totals: what `listPage` and `rewriteOne` work with. */
interface Run {
  readonly options: SweepOptions;
  readonly store: SecretStore;
  readonly target: string;
  readonly strategy: Strategy;
  readonly policy: RetryPolicy;
  readonly clock: () => number;
  readonly started: number;
  readonly limiter: AdaptiveLimiter;
  readonly guard?: EtcdSpaceGuard;
  readonly tally: Tally;
  /** Its pages, in key order; its scopes are the sorted named namespaces, or one for the whole cluster. */
  readonly lister: SecretLister<SecretRef>;
  /** Secrets started by this call (the deadline spares the first one: see `SweepOptions.deadline`). */
  startedHere: number;
  lastProgress: number;
  /** A fatal error ended the sweep: no Secret starts any more, on any page. */
  halted: boolean;
}

/**
 * The loop, like kube-storage-version-migrator's `Run()`: list a page, rewrite what it shows, move the cursor,
 * save a checkpoint; until the scopes end or a stop is asked for.
 *
 * Pages overlap by their tails: once every Secret of a page has started, the next page (listed ahead) is
 * queued behind them, so the writes in flight do not drain to none at every page boundary. The limiter's
 * queue is first in, first out, so the Secrets started still form a prefix of the pages in order, and a stop
 * leaves an exact resume point. A page's checkpoint is saved when its last write has finished (the next page
 * is under way by then: the checkpoint asks for a recheck, so a resumed sweep reads those Secrets again first).
 */
export async function sweep(options: SweepOptions): Promise<SweepReport> {
  const clock = options.clock ?? Date.now;
  const shared: Shared = { started: clock(), limiter: limiterFor(options, clock), guard: guardFor(options) };
  await shared.guard?.start();
  try {
    let report = await sweepFrom(options, shared);
    // The guard stopped it: the checkpoint is saved, and the sweep goes on from it after a compaction.
    while (!report.complete && report.checkpoint && shared.guard?.paused) {
      await options.onCheckpoint?.(report.checkpoint);
      if (!(await shared.guard.waitForCompaction(options.deadline, options.signal))) break;
      report = combined(report, await sweepFrom({ ...options, checkpoint: report.checkpoint }, shared));
    }
    const etcdSpace = shared.guard ? { ...shared.guard.state } : await spaceOutlook(options);
    return { ...report, ...(etcdSpace ? { etcdSpace } : {}) };
  } finally {
    await shared.guard?.stop();
  }
}

/** What the calls of one sweep share across the guard's pauses. */
interface Shared {
  started: number;
  limiter: AdaptiveLimiter;
  guard?: EtcdSpaceGuard;
}

function limiterFor(options: SweepOptions, clock: () => number): AdaptiveLimiter {
  const polite = options.polite === true ? DEFAULT_POLITE : options.polite || undefined;
  return new AdaptiveLimiter(options.concurrency ?? DEFAULT_CONCURRENCY, 20, clock, undefined, polite);
}

/** A dry run's view of etcd: its size now against the quota (the estimate adds the growth to expect). */
async function spaceOutlook(options: SweepOptions): Promise<EtcdSpaceReport | undefined> {
  const { space } = options.store;
  if (!options.dryRun || !space || options.etcdSpace === false) return undefined;
  const { quotaBytes, share } = options.etcdSpace ?? DEFAULT_ETCD_SPACE;
  const sizeBytes = await space.storageSizeBytes().catch(() => undefined);
  return { quotaBytes, share, ...(sizeBytes === undefined ? {} : { sizeBytes }), pauses: 0, pausedMs: 0 };
}

function guardFor(options: SweepOptions): EtcdSpaceGuard | undefined {
  const space = options.store.space;
  if (!space || options.dryRun || options.etcdSpace === false) return undefined;
  return new EtcdSpaceGuard(space, options.etcdSpace ?? DEFAULT_ETCD_SPACE, options.clock);
}

/** A sweep resumed after a pause: the later call's report, with what the earlier call counted added. */
function combined(before: SweepReport, after: SweepReport): SweepReport {
  const failures = [...before.failures, ...after.failures];
  return {
    ...after,
    failures: failures.slice(0, 1000),
    failuresNotListed:
      before.failuresNotListed + after.failuresNotListed + Math.max(0, failures.length - 1000),
    pages: before.pages + after.pages,
    retries: before.retries + after.retries,
    relists: before.relists + after.relists,
  };
}

async function sweepFrom(options: SweepOptions, shared: Shared): Promise<SweepReport> {
  const run = prepare(options, shared);
  const cursor = startCursor(options.checkpoint);
  if (cursor.namespaceIndex >= run.lister.scopes.length) return finish(run, cursor, true);
  if (stopRequested(run)) return finish(run, cursor, false);
  const listed = await listPage(run, cursor);
  /** Pages whose writes may still be in flight. */
  const open = new Set<PageRun>();
  try {
    return await sweepPages(run, listed, open);
  } catch (err) {
    // Whatever ended the sweep (a fatal write, a list, a checkpoint that could not be saved), nothing starts
    // any more, and it is thrown once nothing is in flight.
    run.halted = true;
    await Promise.allSettled([...open].map((p) => p.done));
    throw err;
  }
}

async function sweepPages(run: Run, first: Listed<SecretRef>, open: Set<PageRun>): Promise<SweepReport> {
  const { options } = run;
  let listed = first;
  /** The page before this one, its last writes possibly still in flight, and the cursor after it. */
  let previous: { page: PageRun; next: Cursor } | undefined;
  for (;;) {
    const cursor = listed.cursor;
    run.tally.pages++;
    const next = pageDone(cursor, listed.page);
    // The next page is listed while this one is rewritten: no idle gap between pages.
    const prefetch = next.namespaceIndex < run.lister.scopes.length ? settle(listPage(run, next)) : undefined;
    const page = rewritePage(run, cursor, listed.page.items);
    open.add(page);
    if (previous) {
      const before = await previous.page.done;
      open.delete(previous.page);
      if (before.fatal) throw before.fatal.error;
      // The counters of the pages before this one: a resumed sweep visits this page again.
      if (previous.next.continueToken)
        await options.onCheckpoint?.(
          toCheckpoint(
            previous.next,
            { ...checkpointBase(run), counters: run.tally.without(page.counts) },
            { whileRunning: true },
          ),
        );
    }
    await page.started;
    // A stop is honoured before waiting on the page listed ahead (it may be retrying): it is dropped, and
    // the next call lists it again from the checkpoint.
    if (page.stopped() || !prefetch || stopRequested(run)) {
      const outcome = await page.done;
      open.delete(page);
      if (outcome.fatal) throw outcome.fatal.error;
      if (page.stopped()) return finish(run, stoppedIn(cursor, outcome.lastStarted), false);
      if (!prefetch) return finish(run, next, true);
      // Nothing is in flight: the checkpoint is exact (it keeps a recheck still owed to a dead sweep's writes).
      if (next.continueToken) await options.onCheckpoint?.(toCheckpoint(next, checkpointBase(run)));
      return finish(run, next, false);
    }
    const got = await prefetch;
    if ('error' in got) {
      // A fatal write on this page says more than the list that failed after it.
      const outcome = await page.done;
      throw outcome.fatal ? outcome.fatal.error : got.error;
    }
    listed = got.value;
    previous = { page, next };
  }
}

/** A promise that never rejects (a prefetch nobody may wait for must not become an unhandled rejection). */
const settle = <T>(p: Promise<T>): Promise<{ value: T } | { error: unknown }> =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

function prepare(options: SweepOptions, shared: Shared): Run {
  const clock = options.clock ?? Date.now;
  const { checkpoint } = options;
  if (checkpoint && checkpoint.targetKeyVersionId !== options.targetKeyVersionId) {
    throw new SentinelError(
      'poison',
      `the checkpoint is for key version ${checkpoint.targetKeyVersionId}, not ${options.targetKeyVersionId}`,
      { code: 'CheckpointMismatch', path: 'checkpoint.targetKeyVersionId' },
    );
  }
  const policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
  const { limiter } = shared;
  const tally = new Tally(checkpoint?.counters, checkpoint?.expected);
  const { store } = options;
  return {
    options,
    store,
    target: options.targetKeyVersionId,
    strategy: options.strategy ?? checkpoint?.strategy ?? 'annotate',
    policy,
    clock,
    started: shared.started,
    limiter,
    ...(shared.guard ? { guard: shared.guard } : {}),
    tally,
    // No deadline and no signal: a stop is the sweep's to honour (between Secrets), not the list's.
    lister: new SecretLister((o) => store.list(o), {
      pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE,
      selection: options.selection,
      retryPolicy: policy,
      random: options.random,
      onRetry: (decision) => countRetry(tally, limiter, decision),
    }),
    startedHere: 0,
    lastProgress: 0,
    halted: false,
  };
}

const stopRequested = (run: Run): boolean =>
  run.options.signal?.aborted === true ||
  run.guard?.paused === true ||
  (run.options.deadline !== undefined && run.startedHere > 0 && run.clock() >= run.options.deadline);

const checkpointBase = (run: Run) => ({
  targetKeyVersionId: run.target,
  strategy: run.strategy,
  counters: run.tally.counters,
  expected: run.tally.expected,
});

/** Lists the cursor's page (metadata only); the first page of the whole cluster says how many to expect. */
async function listPage(run: Run, cursor: Cursor): Promise<Listed<SecretRef>> {
  const listed = await run.lister.page(cursor);
  const { continueToken, resumeAfter } = listed.cursor;
  if (run.lister.scopes.length === 1 && !continueToken && !resumeAfter) run.tally.expectFrom(listed.page);
  return listed;
}

/** A page being rewritten: `started` once each of its Secrets has started (or was passed by a stop). */
interface PageRun {
  started: Promise<void>;
  /** Once its writes have all finished; a fatal error is reported here, once what was in flight has finished. */
  done: Promise<{ lastStarted?: string; fatal?: { error: unknown } }>;
  /** Whether a stop (deadline, abort, a fatal error) passed over any of its Secrets. */
  stopped(): boolean;
  /** What its Secrets added to the tally so far. */
  counts: SweepCounters;
}

/**
 * Queues a page's Secrets (the lister left out those done already) behind whatever is queued already, with
 * bounded concurrency. p-limit starts them in order, so the Secrets started form a prefix of the page: a stop
 * (deadline, abort, a fatal error, which halts the whole sweep) leaves an exact resume point.
 */
function rewritePage(run: Run, cursor: Cursor, todo: SecretRef[]): PageRun {
  let lastStarted: string | undefined;
  let stopped = false;
  let fatal: { error: unknown } | undefined;
  const counts = zeroCounters();
  const tally = pageTally(run.tally, counts);
  const writes = pageWrites(run, tally);
  let dequeued = 0;
  let allStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    allStarted = resolve;
  });
  const dequeue = () => {
    if (++dequeued === todo.length) allStarted();
  };
  if (!todo.length) allStarted();
  const done = Promise.all(
    todo.map((secret) =>
      run.limiter.run(async () => {
        if (run.halted || stopRequested(run)) {
          stopped = true;
          dequeue();
          return;
        }
        lastStarted = keyOf(secret);
        run.startedHere++;
        run.tally.visited();
        counts.total++;
        dequeue();
        try {
          await rewriteOne(run, secret, cursor.recheck, tally, writes);
        } catch (error) {
          stopped = true;
          run.halted = true;
          fatal ??= { error };
        }
        reportProgress(run);
      }),
    ),
  ).then(() => {
    reportProgress(run, true);
    return { ...(lastStarted ? { lastStarted } : {}), ...(fatal ? { fatal } : {}) };
  });
  return { started, done, stopped: () => stopped, counts };
}

/** A page's outcomes, counted in the run's tally and in the page's share in one step (a checkpoint reads both). */
type PageTally = ReturnType<typeof pageTally>;

function pageTally(tally: Tally, counts: SweepCounters) {
  return {
    alreadyCurrent: () => void counts[tally.alreadyCurrent()]++,
    rewritten: () => void counts[tally.rewritten()]++,
    gone: () => void counts[tally.gone()]++,
    failed: (ref: SecretRef, code: string, reason: string) => void counts[tally.failed(ref, code, reason)]++,
  };
}

/** What a write is given: the Secret as listed, or one to read again first (a 409, a page from an old snapshot). */
type WriteArg = SecretRef | { refetch: SecretRef };
/** What a write did: the store's answer (none to `writeMetadata`), or (after a read) the outcome already judged. */
type Wrote = SecretRef | undefined | Extract<Outcome, 'rewritten' | 'alreadyCurrent'>;

/**
 * Writes one Secret again (metadata only), so the API server stores it under the key version it encrypts
 * with now; every outcome is tallied. A 409, or a page listed from an old snapshot (`recheck`), reads the
 * Secret again first: if a later write already carries the target version, nothing is left to do.
 */
function rewriteOne(
  run: Run,
  secret: SecretRef,
  recheck: boolean,
  tally: PageTally,
  writes: Retried<WriteArg, Wrote, void>,
): Promise<void> | undefined {
  if (isDoneFor(run, secret)) return tally.alreadyCurrent();
  if (run.options.dryRun) {
    run.tally.wouldRewrite++;
    return;
  }
  return retrying(writes, recheck ? { refetch: secret } : secret);
}

/** A page's writes, as the retry loop runs them: built once per page, so a Secret costs no allocation for it. */
function pageWrites(run: Run, tally: PageTally): Retried<WriteArg, Wrote, void> {
  return {
    attempt: (arg) => ('refetch' in arg ? refetchAndWrite(run, arg.refetch) : write(run, arg)),
    succeeded: (arg, wrote) => {
      if (typeof wrote === 'string') return tally[wrote]();
      run.limiter.onSuccess();
      run.guard?.noteWrite();
      return tally[judged(run, 'refetch' in arg ? arg.refetch : arg, wrote)]();
    },
    failed: (arg, err, attempt) => {
      const ref = 'refetch' in arg ? arg.refetch : arg;
      const decision = decide(err, attempt, run.policy, run.options.random);
      if (decision.action === 'retry') {
        countRetry(run.tally, run.limiter, decision);
        return { retryInMs: decision.delayMs, arg };
      }
      if (decision.action === 'refetch') {
        run.tally.retries++;
        return { retryInMs: 0, arg: { refetch: ref } };
      }
      if (decision.action === 'gone') return { value: tally.gone() };
      if (decision.action === 'skip') return { value: tally.failed(ref, decision.code, decision.reason) };
      throw decision.error;
    },
  };
}

/** Whether the Secret needs no write: marked for the target (under the proof asked for), on `annotate`. */
const isDoneFor = (run: Run, s: SecretRef): boolean =>
  run.strategy === 'annotate' &&
  run.options.rewriteAll !== true &&
  isCurrent(s.annotations, run.target, run.options.requireProof === true, run.options.marksSince) &&
  (run.options.sealedUnderOnly === undefined ||
    s.annotations?.[SEALED_UNDER_ANNOTATION] === run.options.sealedUnderOnly);

/** One write of the strategy's patch; the store's own promise, so a Secret's write adds no await. */
function write(run: Run, ref: SecretRef): Promise<SecretRef | undefined> {
  if (run.strategy !== 'annotate')
    return run.store.patchMetadata(ref.namespace, ref.name, stalePatch(ref.resourceVersion));
  const patch = annotationPatch(run.target, new Date(run.clock()), run.options.sealedUnder);
  // The mark is all a rewrite needs to know of: the server's answer is not read.
  return run.store.writeMetadata
    ? run.store.writeMetadata(ref.namespace, ref.name, patch)
    : run.store.patchMetadata(ref.namespace, ref.name, patch);
}

/** Reads the Secret again, and writes it unless a later write already did. */
async function refetchAndWrite(run: Run, stale: SecretRef): Promise<Wrote> {
  const ref = await run.store.get(stale.namespace, stale.name);
  if (isDoneFor(run, ref)) return 'alreadyCurrent';
  const wrote = await write(run, ref);
  run.limiter.onSuccess();
  run.guard?.noteWrite();
  return judged(run, ref, wrote);
}

/** stale-only: the server stores the no-op only for a stale Secret, which moves its resourceVersion. */
const judged = (run: Run, ref: SecretRef, wrote: SecretRef | undefined): 'rewritten' | 'alreadyCurrent' =>
  run.strategy !== 'annotate' && wrote && wrote.resourceVersion === ref.resourceVersion
    ? 'alreadyCurrent'
    : 'rewritten';

/** A retry counts, and a throttled one lowers the concurrency (the lister's and the writes' alike). */
function countRetry(
  tally: Tally,
  limiter: AdaptiveLimiter,
  decision: Extract<Decision, { action: 'retry' }>,
): void {
  tally.retries++;
  if (decision.throttled) limiter.onThrottle(decision.delayMs);
}

function reportProgress(run: Run, force = false): void {
  const { onProgress } = run.options;
  if (!onProgress) return;
  const now = run.clock();
  if (!force && now - run.lastProgress < PROGRESS_INTERVAL_MS) return;
  run.lastProgress = now;
  const counters = run.tally.snapshot();
  onProgress({
    counters,
    ...(run.tally.expected !== undefined ? { expected: run.tally.expected } : {}),
    pages: run.tally.pages,
    concurrency: run.limiter.concurrency,
    inFlight: run.limiter.active,
    elapsedMs: now - run.started,
    ratePerSecond: (counters.total * 1000) / Math.max(1, now - run.started),
  });
}

function finish(run: Run, cursor: Cursor, complete: boolean): SweepReport {
  const { tally, limiter } = run;
  const durationMs = run.clock() - run.started;
  return {
    complete,
    targetKeyVersionId: run.target,
    strategy: run.strategy,
    dryRun: run.options.dryRun === true,
    ...tally.snapshot(),
    failures: tally.failures,
    failuresNotListed: tally.failuresNotListed,
    durationMs,
    ratePerSecond: Math.round(((tally.counters.total * 1000) / Math.max(1, durationMs)) * 10) / 10,
    pages: tally.pages,
    retries: tally.retries,
    throttled: limiter.throttleEvents,
    relists: run.lister.relists,
    concurrency: { max: limiter.ceiling, final: limiter.concurrency },
    ...(limiter.polite ? { polite: politeReport(limiter) } : {}),
    ...flowControlOf(run.store),
    ...(complete ? {} : { checkpoint: toCheckpoint(cursor, checkpointBase(run)) }),
    ...(run.options.dryRun
      ? {
          wouldRewrite: tally.wouldRewrite,
          // KMS v2 derives each write's DEK from a seed: one Encrypt per API server at adoption, not per
          // Secret. Under KMS v1 every write would be one Encrypt call.
          estimatedKmsCalls: { kmsV2: 1, kmsV1: tally.wouldRewrite },
        }
      : {}),
  };
}

const politeReport = (limiter: AdaptiveLimiter) => ({
  ...(limiter.baselineMs === undefined ? {} : { baselineMs: Math.round(limiter.baselineMs * 100) / 100 }),
  latencyBackoffs: limiter.latencyBackoffs,
});

const flowControlOf = (store: SecretStore): { flowControl?: FlowControl } => {
  const flowControl = store.flowControl?.();
  return flowControl ? { flowControl } : {};
};

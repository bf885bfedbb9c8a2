import { setTimeout as sleep } from 'node:timers/promises';
import { type SealingEvidence, seedPending, unproven } from '../cluster/sealing';
import type { EtcdSpaceOptions } from '../etcd/space';
import type { KeyInfo } from '../kms/keys';
import type { Logger } from '../log';
import type { Notifier } from '../notify';
import {
  doneFor,
  FORCED,
  keyVersionCensus,
  type SecretStore,
  type Selection,
  type SweepProgress,
  type SweepReport,
  sweep,
} from '../reencrypt';
import type { Strategy } from '../reencrypt/defaults';
import { zeroCounters } from '../reencrypt/tally';
import type { Continuation, RunPhase, SweepCheckpoint, SweepCounters } from './payload';
import type { ClusterState, JobStore } from './store';

/**
 * The re-encryption job's one engine, the migrator's `Run()` for this suite: (still wanted?) → wait until the
 * control plane seals with the new key version → sweep → census → complete. The function
 * (`invocation.ts`), the CLI's `reencrypt` and `enable` all run it, each with its own two ports: where progress is kept
 * (the state ConfigMap, a checkpoint file, nothing: a `JobStore`) and how long it may run (`Budget`: a
 * deadline, an abort signal, FC's hand-over to the next invocation). A run stopped by its budget saves where
 * it is and hands over, or returns the continuation to the caller.
 */
export type RunStatus =
  | 'already-complete'
  | 'superseded'
  | 'continued'
  | 'stopped'
  | 'completed'
  | 'unconfirmed'
  | 'waiting-for-new-seed'
  | 'encryption-off'
  | 'dry-run';

export interface RunResult {
  status: RunStatus;
  jobId: string;
  invocation: number;
  /** The sweep of this run, when it swept (whole: the function's answer keeps a summary). */
  report?: SweepReport;
  /** `completed`: proven by the API servers (`verified`), or rewritten without proof. */
  verified?: boolean;
  proof?: 'proven' | 'unproven';
  /** What the API servers proved about the seed a rewrite is sealed under (`shared/cluster/sealing.ts`). */
  evidence?: SealingEvidence;
  /** After the sweep: the Secrets that predate the job, and those carrying its mark. */
  census?: { total: number; done: number };
  /** `continued` and `stopped`: where the next run resumes. */
  continuation?: Continuation;
}

/** What the job is: one cluster, one key version, and how its Secrets are swept. */
export interface JobSpec {
  jobId: string;
  clusterId: string;
  keyVersionId: string;
  strategy: Strategy;
  selection?: Selection;
  pageSize: number;
  concurrency: number;
  dryRun?: boolean;
  /** Polite mode and the etcd space guard (shared/reencrypt/throttle.ts, shared/etcd/space.ts). */
  polite?: boolean;
  etcdSpace?: EtcdSpaceOptions | false;
  /** Sweep although the API servers prove a rewrite would not re-seal; the marks say `forced` (CLI `--force`). */
  force?: boolean;
  /**
   * Encryption was just turned on: a mark from an earlier time with encryption on says nothing about a Secret
   * written while it was off, so every Secret not marked under this run's evidence is written (`enable`).
   */
  sinceEnabled?: boolean;
}

/** How long a run may go on. */
export interface Budget {
  /** Epoch ms after which no step starts new work. */
  deadline?: number;
  signal?: AbortSignal;
  /** FC: invoke the next invocation with the continuation. Without, a run out of budget stops and returns it. */
  handOver?(next: Continuation): Promise<void>;
}

/** Everything the engine reaches: the cluster's Secrets, the evidence, the two ports, the clock. */
export interface JobPorts {
  secrets: SecretStore;
  /** The API servers' evidence for the key's last rotation (`readSealingEvidence`). */
  evidence(): Promise<SealingEvidence>;
  /** The key as KMS describes it now, when known: a newer primary version supersedes the job. */
  key?: Pick<KeyInfo, 'primaryKeyVersion' | 'lastRotationDate'>;
  store: JobStore;
  budget: Budget;
  log: Logger;
  now(): number;
  adoption: { delayMs: number; timeoutMs: number };
  notifier?: Pick<Notifier, 'notify'>;
  onProgress?(progress: SweepProgress): void;
}

/** What the steps share: the job, where it is, and the evidence read at its start and while waiting. */
interface JobRun {
  spec: JobSpec;
  ports: JobPorts;
  at: Continuation;
  evidence: SealingEvidence;
  /** Marks written before this instant are not trusted: encryption was turned on again then (the state's). */
  marksSince?: Date;
}

const EVIDENCE_POLL_MS = 10_000;

/** Nothing is kept between runs (`enable`, a CLI sweep without `--checkpoint`, a dry run). */
export const nothingKept = (): JobStore => ({
  get: async () => ({}),
  progress: async () => {},
  complete: async () => {},
  awaitNewSeed: async () => {},
  fail: async () => {},
});

/** A job's first continuation: the function waits for adoption first, the CLI and `enable` sweep at once. */
export const firstContinuation = (keyVersionId: string, startedAt: Date, phase: RunPhase): Continuation => ({
  targetKeyVersionId: keyVersionId,
  invocation: 1,
  startedAt,
  phase,
});

export async function runJob(spec: JobSpec, ports: JobPorts, from: Continuation): Promise<RunResult> {
  const run: JobRun = { spec, ports, at: { ...from }, evidence: unproven('not read yet') };
  run.evidence = await ports.evidence();
  const state = await ports.store.get();
  if (state.encryptionOffSince) return encryptionOff(run, state.encryptionOffSince);
  if (state.marksSince) run.marksSince = new Date(state.marksSince);
  const done = await alreadyComplete(run, state);
  if (done) return done;
  resumeFromState(run, state);
  if (ports.key && ports.key.primaryKeyVersion !== spec.keyVersionId) return superseded(run);
  // A seed still to be sealed is waited out in any phase (a rewrite now would stay under the old version),
  // unless the caller forces the sweep.
  if (run.at.phase === 'waiting-for-adoption' || (seedPending(run.evidence) && !spec.force)) {
    const adoption = await waitForAdoption(run);
    if (adoption === 'budget-spent') return handOver(run);
  }
  if (run.evidence.verdict === 'not-effective' && !spec.force) return awaitNewSeed(run);
  let report: SweepReport | undefined;
  if (run.at.phase === 'sweeping') {
    report = await sweepStep(run);
    if (!report.complete) return handOver(run, report);
    if (spec.dryRun) return { ...result(run, 'dry-run'), report };
  }
  return verify(run, report);
}

const result = (run: JobRun, status: RunStatus): RunResult => ({
  status,
  jobId: run.spec.jobId,
  invocation: run.at.invocation,
});

/** Marks count as done only when written under the API servers' proof, where they prove a re-seal. */
const requireProof = (run: JobRun): boolean => run.evidence.verdict === 'effective';

/**
 * The state says this version is done: believed only when (for annotate) every Secret that predates the job
 * carries its mark, counted now (the stored `completedAt` is as forgeable as the claim itself).
 */
async function alreadyComplete(run: JobRun, state: ClusterState): Promise<RunResult | undefined> {
  if (state.completedKeyVersion !== run.spec.keyVersionId) return undefined;
  // A completion without proof, now that the API servers prove a rewrite re-seals: sweep (marks with proof
  // are skipped) and complete with proof, so the starter stops restarting it.
  if (state.completedProof !== 'proven' && run.evidence.verdict === 'effective') return undefined;
  const census = await censusOf(run);
  if (!census || census.done >= census.total) {
    run.ports.log.info('already complete for this key version');
    return result(run, 'already-complete');
  }
  run.ports.log.warn('the state says complete, but Secrets lack the mark of this key version: sweeping', {
    missing: census.total - census.done,
  });
  return undefined;
}

/**
 * An invocation that died after saving progress is retried by FC with its payload: resume from the
 * checkpoint saved in the state when it is further along (it is marked for a recheck, so nothing the dead
 * invocation wrote is written again).
 */
function resumeFromState(run: JobRun, state: ClusterState): void {
  const saved = state.job?.jobId === run.spec.jobId ? state.job.checkpoint : undefined;
  if (!saved || run.at.phase === 'verifying' || saved.counters.total <= (run.at.sweep?.counters.total ?? -1))
    return;
  run.at = { ...run.at, phase: 'sweeping', sweep: saved };
  run.ports.log.info('resuming from the checkpoint saved with the job', { visited: saved.counters.total });
}

/** Encryption is off: a rewrite now would store Secrets in plaintext, and a mark would vouch for them. */
async function encryptionOff(run: JobRun, since: string): Promise<RunResult> {
  const reason = `Secret encryption has been off since ${since} (as last seen): nothing to re-encrypt until it is on again`;
  run.ports.log.warn('encryption is off: the job stops', { since });
  await run.ports.store.fail(run.at.invocation, reason);
  return result(run, 'encryption-off');
}

/** A newer rotation happened: its own job (rotation-watch starts it) rewrites everything once more. */
async function superseded(run: JobRun): Promise<RunResult> {
  const newer = run.ports.key?.primaryKeyVersion;
  run.ports.log.info('superseded by a newer key version', { primaryKeyVersion: newer });
  await run.ports.store.fail(run.at.invocation, `superseded by ${newer}`);
  return result(run, 'superseded');
}

type Adoption = 'adopted' | 'no-new-seed' | 'budget-spent';

/** When the key was rotated to the job's version (the primary version's creation). */
const rotatedAt = (run: JobRun): Date =>
  run.ports.key?.lastRotationDate ? new Date(run.ports.key.lastRotationDate) : run.at.startedAt;

/**
 * Step 1: wait until the control plane encrypts with the new version. With the API servers' evidence: until
 * every one made a new seed (or started) after the rotation, for at most the adoption delay after it (they
 * poll the plugin every minute; past that no new key id is coming). Without it nothing can be proven: the job
 * waits the adoption delay, sweeps, and ends "rewritten, not proven" (ActionTrail's Encrypts by the managed
 * role prove nothing: the ACK plugin's Status health check makes them every minute).
 */
async function waitForAdoption(run: JobRun): Promise<Adoption> {
  const { ports } = run;
  const since = rotatedAt(run);
  for (;;) {
    const found = adoption(run, since);
    if (found !== 'waiting') {
      if (found === 'adopted' && run.at.phase === 'waiting-for-adoption')
        run.at = { ...run.at, phase: 'sweeping' };
      return found;
    }
    const left = (ports.budget.deadline ?? Number.POSITIVE_INFINITY) - ports.now();
    if (left <= 0 || ports.budget.signal?.aborted) return 'budget-spent';
    await sleep(Math.min(EVIDENCE_POLL_MS, left), undefined, { signal: ports.budget.signal }).catch(() => {});
    run.evidence = await ports.evidence();
    if (ports.adoption.timeoutMs < ports.now() - run.at.startedAt.getTime()) {
      ports.log.warn('adoption timeout');
      return run.evidence.verdict === 'not-effective' ? 'no-new-seed' : 'adopted';
    }
  }
}

function adoption(run: JobRun, since: Date): Adoption | 'waiting' {
  const { ports, evidence } = run;
  if (evidence.verdict === 'effective') {
    ports.log.info('the API servers proved a new seed after the rotation', { reason: evidence.reason });
    return 'adopted';
  }
  // kube-apiserver retries a failed seed on its own: waited out up to the adoption timeout, not the delay.
  if (seedPending(evidence)) return 'waiting';
  const waited = ports.now() - since.getTime();
  if (waited < ports.adoption.delayMs) return 'waiting';
  if (evidence.verdict === 'not-effective') return 'no-new-seed';
  ports.log.warn('nothing proves the control plane seals with the new version; sweeping without proof', {
    reason: evidence.reason,
  });
  return 'adopted';
}

/**
 * The API servers proved a rewrite now would change nothing. The job does not sweep uselessly: it says so
 * with the remedy, alerts once, and waits; rotation-watch starts it again once the API servers have made a
 * new seed (a restart), which it checks on every tick.
 */
async function awaitNewSeed(run: JobRun): Promise<RunResult> {
  const { spec, evidence, ports } = run;
  const state = await ports.store.get();
  const alerted = state.job?.jobId === spec.jobId && state.job.phase === 'waiting-for-new-seed';
  await ports.store.awaitNewSeed(run.at.invocation, { reason: evidence.reason, evidence });
  ports.log.warn('a rewrite now would not re-seal: waiting for the control plane to make a new seed', {
    reason: evidence.reason,
  });
  if (!alerted)
    await ports.notifier?.notify({
      severity: 'critical',
      title: `Re-encryption of ${spec.clusterId} for ${spec.keyVersionId} cannot take effect yet`,
      text: `${evidence.reason} Until then Secrets stay sealed under the previous key version; do not disable or delete it.`,
      details: { jobId: spec.jobId, evidence },
    });
  return { ...result(run, 'waiting-for-new-seed'), evidence };
}

/** Step 2: the sweep, from the checkpoint, within the budget; progress saved after every page. */
async function sweepStep(run: JobRun): Promise<SweepReport> {
  const { spec, ports, evidence } = run;
  const sealedUnder = evidence.token ?? (evidence.verdict === 'not-effective' ? FORCED : undefined);
  const report = await sweep({
    store: ports.secrets,
    targetKeyVersionId: spec.keyVersionId,
    strategy: strategyFor(run),
    ...(spec.selection ? { selection: spec.selection } : {}),
    pageSize: spec.pageSize,
    concurrency: spec.concurrency,
    ...(spec.polite ? { polite: true } : {}),
    ...(spec.etcdSpace === undefined ? {} : { etcdSpace: spec.etcdSpace }),
    ...(run.at.sweep ? { checkpoint: run.at.sweep } : {}),
    ...(ports.budget.deadline === undefined ? {} : { deadline: ports.budget.deadline }),
    ...(ports.budget.signal ? { signal: ports.budget.signal } : {}),
    dryRun: spec.dryRun === true,
    clock: ports.now,
    onProgress: (p) =>
      ports.onProgress ? ports.onProgress(p) : ports.log.debug('sweep progress', { ...p.counters }),
    onCheckpoint: (c) => (spec.dryRun ? undefined : ports.store.progress('sweeping', run.at.invocation, c)),
    ...(sealedUnder ? { sealedUnder } : {}),
    requireProof: requireProof(run),
    ...(spec.sinceEnabled
      ? evidence.token
        ? { sealedUnderOnly: evidence.token }
        : { rewriteAll: true }
      : {}),
    ...(run.marksSince ? { marksSince: run.marksSince } : {}),
  });
  run.at = report.complete
    ? { ...run.at, phase: 'verifying', sweep: finalCheckpoint(run, report) }
    : { ...run.at, ...(report.checkpoint ? { sweep: report.checkpoint } : {}) };
  return report;
}

/**
 * `stale-only` relies on the API server calling a Secret stale, which it does only for another key id
 * (k8s.io/apiserver kmsv2 `envelope.go`); with a constant key id nothing is ever stale: annotate instead.
 */
function strategyFor(run: JobRun): Strategy {
  const { strategy } = run.spec;
  if (strategy === 'stale-only' && run.evidence.constantKeyId) {
    run.ports.log.warn(
      'the plugin reports a constant key id, so nothing is ever stale: sweeping with annotate',
    );
    return 'annotate';
  }
  return strategy;
}

/** What a finished sweep leaves for verification in a later invocation: its counters. */
function finalCheckpoint(run: JobRun, report: SweepReport): SweepCheckpoint {
  const { total, rewritten, alreadyCurrent, gone, failed } = report;
  return {
    targetKeyVersionId: run.spec.keyVersionId,
    strategy: report.strategy,
    namespaceIndex: 0,
    counters: { total, rewritten, alreadyCurrent, gone, failed },
  };
}

/**
 * Step 3: the census confirms what the sweep claims (every Secret that predates the job carries the mark),
 * then the job completes and reports. A shortfall means a forged or stale checkpoint skipped Secrets: the
 * job fails without its checkpoint (and revokes a completion claimed for this version), so its next attempt
 * sweeps from the start.
 */
async function verify(run: JobRun, report?: SweepReport): Promise<RunResult> {
  const { ports, evidence } = run;
  // The census lists every Secret: with the budget spent, it is the next invocation's first step.
  if ((ports.budget.deadline ?? Number.POSITIVE_INFINITY) - ports.now() <= 0) return handOver(run, report);
  const counters = run.at.sweep?.counters ?? zeroCounters();
  const census = await censusOf(run);
  const missing = census ? census.total - census.done : 0;
  if (missing > counters.failed) return unconfirmed(run, missing, counters.failed);
  const proof = evidence.verdict === 'effective' ? 'proven' : 'unproven';
  const summary = report ? summarize(report) : counters;
  const reason = proof === 'proven' ? undefined : `rewritten, not proven: ${evidence.reason}`;
  await ports.store.complete(
    run.at.invocation,
    {
      ...summary,
      proof,
      ...(reason ? { reason } : {}),
      ...(run.marksSince ? { marksSince: run.marksSince.toISOString() } : {}),
      evidence,
    },
    proof,
  );
  await ports.notifier?.notify(completionNotice(run, counters, proof));
  ports.log.info(proof === 'proven' ? 'job complete, proven' : 'job complete: rewritten, not proven', {
    invocations: run.at.invocation,
    reason: evidence.reason,
  });
  return {
    ...result(run, 'completed'),
    ...(report ? { report } : {}),
    verified: proof === 'proven',
    proof,
    evidence,
    ...(census ? { census } : {}),
  };
}

/** A proven completion is a report; one without proof is a warning that says what is missing. */
function completionNotice(run: JobRun, counters: SweepCounters, proof: 'proven' | 'unproven') {
  const { spec, evidence } = run;
  const counts = `${counters.rewritten} rewritten, ${counters.alreadyCurrent} already current, ${counters.failed} failed, in ${run.at.invocation} invocation(s)`;
  return proof === 'proven'
    ? {
        severity: 'report' as const,
        title: `Secrets of ${spec.clusterId} re-encrypted for key version ${spec.keyVersionId}`,
        text: `${counts}. Proven by the API servers: ${evidence.reason}.`,
        details: { jobId: spec.jobId, ...counters, verified: true, proof },
      }
    : {
        severity: 'warning' as const,
        title: `Secrets of ${spec.clusterId} rewritten for key version ${spec.keyVersionId}, not proven`,
        text: `${counts}. Nothing proves the rewrites were sealed under the new key version: ${evidence.reason}. The job runs again once the API servers' evidence can prove it; until then do not disable or delete the previous key version.`,
        details: { jobId: spec.jobId, ...counters, verified: false, proof },
      };
}

async function unconfirmed(run: JobRun, missing: number, failed: number): Promise<RunResult> {
  const { spec, ports } = run;
  const reason = `${missing} Secret(s) created before the job lack the mark of ${spec.keyVersionId} though the sweep reported done (${failed} failed); its checkpoint or state may have been written by someone else`;
  ports.log.error('completion not confirmed by the census', { missing, failed });
  await ports.store.fail(run.at.invocation, reason, { revokeCompletion: true });
  await ports.notifier?.notify({
    severity: 'critical',
    title: `Re-encryption of ${spec.clusterId} not confirmed`,
    text: `${reason}. The job starts again from the beginning on the next rotation-watch tick.`,
    details: { jobId: spec.jobId, missing, failed },
  });
  return result(run, 'unconfirmed');
}

/** The budget is spent: save where the job is, and hand over to the next invocation (or the caller). */
async function handOver(run: JobRun, report?: SweepReport): Promise<RunResult> {
  const { at, ports } = run;
  await ports.store.progress(at.phase, at.invocation, at.sweep);
  const next: Continuation = { ...at, invocation: at.invocation + 1 };
  if (ports.budget.handOver) await ports.budget.handOver(next);
  ports.log.info(ports.budget.handOver ? 'budget spent: handed over to the next invocation' : 'stopped', {
    invocation: next.invocation,
    phase: at.phase,
    visited: report?.total,
  });
  return {
    ...result(run, ports.budget.handOver ? 'continued' : 'stopped'),
    ...(report ? { report } : {}),
    continuation: next,
  };
}

/**
 * Secrets of the job's selection created before it started, and those carrying the suite's mark of its
 * version (annotate; a mark written under the API servers' proof, when they prove a re-seal): metadata only,
 * paged. Undefined for `stale-only`, which leaves no mark to count.
 */
async function censusOf(run: JobRun): Promise<{ total: number; done: number } | undefined> {
  if (strategyFor(run) !== 'annotate') return undefined;
  const { spec, ports } = run;
  const census = await keyVersionCensus(ports.secrets, {
    pageSize: spec.pageSize,
    createdBefore: run.at.startedAt,
    ...(spec.selection ? { selection: spec.selection } : {}),
    ...(ports.budget.signal ? { signal: ports.budget.signal } : {}),
    ...(run.marksSince ? { marksSince: run.marksSince } : {}),
  });
  return { total: census.total, done: doneFor(census, spec.keyVersionId, requireProof(run)) };
}

/** The report without the failure list beyond a few entries: state ConfigMaps and notifications stay small. */
export function summarize(r: SweepReport): Partial<SweepReport> {
  const { checkpoint: _c, failures, ...rest } = r;
  return { ...rest, failures: failures.slice(0, 20) };
}

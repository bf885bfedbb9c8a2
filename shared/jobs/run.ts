import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Api } from '@kubernetes/client-node';
import { type Cluster, openCluster } from '../cluster/kube';
import { readSealingEvidence, type SealingEvidence, seedPending, unproven } from '../cluster/sealing';
import { clusterKubeconfig } from '../cluster/user-kubeconfig';
import { normalizeError } from '../errors';
import type { Strategy } from '../events/fields';
import { describeKey, type KeyInfo } from '../kms/keys';
import type { Logger } from '../log';
import { doneFor, keyVersionCensus, type SweepReport, sweep } from '../reencrypt';
import { zeroCounters } from '../reencrypt/tally';
import type { Invocation } from '../runtime/handler';
import type { Services } from '../runtime/services';
import { findManagedRoleEvents } from '../trail/evidence';
import {
  type Continuation,
  encodeJobPayload,
  type JobPayload,
  type SweepCheckpoint,
  taskIdFor,
} from './payload';
import { configMapStateStore } from './state';
import { type JobStore, jobStore } from './store';

/**
 * One invocation of a re-encryption job, as named steps: (check it is still wanted) → wait for adoption →
 * sweep → verify. A job spans invocations: when the budget is spent in any step, the job saves its progress
 * and hands over to the next invocation (`handOver`), which resumes in the same step.
 */
export type RunStatus =
  | 'already-complete'
  | 'superseded'
  | 'continued'
  | 'completed'
  | 'unconfirmed'
  | 'waiting-for-new-seed';

export interface RunResult {
  status: RunStatus;
  jobId: string;
  invocation: number;
  report?: Partial<SweepReport>;
  verified?: boolean;
  /** What the API servers proved about the seed a rewrite is sealed under (`shared/cluster/sealing.ts`). */
  evidence?: SealingEvidence;
}

/** What the steps share: the job, where it is, and where it keeps its state. */
interface JobRun {
  job: JobPayload;
  at: Continuation;
  inv: Invocation;
  s: Services;
  log: Logger;
  core: CoreV1Api;
  cluster: Cluster;
  store: JobStore;
  /** The API servers' evidence, read at the start of the invocation and again while waiting. */
  evidence: SealingEvidence;
  /** Epoch ms after which no step starts new work (the invocation's deadline less the margin). */
  deadline: number;
  account: { accountId?: string };
}

const EVIDENCE_POLL_MS = 10_000;

export async function runJobInvocation(job: JobPayload, inv: Invocation, s: Services): Promise<RunResult> {
  const cluster = openCluster(await clusterKubeconfig(s.clients, job.clusterId, 60));
  try {
    const run = begin(job, inv, s, cluster);
    const key = await describeKey(s.clients, job.keyId);
    run.evidence = await sealingEvidence(run, key);
    const done = await alreadyComplete(run);
    if (done) return done;
    await resumeFromState(run);
    if (key.primaryKeyVersion !== job.keyVersionId) return superseded(run, key);
    // A seed still to be sealed is waited out in any phase: a rewrite now would stay under the old version.
    if (run.at.phase === 'waiting-for-adoption' || seedPending(run.evidence)) {
      const adoption = await waitForAdoption(run, key);
      if (adoption === 'budget-spent') return handOver(run);
    }
    if (run.evidence.verdict === 'not-effective') return awaitNewSeed(run);
    let report: SweepReport | undefined;
    if (run.at.phase === 'sweeping') {
      report = await sweepStep(run);
      if (!report.complete) return handOver(run, report);
    }
    return verify(run, key, report);
  } finally {
    cluster.close();
  }
}

function begin(job: JobPayload, inv: Invocation, s: Services, cluster: Cluster): JobRun {
  const log = inv.log.child({ jobId: job.jobId, clusterId: job.clusterId });
  const accountId = inv.config.accountId ?? inv.context.accountId;
  const at: Continuation = job.checkpoint ?? {
    targetKeyVersionId: job.keyVersionId,
    invocation: 1,
    startedAt: new Date(inv.now()),
    phase: 'waiting-for-adoption',
  };
  const ref = {
    jobId: job.jobId,
    keyId: job.keyId,
    keyVersionId: job.keyVersionId,
    attempt: job.attempt ?? 1,
  };
  return {
    job,
    at: { ...at },
    inv,
    s,
    log,
    core: cluster.core,
    cluster,
    evidence: unproven('not read yet'),
    store: jobStore(configMapStateStore(cluster.core, inv.config.stateNamespace), ref, { log, now: inv.now }),
    deadline: inv.deadline - inv.config.reencrypt.budgetMarginMs,
    account: accountId ? { accountId } : {},
  };
}

/**
 * The state says this version is done: believed only when (for annotate) every Secret that predates the job
 * carries its mark, counted now (the stored `completedAt` is as forgeable as the claim itself).
 */
async function alreadyComplete(run: JobRun): Promise<RunResult | undefined> {
  const state = await run.store.get();
  if (state.completedKeyVersion !== run.job.keyVersionId) return undefined;
  // A completion without proof, now that the API servers prove a rewrite re-seals: sweep (marks with proof
  // are skipped) and complete with proof, so the starter stops restarting it.
  if (state.completedProof !== 'proven' && run.evidence.verdict === 'effective') return undefined;
  const missing = await unmarked(run);
  if (missing === 0) {
    run.log.info('already complete for this key version');
    return { status: 'already-complete', jobId: run.job.jobId, invocation: run.at.invocation };
  }
  run.log.warn('the state says complete, but Secrets lack the mark of this key version: sweeping', {
    missing,
  });
  return undefined;
}

/**
 * FC retried an invocation that died after saving progress: resume from the checkpoint saved in the state
 * when it is further along than the payload's (it is marked for a recheck, so nothing the dead attempt wrote
 * is written again).
 */
async function resumeFromState(run: JobRun): Promise<void> {
  const state = await run.store.get();
  const saved = state.job?.jobId === run.job.jobId ? state.job.checkpoint : undefined;
  if (!saved || run.at.phase === 'verifying' || saved.counters.total <= (run.at.sweep?.counters.total ?? -1))
    return;
  run.at = { ...run.at, phase: 'sweeping', sweep: saved };
  run.log.info('resuming from the checkpoint saved in the state ConfigMap', {
    visited: saved.counters.total,
  });
}

/** A newer rotation happened: its own job (rotation-watch starts it) rewrites everything once more. */
async function superseded(run: JobRun, key: KeyInfo): Promise<RunResult> {
  run.log.info('superseded by a newer key version', { primaryKeyVersion: key.primaryKeyVersion });
  await run.store.fail(run.at.invocation, `superseded by ${key.primaryKeyVersion}`);
  return { status: 'superseded', jobId: run.job.jobId, invocation: run.at.invocation };
}

type Adoption = 'adopted' | 'no-new-seed' | 'budget-spent';

/** When the key was rotated to the job's version (the primary version's creation). */
const rotatedAt = (run: JobRun, key: KeyInfo): Date =>
  key.lastRotationDate ? new Date(key.lastRotationDate) : run.at.startedAt;

/**
 * The API servers' own evidence (`/metrics`), unless the configuration says ActionTrail only, or they cannot
 * be read (then nothing is proven, and the job falls back to ActionTrail). A failed read is thrown (FC
 * retries the invocation): a guess here would be a mark without proof.
 */
async function sealingEvidence(run: JobRun, key: KeyInfo): Promise<SealingEvidence> {
  if (run.inv.config.reencrypt.proof !== 'metrics')
    return unproven('SENTINEL_REENCRYPT_PROOF is actiontrail');
  try {
    return await readSealingEvidence(run.cluster.getRaw, key, await run.cluster.apiServerIdentities());
  } catch (err) {
    throw normalizeError(err, { service: 'kubernetes', operation: 'GET /metrics' });
  }
}

/**
 * Step 1: wait until the control plane encrypts with the new version. With the API servers' evidence: until
 * every one made a new seed (or started) after the rotation, for at most the adoption delay after it (they
 * poll the plugin every minute; past that no new key id is coming). Without: ActionTrail's Encrypt by the
 * managed role (health checks make it too, so it proves little), or the delay, or the timeout.
 */
async function waitForAdoption(run: JobRun, key: KeyInfo): Promise<Adoption> {
  const { config } = run.inv;
  const since = rotatedAt(run, key);
  for (;;) {
    const found =
      run.evidence.verdict === 'unproven' ? await trailAdoption(run, since) : apiServerAdoption(run, since);
    if (found !== 'waiting') {
      if (found === 'adopted' && run.at.phase === 'waiting-for-adoption')
        run.at = { ...run.at, phase: 'sweeping' };
      return found;
    }
    const left = run.deadline - run.inv.now();
    if (left <= 0) return 'budget-spent';
    await sleep(Math.min(EVIDENCE_POLL_MS, left));
    if (run.evidence.verdict !== 'unproven') run.evidence = await sealingEvidence(run, key);
    if (config.reencrypt.adoptionTimeoutMs < run.inv.now() - run.at.startedAt.getTime()) {
      run.log.warn('adoption timeout');
      return run.evidence.verdict === 'not-effective' ? 'no-new-seed' : 'adopted';
    }
  }
}

function apiServerAdoption(run: JobRun, since: Date): Adoption | 'waiting' {
  if (run.evidence.verdict === 'effective') {
    run.log.info('the API servers proved a new seed after the rotation', { reason: run.evidence.reason });
    return 'adopted';
  }
  // kube-apiserver retries a failed seed on its own: waited out up to the adoption timeout, not the delay.
  if (seedPending(run.evidence)) return 'waiting';
  const waited = run.inv.now() - since.getTime();
  return waited >= run.inv.config.reencrypt.adoptionDelayMs ? 'no-new-seed' : 'waiting';
}

async function trailAdoption(run: JobRun, since: Date): Promise<Adoption | 'waiting'> {
  const evidence = await managedRoleEncrypts(run, new Date(since.getTime() - 60_000));
  const waited = run.inv.now() - since.getTime();
  if (evidence.length > 0) {
    run.log.info('ActionTrail shows the managed role encrypting with the new version', {
      evidence: evidence[0]?.eventId,
    });
    return 'adopted';
  }
  if (waited >= run.inv.config.reencrypt.adoptionDelayMs) {
    run.log.info('no ActionTrail evidence yet; the configured delay has passed', { waitedMs: waited });
    return 'adopted';
  }
  return 'waiting';
}

/**
 * Case (c): the API servers proved a rewrite now would change nothing. The job does not sweep uselessly: it
 * says so with the remedy, alerts once, and waits; rotation-watch starts it again once the API servers have
 * made a new seed (a restart), which it checks on every tick.
 */
async function awaitNewSeed(run: JobRun): Promise<RunResult> {
  const { job, evidence } = run;
  const state = await run.store.get();
  const alerted = state.job?.jobId === job.jobId && state.job.phase === 'waiting-for-new-seed';
  await run.store.awaitNewSeed(run.at.invocation, { reason: evidence.reason, evidence });
  run.log.warn('a rewrite now would not re-seal: waiting for the control plane to make a new seed', {
    reason: evidence.reason,
  });
  if (!alerted)
    await run.s.notifier.notify({
      severity: 'critical',
      title: `Re-encryption of ${job.clusterId} for ${job.keyVersionId} cannot take effect yet`,
      text: `${evidence.reason} Until then Secrets stay sealed under the previous key version; do not disable or delete it.`,
      details: { jobId: job.jobId, evidence },
    });
  return { status: 'waiting-for-new-seed', jobId: job.jobId, invocation: run.at.invocation, evidence };
}

/** Step 2: the sweep, from the checkpoint, within the budget; progress saved after every page. */
async function sweepStep(run: JobRun): Promise<SweepReport> {
  const { reencrypt } = run.inv.config;
  const report = await sweep({
    store: run.cluster.secrets,
    targetKeyVersionId: run.job.keyVersionId,
    strategy: strategyFor(run),
    pageSize: reencrypt.pageSize,
    concurrency: reencrypt.concurrency,
    ...(run.at.sweep ? { checkpoint: run.at.sweep } : {}),
    deadline: run.deadline,
    clock: run.inv.now,
    onProgress: (p) => run.log.debug('sweep progress', { ...p.counters, pages: p.pages }),
    onCheckpoint: (c) => run.store.progress('sweeping', run.at.invocation, c),
    ...(run.evidence.token ? { sealedUnder: run.evidence.token } : {}),
    requireProof: run.evidence.verdict !== 'unproven',
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
  const { strategy } = run.inv.config.reencrypt;
  if (strategy === 'stale-only' && run.evidence.constantKeyId) {
    run.log.warn('the plugin reports a constant key id, so nothing is ever stale: sweeping with annotate');
    return 'annotate';
  }
  return strategy;
}

/** What a finished sweep leaves for verification in a later invocation: its counters. */
function finalCheckpoint(run: JobRun, report: SweepReport): SweepCheckpoint {
  const { total, rewritten, alreadyCurrent, gone, failed } = report;
  return {
    targetKeyVersionId: run.job.keyVersionId,
    strategy: run.inv.config.reencrypt.strategy,
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
async function verify(run: JobRun, key: KeyInfo, report?: SweepReport): Promise<RunResult> {
  const { job } = run;
  const since = key.lastRotationDate ? new Date(Date.parse(key.lastRotationDate) - 60_000) : run.at.startedAt;
  const verified =
    run.evidence.verdict === 'unproven'
      ? (await managedRoleEncrypts(run, since)).length > 0
      : run.evidence.verdict === 'effective';
  // The census lists every Secret: with the budget spent, it is the next invocation's first step.
  if (run.deadline - run.inv.now() <= 0) return handOver(run, report);
  const counters = run.at.sweep?.counters ?? zeroCounters();
  const missing = await unmarked(run);
  if (missing > counters.failed) return unconfirmed(run, missing, counters.failed);
  const proof = run.evidence.verdict === 'effective' ? 'proven' : 'unproven';
  const stored = { ...(report ? summary(report) : counters), evidence: run.evidence };
  await run.store.complete(run.at.invocation, stored, proof);
  await run.s.notifier.notify({
    severity: 'report',
    title: `Secrets of ${job.clusterId} re-encrypted for key version ${job.keyVersionId}`,
    text: `${counters.rewritten} rewritten, ${counters.alreadyCurrent} already current, ${counters.failed} failed, in ${run.at.invocation} invocation(s). ${proof === 'proven' ? `Proven by the API servers: ${run.evidence.reason}.` : `Unproven: ${run.evidence.reason}. ActionTrail ${verified ? 'shows' : 'does not yet show'} the control plane encrypting with this version.`}`,
    details: { jobId: job.jobId, ...(report ? summary(report) : counters), verified, proof },
  });
  run.log.info('job complete', { verified, invocations: run.at.invocation });
  return {
    status: 'completed',
    jobId: job.jobId,
    invocation: run.at.invocation,
    ...(report ? { report: summary(report) } : {}),
    verified,
    evidence: run.evidence,
  };
}

async function unconfirmed(run: JobRun, missing: number, failed: number): Promise<RunResult> {
  const { job } = run;
  const reason = `${missing} Secret(s) created before the job lack the mark of ${job.keyVersionId} though the sweep reported done (${failed} failed); the state ConfigMap may have been written by someone else`;
  run.log.error('completion not confirmed by the census', { missing, failed });
  await run.store.fail(run.at.invocation, reason, { revokeCompletion: true });
  await run.s.notifier.notify({
    severity: 'critical',
    title: `Re-encryption of ${job.clusterId} not confirmed`,
    text: `${reason}. The job starts again from the beginning on the next rotation-watch tick.`,
    details: { jobId: job.jobId, missing, failed },
  });
  return { status: 'unconfirmed', jobId: job.jobId, invocation: run.at.invocation };
}

/** The budget is spent: save where the job is, and invoke the next invocation with it. */
async function handOver(run: JobRun, report?: SweepReport): Promise<RunResult> {
  const { job, at } = run;
  await run.store.progress(at.phase, at.invocation, at.sweep);
  const next: JobPayload = { ...job, checkpoint: { ...at, invocation: at.invocation + 1 } };
  await run.s.invoker.invokeAsync(run.inv.config.reencrypt.functionName, encodeJobPayload(next), {
    taskId: taskIdFor(job.jobId, job.attempt, at.invocation + 1),
  });
  run.log.info('budget spent: handed over to the next invocation', {
    invocation: at.invocation + 1,
    phase: at.phase,
    visited: report?.total,
  });
  return {
    status: 'continued',
    jobId: job.jobId,
    invocation: at.invocation,
    ...(report ? { report: summary(report) } : {}),
  };
}

const managedRoleEncrypts = (run: JobRun, since: Date) =>
  findManagedRoleEvents(run.s.clients, {
    keyId: run.job.keyId,
    keyVersionId: run.job.keyVersionId,
    ...run.account,
    since,
    maxPages: 2,
  });

/**
 * Secrets created before the job without the suite's mark of its version (annotate; a mark written under the
 * API servers' proof, when they can be read): metadata only, paged.
 */
async function unmarked(run: JobRun): Promise<number> {
  const { reencrypt } = run.inv.config;
  if (strategyFor(run) !== 'annotate') return 0;
  const store = run.cluster.secrets;
  const census = await keyVersionCensus(store, reencrypt.pageSize, run.at.startedAt);
  return census.total - doneFor(census, run.job.keyVersionId, run.evidence.verdict !== 'unproven');
}

/** The report without the failure list beyond a few entries: state ConfigMaps and notifications stay small. */
function summary(r: SweepReport): Partial<SweepReport> {
  const { checkpoint: _c, failures, ...rest } = r;
  return { ...rest, failures: failures.slice(0, 20) };
}

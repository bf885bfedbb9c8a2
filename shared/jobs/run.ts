import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Api } from '@kubernetes/client-node';
import { type Cluster, openCluster } from '../cluster/kube';
import { clusterKubeconfig } from '../cluster/user-kubeconfig';
import { describeKey, type KeyInfo } from '../kms/keys';
import type { Logger } from '../log';
import { keyVersionCensus, kubernetesSecretStore, type SweepReport, sweep } from '../reencrypt';
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
export type RunStatus = 'already-complete' | 'superseded' | 'continued' | 'completed' | 'unconfirmed';

export interface RunResult {
  status: RunStatus;
  jobId: string;
  invocation: number;
  report?: Partial<SweepReport>;
  verified?: boolean;
}

/** What the steps share: the job, where it is, and where it keeps its state. */
interface JobRun {
  job: JobPayload;
  at: Continuation;
  inv: Invocation;
  s: Services;
  log: Logger;
  core: CoreV1Api;
  store: JobStore;
  /** Epoch ms after which no step starts new work (the invocation's deadline less the margin). */
  deadline: number;
  account: { accountId?: string };
}

const EVIDENCE_POLL_MS = 10_000;

export async function runJobInvocation(job: JobPayload, inv: Invocation, s: Services): Promise<RunResult> {
  const cluster = openCluster(await clusterKubeconfig(s.clients, job.clusterId, 60));
  try {
    const run = begin(job, inv, s, cluster);
    const done = await alreadyComplete(run);
    if (done) return done;
    await resumeFromState(run);
    const key = await describeKey(s.clients, job.keyId);
    if (key.primaryKeyVersion !== job.keyVersionId) return superseded(run, key);
    if (run.at.phase === 'waiting-for-adoption' && !(await waitForAdoption(run, key))) return handOver(run);
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

/**
 * Step 1: wait until the control plane encrypts with the new version: ActionTrail evidence of the managed
 * role's Encrypt with it, or the configured delay (a KMS v2 API server polls its plugin about once a
 * minute), or the adoption timeout. False when the budget ran out first (the wait spans invocations).
 */
async function waitForAdoption(run: JobRun, key: KeyInfo): Promise<boolean> {
  const { config } = run.inv;
  const rotatedAt = key.lastRotationDate ? new Date(key.lastRotationDate) : run.at.startedAt;
  for (;;) {
    const evidence = await managedRoleEncrypts(run, new Date(rotatedAt.getTime() - 60_000));
    const waited = run.inv.now() - rotatedAt.getTime();
    if (evidence.length > 0) {
      run.log.info('the control plane encrypts with the new key version', { evidence: evidence[0]?.eventId });
    } else if (waited >= config.reencrypt.adoptionDelayMs) {
      run.log.info('no ActionTrail evidence yet; the configured delay has passed', { waitedMs: waited });
    } else if (run.inv.now() - run.at.startedAt.getTime() > config.reencrypt.adoptionTimeoutMs) {
      run.log.warn('adoption timeout: sweeping without evidence');
    } else {
      const left = run.deadline - run.inv.now();
      if (left <= 0) return false;
      await sleep(Math.min(EVIDENCE_POLL_MS, config.reencrypt.adoptionDelayMs - waited, left));
      continue;
    }
    run.at = { ...run.at, phase: 'sweeping' };
    return true;
  }
}

/** Step 2: the sweep, from the checkpoint, within the budget; progress saved after every page. */
async function sweepStep(run: JobRun): Promise<SweepReport> {
  const { reencrypt } = run.inv.config;
  const report = await sweep({
    store: kubernetesSecretStore(run.core),
    targetKeyVersionId: run.job.keyVersionId,
    strategy: reencrypt.strategy,
    pageSize: reencrypt.pageSize,
    concurrency: reencrypt.concurrency,
    ...(run.at.sweep ? { checkpoint: run.at.sweep } : {}),
    deadline: run.deadline,
    clock: run.inv.now,
    onProgress: (p) => run.log.debug('sweep progress', { ...p.counters, pages: p.pages }),
    onCheckpoint: (c) => run.store.progress('sweeping', run.at.invocation, c),
  });
  run.at = report.complete
    ? { ...run.at, phase: 'verifying', sweep: finalCheckpoint(run, report) }
    : { ...run.at, ...(report.checkpoint ? { sweep: report.checkpoint } : {}) };
  return report;
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
  const verified = (await managedRoleEncrypts(run, since)).length > 0;
  // The census lists every Secret: with the budget spent, it is the next invocation's first step.
  if (run.deadline - run.inv.now() <= 0) return handOver(run, report);
  const counters = run.at.sweep?.counters ?? zeroCounters();
  const missing = await unmarked(run);
  if (missing > counters.failed) return unconfirmed(run, missing, counters.failed);
  await run.store.complete(run.at.invocation, report ? summary(report) : { ...counters });
  await run.s.notifier.notify({
    severity: 'report',
    title: `Secrets of ${job.clusterId} re-encrypted for key version ${job.keyVersionId}`,
    text: `${counters.rewritten} rewritten, ${counters.alreadyCurrent} already current, ${counters.failed} failed, in ${run.at.invocation} invocation(s). ActionTrail ${verified ? 'shows' : 'does not yet show'} the control plane encrypting with this version.`,
    details: { jobId: job.jobId, ...(report ? summary(report) : counters), verified },
  });
  run.log.info('job complete', { verified, invocations: run.at.invocation });
  return {
    status: 'completed',
    jobId: job.jobId,
    invocation: run.at.invocation,
    ...(report ? { report: summary(report) } : {}),
    verified,
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

/** Secrets created before the job without the suite's mark of its version (annotate): metadata only, paged. */
async function unmarked(run: JobRun): Promise<number> {
  const { reencrypt } = run.inv.config;
  if (reencrypt.strategy !== 'annotate') return 0;
  const store = kubernetesSecretStore(run.core);
  const { total, byVersion } = await keyVersionCensus(store, reencrypt.pageSize, run.at.startedAt);
  return total - (byVersion.get(run.job.keyVersionId) ?? 0);
}

/** The report without the failure list beyond a few entries: state ConfigMaps and notifications stay small. */
function summary(r: SweepReport): Partial<SweepReport> {
  const { checkpoint: _c, failures, ...rest } = r;
  return { ...rest, failures: failures.slice(0, 20) };
}

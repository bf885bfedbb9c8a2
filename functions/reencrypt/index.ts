import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Api } from '@kubernetes/client-node';
import { openCluster } from '../../shared/cluster/kube';
import { configMapStateStore } from '../../shared/cluster/state';
import { clusterKubeconfig } from '../../shared/cluster/user-kubeconfig';
import {
  type Checkpoint,
  encodeJobPayload,
  type JobPayload,
  parseJobPayload,
  taskIdFor,
} from '../../shared/events';
import { jobStore } from '../../shared/jobs/store';
import { describeKey } from '../../shared/kms/keys';
import { keyVersionCensus, kubernetesSecretStore, type SweepReport, sweep } from '../../shared/reencrypt';
import { defineHandler, type HandlerDeps, type Invocation } from '../../shared/runtime/handler';
import { type Services, servicesFor } from '../../shared/runtime/services';
import { findManagedRoleEvents } from '../../shared/trail/evidence';

/**
 * reencrypt: one job per (cluster, key, key version). Waits until the control plane encrypts with the new
 * version (ActionTrail evidence of the managed role's Encrypt, or the configured delay: a KMS v2 API server
 * polls its plugin about once a minute), then sweeps within the invocation's time budget. When the budget
 * runs out it saves the checkpoint in the cluster's state ConfigMap and invokes itself again with it.
 * On completion it records the key version, verifies, and reports through the notification channels.
 */
export type ReencryptStatus = 'already-complete' | 'superseded' | 'continued' | 'completed' | 'unconfirmed';

export interface ReencryptResult {
  status: ReencryptStatus;
  jobId: string;
  invocation: number;
  report?: Partial<SweepReport>;
  verified?: boolean;
}

const EVIDENCE_POLL_MS = 10_000;
const zeroCounters = { total: 0, rewritten: 0, alreadyCurrent: 0, gone: 0, failed: 0 };

export async function reencrypt(
  event: unknown,
  inv: Invocation,
  s: Services = servicesFor(inv),
): Promise<ReencryptResult> {
  const job = parseJobPayload(event);
  const log = inv.log.child({ jobId: job.jobId, clusterId: job.clusterId });
  const accountId = inv.config.accountId ?? inv.context.accountId;
  const account = accountId ? { accountId } : {};
  const { config } = inv;
  const deadline = inv.deadline - config.reencrypt.budgetMarginMs;
  const checkpoint: Checkpoint = job.checkpoint ?? {
    targetKeyVersionId: job.keyVersionId,
    invocation: 1,
    startedAt: new Date(),
    phase: 'waiting-for-adoption',
  };
  const kube = openCluster(await clusterKubeconfig(s.clients, job.clusterId, 60));
  try {
    const store = jobStore(
      configMapStateStore(kube.core, config.stateNamespace),
      { jobId: job.jobId, keyId: job.keyId, keyVersionId: job.keyVersionId, attempt: job.attempt ?? 1 },
      { log },
    );
    const current = await store.get();
    // The state ConfigMap says so, and (for annotate) every Secret that predates the job carries the mark.
    const unmarked = (createdBefore: Date) =>
      config.reencrypt.strategy === 'annotate'
        ? unmarkedSecrets(kube.core, job.keyVersionId, createdBefore, config.reencrypt.pageSize)
        : Promise.resolve(0);
    if (current.completedKeyVersion === job.keyVersionId) {
      // Counted up to now, not up to the stored `completedAt`: that time is as forgeable as the claim itself.
      // (Secrets created since the completion lack the mark and are written once more: a few wasted writes.)
      const missing = await unmarked(checkpoint.startedAt);
      if (missing === 0) {
        log.info('already complete for this key version');
        return { status: 'already-complete', jobId: job.jobId, invocation: checkpoint.invocation };
      }
      log.warn('the state says complete, but Secrets lack the mark of this key version: sweeping', {
        missing,
      });
    }
    // FC retried an invocation that died after saving progress: resume from the saved checkpoint when it is
    // further along than the payload's (it is marked for a recheck, so nothing the dead attempt wrote is
    // written again).
    const saved = current.job?.jobId === job.jobId ? current.job.checkpoint : undefined;
    if (
      saved &&
      checkpoint.phase !== 'verifying' &&
      saved.counters.total > (checkpoint.sweep?.counters.total ?? -1)
    ) {
      checkpoint.phase = 'sweeping';
      checkpoint.sweep = saved;
      log.info('resuming from the checkpoint saved in the state ConfigMap', {
        visited: saved.counters.total,
      });
    }
    const handOver = async (next: Checkpoint, report?: SweepReport): Promise<ReencryptResult> => {
      await store.progress(next.phase, next.invocation, next.sweep);
      const payload: JobPayload = { ...job, checkpoint: { ...next, invocation: next.invocation + 1 } };
      await s.invoker.invokeAsync(config.reencrypt.functionName, encodeJobPayload(payload), {
        taskId: taskIdFor(job.jobId, job.attempt, next.invocation + 1),
      });
      log.info('budget spent: handed over to the next invocation', {
        invocation: next.invocation + 1,
        phase: next.phase,
        visited: report?.total,
      });
      return {
        status: 'continued',
        jobId: job.jobId,
        invocation: next.invocation,
        ...(report ? { report: summary(report) } : {}),
      };
    };

    const key = await describeKey(s.clients, job.keyId);
    if (key.primaryKeyVersion !== job.keyVersionId) {
      // A newer rotation happened: its own job (rotation-watch starts it) rewrites everything once more.
      log.info('superseded by a newer key version', { primaryKeyVersion: key.primaryKeyVersion });
      await store.fail(checkpoint.invocation, `superseded by ${key.primaryKeyVersion}`);
      return { status: 'superseded', jobId: job.jobId, invocation: checkpoint.invocation };
    }

    if (checkpoint.phase === 'waiting-for-adoption') {
      const rotatedAt = key.lastRotationDate ? new Date(key.lastRotationDate) : checkpoint.startedAt;
      for (;;) {
        const evidence = await findManagedRoleEvents(s.clients, {
          keyId: job.keyId,
          keyVersionId: job.keyVersionId,
          ...account,
          since: new Date(rotatedAt.getTime() - 60_000),
          maxPages: 2,
        });
        if (evidence.length > 0) {
          log.info('the control plane encrypts with the new key version', { evidence: evidence[0]?.eventId });
          break;
        }
        const waited = inv.now() - rotatedAt.getTime();
        if (waited >= config.reencrypt.adoptionDelayMs) {
          log.info('no ActionTrail evidence yet; the configured delay has passed', { waitedMs: waited });
          break;
        }
        if (inv.now() - checkpoint.startedAt.getTime() > config.reencrypt.adoptionTimeoutMs) {
          log.warn('adoption timeout: sweeping without evidence');
          break;
        }
        // The wait spans invocations: use this one's budget, then hand over.
        const left = deadline - inv.now();
        if (left <= 0) return handOver(checkpoint);
        await sleep(Math.min(EVIDENCE_POLL_MS, config.reencrypt.adoptionDelayMs - waited, left));
      }
      checkpoint.phase = 'sweeping';
    }

    let report: SweepReport | undefined;
    if (checkpoint.phase === 'sweeping') {
      report = await sweep({
        store: kubernetesSecretStore(kube.core),
        targetKeyVersionId: job.keyVersionId,
        strategy: config.reencrypt.strategy,
        pageSize: config.reencrypt.pageSize,
        concurrency: config.reencrypt.concurrency,
        ...(checkpoint.sweep ? { checkpoint: checkpoint.sweep } : {}),
        deadline,
        clock: inv.now,
        onProgress: (p) => log.debug('sweep progress', { ...p.counters, pages: p.pages }),
        onCheckpoint: (c) => store.progress('sweeping', checkpoint.invocation, c),
      });
      if (!report.complete)
        return handOver(
          { ...checkpoint, ...(report.checkpoint ? { sweep: report.checkpoint } : {}) },
          report,
        );
      checkpoint.phase = 'verifying';
    }

    // Verification: ActionTrail shows the control plane encrypting with this version since the rotation.
    const since = key.lastRotationDate
      ? new Date(Date.parse(key.lastRotationDate) - 60_000)
      : checkpoint.startedAt;
    const evidence = await findManagedRoleEvents(s.clients, {
      keyId: job.keyId,
      keyVersionId: job.keyVersionId,
      ...account,
      since,
      maxPages: 2,
    });
    const verified = evidence.length > 0;
    const failed = report?.failed ?? checkpoint.sweep?.counters.failed ?? 0;
    // The census lists every Secret: with the budget spent, it is the next invocation's first step.
    if (deadline - inv.now() <= 0) {
      const { total, rewritten, alreadyCurrent, gone, failed: f } = report ?? { ...zeroCounters, failed };
      const counters = { total, rewritten, alreadyCurrent, gone, failed: f };
      const sweep = {
        targetKeyVersionId: job.keyVersionId,
        strategy: config.reencrypt.strategy,
        namespaceIndex: 0,
        counters,
      };
      return handOver(
        {
          ...checkpoint,
          phase: 'verifying',
          sweep: checkpoint.sweep ? { ...checkpoint.sweep, counters } : sweep,
        },
        report,
      );
    }
    const missing = await unmarked(checkpoint.startedAt);
    if (missing > failed) {
      // A forged or stale checkpoint skipped Secrets: fail the job without its checkpoint, so its next
      // attempt (rotation-watch starts a failed job again) sweeps from the start.
      const reason = `${missing} Secret(s) created before the job lack the mark of ${job.keyVersionId} though the sweep reported done (${failed} failed); the state ConfigMap may have been written by someone else`;
      log.error('completion not confirmed by the census', { missing, failed });
      // Nor may a completion the state claimed for this version stand: rotation-watch would not restart it.
      await store.fail(checkpoint.invocation, reason, { revokeCompletion: true });
      await s.notifier.notify({
        severity: 'critical',
        title: `Re-encryption of ${job.clusterId} not confirmed`,
        text: `${reason}. The job starts again from the beginning on the next rotation-watch tick.`,
        details: { jobId: job.jobId, missing, failed },
      });
      return { status: 'unconfirmed', jobId: job.jobId, invocation: checkpoint.invocation };
    }
    await store.complete(checkpoint.invocation, report ? summary(report) : undefined);
    await s.notifier.notify({
      severity: 'report',
      title: `Secrets of ${job.clusterId} re-encrypted for key version ${job.keyVersionId}`,
      text: `${report?.rewritten ?? 0} rewritten, ${report?.alreadyCurrent ?? 0} already current, ${failed} failed, in ${checkpoint.invocation} invocation(s). ActionTrail ${verified ? 'shows' : 'does not yet show'} the control plane encrypting with this version.`,
      details: { jobId: job.jobId, ...(report ? summary(report) : {}), verified },
    });
    log.info('job complete', { verified, invocations: checkpoint.invocation });
    return {
      status: 'completed',
      jobId: job.jobId,
      invocation: checkpoint.invocation,
      ...(report ? { report: summary(report) } : {}),
      verified,
    };
  } finally {
    kube.close();
  }
}

/** Secrets created before `since` without the suite's mark of `keyVersionId`: metadata only, paged. */
async function unmarkedSecrets(core: CoreV1Api, keyVersionId: string, since: Date, pageSize: number) {
  const { total, byVersion } = await keyVersionCensus(kubernetesSecretStore(core), pageSize, since);
  return total - (byVersion.get(keyVersionId) ?? 0);
}

/** The report without the failure list beyond a few entries: state ConfigMaps and notifications stay small. */
function summary(r: SweepReport): Partial<SweepReport> {
  const { checkpoint: _c, failures, ...rest } = r;
  return { ...rest, failures: failures.slice(0, 20) };
}

export const createHandler = (deps: HandlerDeps = {}) =>
  defineHandler('reencrypt', (event, inv) => reencrypt(event, inv), deps);
export const handler = createHandler();

import type { TargetCluster } from '../cluster/discovery';
import { openCluster } from '../cluster/kube';
import { clusterKubeconfig } from '../cluster/user-kubeconfig';
import type { SentinelConfig } from '../config';
import { normalizeError } from '../errors';
import type { KeyInfo } from '../kms/keys';
import type { Logger } from '../log';
import type { Services } from '../runtime/services';
import { encodeJobPayload, jobIdFor, taskIdFor } from './payload';
import { configMapStateStore } from './state';

export type JobStart = 'started' | 'restarted' | 'already-started' | 'current';

/**
 * Starts the re-encryption job of a cluster for the key's current primary version, at most once: the cluster's
 * state ConfigMap says whether the version is done or a job is under way, and the FC async task id (derived
 * from cluster, key, version and attempt) makes concurrent starts collide. A job that ended without completing
 * (every invocation failed, or it stopped saving progress for `staleAfter`) is started again as the next
 * attempt, from the checkpoint it saved.
 */
export async function startReencryptJob(
  s: Pick<Services, 'clients' | 'invoker'>,
  config: Pick<SentinelConfig, 'stateNamespace' | 'reencrypt'>,
  cluster: Pick<TargetCluster, 'clusterId'>,
  key: Pick<KeyInfo, 'keyId' | 'primaryKeyVersion'>,
  reason: string,
  log: Logger,
  now = Date.now(),
): Promise<{ outcome: JobStart; jobId: string; attempt?: number }> {
  const jobId = jobIdFor(cluster.clusterId, key.keyId, key.primaryKeyVersion);
  const kube = openCluster(await clusterKubeconfig(s.clients, cluster.clusterId, 15));
  let attempt: number;
  try {
    const store = configMapStateStore(kube.core, config.stateNamespace);
    const state = await store.load();
    if (state.completedKeyVersion === key.primaryKeyVersion) return { outcome: 'current', jobId };
    const prior = state.job?.jobId === jobId ? state.job : undefined;
    if (
      prior &&
      prior.phase !== 'failed' &&
      now - Date.parse(prior.updatedAt) < config.reencrypt.staleAfterMs
    )
      return { outcome: 'already-started', jobId };
    attempt = prior ? (prior.attempt ?? 1) + 1 : 1;
    const claim = {
      jobId,
      keyId: key.keyId,
      keyVersionId: key.primaryKeyVersion,
      phase: 'queued' as const,
      attempt,
      invocation: 1,
      startedAt: new Date(now).toISOString(),
      updatedAt: new Date(now).toISOString(),
      ...(prior?.checkpoint ? { checkpoint: prior.checkpoint } : {}),
    };
    try {
      // Claimed in the state first (a concurrent starter's write conflicts), keeping a dead attempt's checkpoint.
      await store.save({ ...state, job: claim });
    } catch (err) {
      if (normalizeError(err).statusCode === 409) return { outcome: 'already-started', jobId };
      throw err;
    }
    const payload = encodeJobPayload({
      version: 1,
      jobId,
      clusterId: cluster.clusterId,
      keyId: key.keyId,
      keyVersionId: key.primaryKeyVersion,
      requestedAt: new Date(now),
      reason,
      ...(attempt > 1 ? { attempt } : {}),
    });
    try {
      await s.invoker.invokeAsync(config.reencrypt.functionName, payload, {
        taskId: taskIdFor(jobId, attempt),
      });
    } catch (err) {
      if (normalizeError(err).statusCode === 409) return { outcome: 'already-started', jobId, attempt };
      // Nothing started: say so in the state, so the next tick tries again at once instead of waiting it out.
      await store.save({ ...state, job: { ...claim, phase: 'failed' } }).catch(() => undefined);
      throw err;
    }
  } finally {
    kube.close();
  }
  log.info(attempt > 1 ? 're-encryption job started again' : 're-encryption job started', {
    jobId,
    attempt,
    clusterId: cluster.clusterId,
    keyId: key.keyId,
    keyVersionId: key.primaryKeyVersion,
  });
  return { outcome: attempt > 1 ? 'restarted' : 'started', jobId, attempt };
}

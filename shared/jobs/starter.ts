import type { TargetCluster } from '../cluster/discovery';
import { type Cluster, openCluster } from '../cluster/kube';
import { readSealingEvidence, type SealingEvidence, unproven } from '../cluster/sealing';
import { clusterKubeconfig } from '../cluster/user-kubeconfig';
import type { SentinelConfig } from '../config';
import { normalizeError } from '../errors';
import type { KeyInfo } from '../kms/keys';
import type { Logger } from '../log';
import type { Services } from '../runtime/services';
import type { JobStart } from './answers';
import { encodeJobPayload, jobIdFor, taskIdFor } from './payload';
import { type ClusterState, configMapStateStore, type StateStore } from './state';

export type { JobStart } from './answers';

type Config = Pick<SentinelConfig, 'stateNamespace' | 'reencrypt'>;
type Key = Pick<KeyInfo, 'keyId' | 'primaryKeyVersion' | 'lastRotationDate'>;

/**
 * Starts the re-encryption job of a cluster for the key's current primary version, at most once: the cluster's
 * state ConfigMap says whether the version is done or a job is under way, and the FC async task id (derived
 * from cluster, key, version and attempt) makes concurrent starts collide. A job that ended without completing
 * (every invocation failed, or it stopped saving progress for `staleAfter`) is started again as the next
 * attempt, from the checkpoint it saved; so is a job waiting for a new seed once the API servers have made
 * one, and a version completed without proof once the API servers can prove a rewrite would take effect.
 */
export async function startReencryptJob(
  s: Pick<Services, 'clients' | 'invoker'>,
  config: Config,
  cluster: Pick<TargetCluster, 'clusterId'>,
  key: Key,
  reason: string,
  log: Logger,
  now = Date.now(),
): Promise<{
  outcome: JobStart;
  jobId: string;
  attempt?: number;
  /**
   * `current` and nothing left to prove: completed under the API servers' proof, or proof is not asked for
   * (`SENTINEL_REENCRYPT_PROOF=actiontrail`). Only such a cluster may be vouched for by the done record; a
   * completion without proof is read again each tick, so a later proof (or its refutation) is acted on.
   */
  settled?: boolean;
}> {
  const jobId = jobIdFor(cluster.clusterId, key.keyId, key.primaryKeyVersion);
  const kube = openCluster(await clusterKubeconfig(s.clients, cluster.clusterId, 15));
  let attempt: number;
  try {
    const store = configMapStateStore(kube.core, config.stateNamespace);
    const state = await store.load();
    const job = { jobId, keyVersionId: key.primaryKeyVersion };
    const decision = await decide(state, job, config, now, () => evidenceNow(kube, config, key));
    if (typeof decision === 'string') {
      const settled =
        decision === 'current' && (state.completedProof === 'proven' || config.reencrypt.proof !== 'metrics');
      return { outcome: decision, jobId, ...(settled ? { settled } : {}) };
    }
    attempt = decision.attempt;
    const started = await claimAndInvoke(s, config, store, state, {
      cluster,
      key,
      jobId,
      attempt,
      reason,
      now,
    });
    if (started !== 'started') return { outcome: started, jobId, attempt };
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

/** Whether to start the job now (as which attempt), or why not. */
async function decide(
  state: ClusterState,
  job: { jobId: string; keyVersionId: string },
  config: Config,
  now: number,
  evidence: () => Promise<SealingEvidence>,
): Promise<JobStart | { attempt: number }> {
  const prior = state.job?.jobId === job.jobId ? state.job : undefined;
  const next = { attempt: prior ? (prior.attempt ?? 1) + 1 : 1 };
  const underWay =
    prior !== undefined &&
    !['failed', 'completed', 'waiting-for-new-seed'].includes(prior.phase) &&
    now - Date.parse(prior.updatedAt) < config.reencrypt.staleAfterMs;
  if (state.completedKeyVersion === job.keyVersionId) {
    if (state.completedProof === 'proven') return 'current';
    // Completed without the API servers' proof (ActionTrail only, or before the suite read them).
    const e = await evidence();
    if (e.verdict === 'unproven') return 'current';
    if (e.verdict === 'not-effective') return 'waiting-for-new-seed';
    return underWay ? 'already-started' : next;
  }
  if (prior?.phase === 'waiting-for-new-seed')
    return (await evidence()).verdict === 'not-effective' ? 'waiting-for-new-seed' : next;
  return underWay ? 'already-started' : next;
}

/** The API servers' evidence for the key's current rotation, as the job reads it. */
async function evidenceNow(kube: Cluster, config: Config, key: Key): Promise<SealingEvidence> {
  if (config.reencrypt.proof !== 'metrics') return unproven('SENTINEL_REENCRYPT_PROOF is actiontrail');
  try {
    return await readSealingEvidence(kube.getRaw, key, await kube.apiServerIdentities());
  } catch (err) {
    throw normalizeError(err, { service: 'kubernetes', operation: 'GET /metrics' });
  }
}

interface Start {
  cluster: Pick<TargetCluster, 'clusterId'>;
  key: Key;
  jobId: string;
  attempt: number;
  reason: string;
  now: number;
}

/** Claims the job in the state (a concurrent starter's write conflicts), then invokes its first invocation. */
async function claimAndInvoke(
  s: Pick<Services, 'invoker'>,
  config: Config,
  store: StateStore,
  state: ClusterState,
  o: Start,
): Promise<'started' | 'already-started'> {
  const prior = state.job?.jobId === o.jobId ? state.job : undefined;
  const at = new Date(o.now).toISOString();
  const claim = {
    jobId: o.jobId,
    keyId: o.key.keyId,
    keyVersionId: o.key.primaryKeyVersion,
    phase: 'queued' as const,
    attempt: o.attempt,
    invocation: 1,
    startedAt: at,
    updatedAt: at,
    // A dead attempt's checkpoint is kept (a job waiting for a new seed, or completed, has none).
    ...(prior?.checkpoint ? { checkpoint: prior.checkpoint } : {}),
  };
  try {
    await store.save({ ...state, job: claim });
  } catch (err) {
    if (normalizeError(err).statusCode === 409) return 'already-started';
    throw err;
  }
  const payload = encodeJobPayload({
    version: 1,
    jobId: o.jobId,
    clusterId: o.cluster.clusterId,
    keyId: o.key.keyId,
    keyVersionId: o.key.primaryKeyVersion,
    requestedAt: new Date(o.now),
    reason: o.reason,
    ...(o.attempt > 1 ? { attempt: o.attempt } : {}),
  });
  try {
    await s.invoker.invokeAsync(config.reencrypt.functionName, payload, {
      taskId: taskIdFor(o.jobId, o.attempt),
    });
  } catch (err) {
    if (normalizeError(err).statusCode === 409) return 'already-started';
    // Nothing started: say so in the state, so the next tick tries again at once instead of waiting it out.
    await store.save({ ...state, job: { ...claim, phase: 'failed' } }).catch(() => undefined);
    throw err;
  }
  return 'started';
}

import type { TargetCluster } from '../cluster/discovery';
import { proofSettings, readSealingEvidence, type SealingEvidence } from '../cluster/sealing';
import { withCluster } from '../cluster/user-kubeconfig';
import type { SentinelConfig } from '../config';
import { normalizeError } from '../errors';
import type { KeyInfo } from '../kms/keys';
import type { Logger } from '../log';
import type { Services } from '../runtime/services';
import type { JobStart } from './answers';
import { encodeJobPayload, jobIdFor, taskIdFor } from './payload';
import { type Claim, type ClusterState, clusterStoreOf, isUnderWay } from './store';

export type { JobStart } from './answers';

type Config = Pick<SentinelConfig, 'stateNamespace' | 'reencrypt'>;
type Key = Pick<KeyInfo, 'keyId' | 'primaryKeyVersion' | 'lastRotationDate'>;

export interface StartedJob {
  outcome: JobStart;
  jobId: string;
  attempt?: number;
  /**
   * `current` and nothing left to prove: completed under the API servers' proof, or proof is not asked for
   * (`SENTINEL_REENCRYPT_PROOF=actiontrail`). Only such a cluster may be vouched for by the done record; a
   * completion without proof is read again each tick, so a later proof (or its refutation) is acted on.
   */
  settled?: boolean;
}

/**
 * Starts the re-encryption job of a cluster for the key's current primary version, at most once: the cluster's
 * state (through the job store) says whether the version is done or a job is under way, and the FC async task
 * id (derived from cluster, key, version and attempt) makes concurrent starts collide. A job that ended
 * without completing, or went stale, is started again as the next attempt from the checkpoint it saved; so is
 * a job waiting for a new seed once the API servers have made one, and a version completed without proof once
 * the API servers can prove a rewrite would take effect.
 */
export async function startReencryptJob(
  services: Pick<Services, 'clients' | 'invoker'>,
  config: Config,
  cluster: Pick<TargetCluster, 'clusterId'>,
  key: Key,
  reason: string,
  log: Logger,
  now = Date.now(),
): Promise<StartedJob> {
  const jobId = jobIdFor(cluster.clusterId, key.keyId, key.primaryKeyVersion);
  const started = await withCluster(services.clients, cluster.clusterId, 15, async (kube) => {
    const store = clusterStoreOf(kube.core, config, log, () => now);
    let state = await store.read();
    // Encryption was seen off, and the cluster is a target with encryption on now: on again since about now
    // (a mark written before is not trusted; the completion was dropped when it went off).
    if (state.encryptionOffSince) {
      log.info('Secret encryption is on again: marks written before now are not trusted', {
        clusterId: cluster.clusterId,
        offSince: state.encryptionOffSince,
      });
      await store.recordEncryptionOn(now);
      state = await store.read();
    }
    const decision = await startDecision(
      state,
      { jobId, keyVersionId: key.primaryKeyVersion },
      config,
      now,
      () => readSealingEvidence(kube, key, proofSettings(config.reencrypt)),
    );
    if (typeof decision === 'string') {
      const settled =
        (decision === 'current' && state.completedProof === 'proven') ||
        (['current', 'rewritten-unproven'].includes(decision) && config.reencrypt.proof !== 'metrics');
      return { outcome: decision, jobId, ...(settled ? { settled } : {}) };
    }
    const claim: Claim = {
      jobId,
      keyId: key.keyId,
      keyVersionId: key.primaryKeyVersion,
      attempt: decision.attempt,
      at: now,
    };
    if ((await store.claim(claim)) === 'already-started')
      return { outcome: 'already-started' as const, jobId };
    try {
      await invokeFirst(services, config, cluster, claim, reason);
    } catch (err) {
      if (normalizeError(err).statusCode === 409) return { outcome: 'already-started' as const, jobId };
      await store.release(claim, `the first invocation could not be started: ${normalizeError(err).message}`);
      throw err;
    }
    return {
      outcome: claim.attempt > 1 ? ('restarted' as const) : ('started' as const),
      jobId,
      attempt: claim.attempt,
    };
  });
  if (started.outcome === 'started' || started.outcome === 'restarted')
    log.info(
      started.outcome === 'restarted' ? 're-encryption job started again' : 're-encryption job started',
      {
        jobId,
        attempt: started.attempt,
        clusterId: cluster.clusterId,
        keyId: key.keyId,
        keyVersionId: key.primaryKeyVersion,
      },
    );
  return started;
}

/** Whether to start the job now (as which attempt), or why not. */
async function startDecision(
  state: ClusterState,
  job: { jobId: string; keyVersionId: string },
  config: Config,
  now: number,
  evidence: () => Promise<SealingEvidence>,
): Promise<JobStart | { attempt: number }> {
  const prior = state.job?.jobId === job.jobId ? state.job : undefined;
  const next = { attempt: prior ? (prior.attempt ?? 1) + 1 : 1 };
  const underWay = prior !== undefined && isUnderWay(prior, now, config.reencrypt.staleAfterMs);
  if (state.completedKeyVersion === job.keyVersionId) {
    if (state.completedProof === 'proven') return 'current';
    // Completed without the API servers' proof (they could not be read, or before the suite read them).
    const e = await evidence();
    // Rewritten, and still nothing proves it: not `current`; the job runs again once proof can be had.
    if (e.verdict === 'unproven') return 'rewritten-unproven';
    if (e.verdict === 'not-effective') return 'waiting-for-new-seed';
    return underWay ? 'already-started' : next;
  }
  if (prior?.phase === 'waiting-for-new-seed')
    return (await evidence()).verdict === 'not-effective' ? 'waiting-for-new-seed' : next;
  return underWay ? 'already-started' : next;
}

/** The job's first invocation; FC refuses a task id it has seen (a 409: another starter got there). */
async function invokeFirst(
  services: Pick<Services, 'invoker'>,
  config: Config,
  cluster: Pick<TargetCluster, 'clusterId'>,
  claim: Claim,
  reason: string,
): Promise<void> {
  const payload = encodeJobPayload({
    version: 1,
    jobId: claim.jobId,
    clusterId: cluster.clusterId,
    keyId: claim.keyId,
    keyVersionId: claim.keyVersionId,
    requestedAt: new Date(claim.at),
    reason,
    ...(claim.attempt > 1 ? { attempt: claim.attempt } : {}),
  });
  await services.invoker.invokeAsync(config.reencrypt.functionName, payload, {
    taskId: taskIdFor(claim.jobId, claim.attempt),
  });
}

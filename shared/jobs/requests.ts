import type { TargetCluster } from '../cluster/discovery';
import { proofSettings, readSealingEvidence } from '../cluster/sealing';
import { withCluster } from '../cluster/user-kubeconfig';
import type { SentinelConfig } from '../config';
import type { JobRequest } from '../events/rotation-watch';
import { describeKey } from '../kms/keys';
import type { Logger } from '../log';
import { estimateSweep } from '../reencrypt/estimate';
import type { Services } from '../runtime/services';
import { watchedTargets } from '../trail/watched';
import type { EstimateAnswer, StartAnswer, StatusAnswer } from './answers';
import { jobIdPrefix } from './payload';
import { startReencryptJob } from './starter';
import { clusterStoreOf } from './store';

/**
 * The webhook's job requests, answered where the kubeconfigs are (rotation-watch): start a cluster's job for
 * its key's current version through the one starter, or read a job's true status from its cluster's state.
 */
/** What rotation-watch answers the webhook's requests with (this file's and `encryption/requests.ts`'s). */
export type Deps = Pick<Services, 'clients' | 'invoker'>;
export type Config = Pick<
  SentinelConfig,
  'clusters' | 'clusterKeys' | 'keys' | 'stateNamespace' | 'reencrypt'
>;

export async function answerJobRequest(
  request: Exclude<JobRequest, { kind: 'enable-encryption' | 'cluster-status' }>,
  services: Deps,
  config: Config,
  log: Logger,
  /** Epoch ms: an estimate's listing waits for no retry past it (the invocation's deadline less its margin). */
  deadline?: number,
): Promise<StartAnswer | StatusAnswer | EstimateAnswer> {
  const { clusters } = await watchedTargets(services.clients, config, undefined, log);
  if (request.kind === 'estimate')
    return estimateFor(request.clusterId, clusters, services, config, deadline);
  if (request.kind === 'start-job') {
    const cluster = clusters.find((c) => c.clusterId === request.clusterId);
    if (!cluster) return { kind: 'start-job', outcome: 'not-a-target', clusterId: request.clusterId };
    if (!cluster.encryptionEnabled || !cluster.keyId)
      return { kind: 'start-job', outcome: 'encryption-off', clusterId: request.clusterId };
    const key = await describeKey(services.clients, cluster.keyId);
    const reason = `webhook${request.reason ? `: ${request.reason}` : ''}`;
    const started = await startReencryptJob(services, config, cluster, key, reason, log);
    return {
      kind: 'start-job',
      clusterId: cluster.clusterId,
      keyId: key.keyId,
      keyVersionId: key.primaryKeyVersion,
      ...started,
    };
  }
  for (const cluster of clusters.filter((c) => request.jobId.startsWith(jobIdPrefix(c.clusterId)))) {
    const status = await withCluster(services.clients, cluster.clusterId, 15, (kube) =>
      clusterStoreOf(kube.core, config, log).status(request.jobId, cluster.clusterId),
    );
    if (status) return { kind: 'job-status', found: true, status };
  }
  return { kind: 'job-status', found: false };
}

/** The dry run of a cluster's sweep for its key's current version (shared/reencrypt/estimate.ts). */
async function estimateFor(
  clusterId: string,
  clusters: TargetCluster[],
  services: Deps,
  config: Config,
  deadline: number | undefined,
): Promise<EstimateAnswer> {
  const cluster = clusters.find((c) => c.clusterId === clusterId);
  if (!cluster) return { kind: 'estimate', outcome: 'not-a-target', clusterId };
  if (!cluster.encryptionEnabled || !cluster.keyId)
    return { kind: 'estimate', outcome: 'encryption-off', clusterId };
  const key = await describeKey(services.clients, cluster.keyId);
  const estimate = await withCluster(services.clients, clusterId, 15, async (kube) => {
    const apiServers = (await kube.apiServerIdentities())?.length;
    // As the job counts: only marks written under proof are done where the API servers prove a re-seal.
    const evidence = await readSealingEvidence(kube, key, proofSettings(config.reencrypt));
    return estimateSweep(kube.secrets, {
      targetKeyVersionId: key.primaryKeyVersion,
      requireProof: evidence.verdict === 'effective',
      pageSize: config.reencrypt.pageSize,
      ...(key.lastRotationDate ? { rotatedAt: new Date(key.lastRotationDate) } : {}),
      ...(apiServers ? { apiServers } : {}),
      ...(deadline === undefined ? {} : { deadline }),
    });
  });
  return {
    kind: 'estimate',
    outcome: 'estimated',
    clusterId,
    keyId: key.keyId,
    keyVersionId: key.primaryKeyVersion,
    estimate,
  };
}

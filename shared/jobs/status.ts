import type { CloudClients } from '../cloud/clients';
import type { TargetCluster } from '../cluster/discovery';
import type { Cluster } from '../cluster/kube';
import { proofSettings, readSealingEvidence, type SealingEvidence } from '../cluster/sealing';
import { withCluster } from '../cluster/user-kubeconfig';
import type { SentinelConfig } from '../config';
import { normalizeError } from '../errors';
import { describeKey, type KeyInfo } from '../kms/keys';
import type { Logger } from '../log';
import { keyVersionCensus } from '../reencrypt/secrets-api';
import { watchedTargets } from '../trail/watched';
import { type ClusterStatus, type ClusterStatusAnswer, clusterStatusSchema } from './answers';
import { clusterStoreOf, type LoadedState, statusOf } from './store';

/**
 * Where a cluster stands, on one screen (`ack-kms-sentinel status`, the webhook's `GET /v1/clusters/{id}/status`),
 * as k3s's `secrets-encrypt status` answers for its clusters: encryption and its key, the key's primary version
 * and rotation policy, the API servers' verdict (the one proof policy, `readSealingEvidence`), the last job as the
 * job store derives it (stale included), and how many Secrets carry the mark of the key's current version. Reads
 * only: DescribeKey, the cluster's state ConfigMap, `/metrics`, and Secret metadata.
 */
export type StatusCluster = Pick<Cluster, 'core' | 'getRaw' | 'apiServerIdentities' | 'secrets'>;

export interface StatusDeps {
  clients: Pick<CloudClients, 'kmsRpc'>;
  /** Runs `use` on the cluster (a short-lived kubeconfig of the suite's identity, or the CLI's own). */
  withCluster<T>(clusterId: string, use: (cluster: StatusCluster) => Promise<T>): Promise<T>;
  log: Logger;
  now?: () => number;
}

export type StatusConfig = Pick<SentinelConfig, 'stateNamespace' | 'reencrypt'>;

/** What the cluster itself says: the state ConfigMap, the API servers' evidence, the coverage census. */
interface Inside {
  state: LoadedState;
  evidence?: SealingEvidence;
  census?: { secrets: number; marked: number; proven: number };
}

async function readInside(
  cluster: StatusCluster,
  key: KeyInfo | undefined,
  config: StatusConfig,
  deps: StatusDeps,
): Promise<Inside> {
  const state = await clusterStoreOf(cluster.core, config, deps.log, deps.now).read();
  if (!key) return { state };
  const evidence = await readSealingEvidence(cluster, key, proofSettings(config.reencrypt));
  const census = await keyVersionCensus(cluster.secrets, {
    pageSize: config.reencrypt.pageSize || undefined,
    ...(state.marksSince ? { marksSince: new Date(state.marksSince) } : {}),
  });
  const v = key.primaryKeyVersion;
  return {
    state,
    evidence,
    census: {
      secrets: census.total,
      marked: census.byVersion.get(v) ?? 0,
      proven: census.provenByVersion.get(v) ?? 0,
    },
  };
}

/** The status of one cluster of the deployment; a part that cannot be read is a reason for a person to look. */
export async function clusterStatus(
  cluster: TargetCluster,
  deps: StatusDeps,
  config: StatusConfig,
): Promise<ClusterStatus> {
  const now = (deps.now ?? Date.now)();
  const key =
    cluster.encryptionEnabled && cluster.keyId ? await describeKey(deps.clients, cluster.keyId) : undefined;
  let inside: Inside | undefined;
  let unreachable: string | undefined;
  try {
    inside = await deps.withCluster(cluster.clusterId, (c) => readInside(c, key, config, deps));
  } catch (err) {
    unreachable = normalizeError(err).message;
  }
  const state = inside?.state ?? {};
  const record = state.job;
  const job = record && statusOf(state, record.jobId, cluster.clusterId, now, config.reencrypt.staleAfterMs);
  const census = inside?.census;
  const status: ClusterStatus = {
    clusterId: cluster.clusterId,
    ...(cluster.name ? { name: cluster.name } : {}),
    verdict: 'ok',
    reasons: [],
    encryption: { enabled: cluster.encryptionEnabled, ...(cluster.keyId ? { keyId: cluster.keyId } : {}) },
    ...(key ? { key } : {}),
    ...(inside?.evidence
      ? { apiServers: { verdict: inside.evidence.verdict, reason: inside.evidence.reason } }
      : {}),
    ...(job && record
      ? {
          job: {
            ...job,
            keyVersionId: record.keyVersionId,
            ageSeconds: Math.max(0, Math.round((now - Date.parse(record.updatedAt)) / 1000)),
          },
        }
      : {}),
    ...(state.completedKeyVersion
      ? {
          completed: {
            keyVersionId: state.completedKeyVersion,
            ...(state.completedAt ? { at: state.completedAt } : {}),
            proof: state.completedProof ?? 'unproven',
          },
        }
      : {}),
    ...(census && key
      ? {
          coverage: {
            keyVersionId: key.primaryKeyVersion,
            ...census,
            percent: census.secrets ? Math.floor((census.marked * 100) / census.secrets) : 100,
          },
        }
      : {}),
  };
  // As the schema has it (KMS's ARN and other extra fields dropped): the CLI shows what the webhook answers.
  return clusterStatusSchema.parse(judged(status, { unreachable, unreadable: state.unreadable }));
}

/** The verdict: `attention` when anything needs a person, `unproven` when the work is done but not proven. */
function judged(s: ClusterStatus, problems: { unreachable?: string; unreadable?: string }): ClusterStatus {
  const attention: string[] = [];
  const unproven: string[] = [];
  if (problems.unreachable) attention.push(`the cluster cannot be read: ${problems.unreachable}`);
  if (problems.unreadable) attention.push(`its state cannot be used: ${problems.unreadable}`);
  if (!s.encryption.enabled) attention.push('Secret encryption is off: Secrets are stored in plaintext');
  if (s.key && s.key.keyState !== 'Enabled')
    attention.push(
      `the key ${s.key.keyId} is ${s.key.keyState}: the API servers cannot seal or open Secrets`,
    );
  if (s.key && s.key.deletionProtection !== 'Enabled')
    attention.push(`the key ${s.key.keyId} has no deletion protection`);
  if (s.apiServers?.verdict === 'not-effective') attention.push(`API servers: ${s.apiServers.reason}`);
  if (s.apiServers?.verdict === 'unproven') unproven.push(`API servers: ${s.apiServers.reason}`);
  const job = s.job;
  if (job?.stale || job?.phase === 'failed')
    attention.push(`job ${job.jobId}: ${job.lastError ?? job.phase}`);
  const current = s.key?.primaryKeyVersion;
  const underWay = job && !job.stale && !['completed', 'failed'].includes(job.phase);
  if (current && s.completed?.keyVersionId !== current && !underWay && !problems.unreachable)
    attention.push(
      `no completed re-encryption for the key's current version ${current}: rotation-watch's next tick starts one, or run \`ack-kms-sentinel reencrypt\``,
    );
  if (current && s.completed?.keyVersionId === current && s.completed.proof === 'unproven')
    unproven.push('the last re-encryption rewrote every Secret, but nothing proved it re-sealed them');
  const verdict = attention.length ? 'attention' : unproven.length ? 'unproven' : 'ok';
  return { ...s, verdict, reasons: [...attention, ...unproven] };
}

/**
 * The webhook's `GET /v1/clusters/{id}/status`, answered where the kubeconfigs are (rotation-watch): a cluster
 * of the deployment's targets, read with a short-lived kubeconfig of the suite's identity.
 */
export async function answerStatusRequest(
  request: { kind: 'cluster-status'; clusterId: string },
  services: Pick<CloudClients, 'kmsRpc' | 'csRoa'>,
  config: StatusConfig & Pick<SentinelConfig, 'clusters' | 'clusterKeys' | 'keys'>,
  log: Logger,
): Promise<ClusterStatusAnswer> {
  const { clusters } = await watchedTargets(services, config, undefined, log);
  const cluster = clusters.find((c) => c.clusterId === request.clusterId);
  if (!cluster) return { kind: 'cluster-status', found: false, clusterId: request.clusterId };
  const status = await clusterStatus(
    cluster,
    {
      clients: services,
      withCluster: (clusterId, use) => withCluster(services, clusterId, 15, use),
      log,
    },
    config,
  );
  return { kind: 'cluster-status', found: true, status };
}

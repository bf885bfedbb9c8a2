import type { TargetCluster } from '../cluster/discovery';
import { openCluster } from '../cluster/kube';
import { readSealingEvidence } from '../cluster/sealing';
import { clusterKubeconfig } from '../cluster/user-kubeconfig';
import type { SentinelConfig } from '../config';
import { enableEncryption } from '../encryption/enable';
import type { PreflightCheck } from '../encryption/preflight';
import { normalizeError } from '../errors';
import type { JobRequest } from '../events/rotation-watch';
import { describeKey } from '../kms/keys';
import type { Logger } from '../log';
import { estimateSweep } from '../reencrypt/estimate';
import type { Services } from '../runtime/services';
import { type WatchedTargets, watchedTargets } from '../trail/watched';
import type { EnableAnswer, EstimateAnswer, JobStatus, StartAnswer, StatusAnswer } from './answers';
import { jobIdFor, jobIdPrefix } from './payload';
import { startReencryptJob } from './starter';
import { type ClusterState, configMapStateStore } from './state';

/**
 * The webhook's job requests, answered where the kubeconfigs are (rotation-watch): start a cluster's job for
 * its key's current version through the one starter, or read a job's true status from its cluster's state.
 */
type Deps = Pick<Services, 'clients' | 'invoker'>;
type Config = Pick<SentinelConfig, 'clusters' | 'clusterKeys' | 'keys' | 'stateNamespace' | 'reencrypt'>;

export async function answerJobRequest(
  request: JobRequest,
  s: Deps,
  config: Config,
  log: Logger,
  /** Epoch ms: an estimate's listing waits for no retry past it (the invocation's deadline less its margin). */
  deadline?: number,
): Promise<StartAnswer | StatusAnswer | EstimateAnswer | EnableAnswer> {
  const targets = await watchedTargets(s.clients, config, undefined, log);
  const { clusters } = targets;
  if (request.kind === 'estimate') return estimateFor(request.clusterId, clusters, s, config, deadline);
  if (request.kind === 'enable-encryption') return enableFor(request, targets, s, config, log);
  if (request.kind === 'start-job') {
    const cluster = clusters.find((c) => c.clusterId === request.clusterId);
    if (!cluster) return { kind: 'start-job', outcome: 'not-a-target', clusterId: request.clusterId };
    if (!cluster.encryptionEnabled || !cluster.keyId)
      return { kind: 'start-job', outcome: 'encryption-off', clusterId: request.clusterId };
    const key = await describeKey(s.clients, cluster.keyId);
    const reason = `webhook${request.reason ? `: ${request.reason}` : ''}`;
    const started = await startReencryptJob(s, config, cluster, key, reason, log);
    return {
      kind: 'start-job',
      clusterId: cluster.clusterId,
      keyId: key.keyId,
      keyVersionId: key.primaryKeyVersion,
      ...started,
    };
  }
  for (const cluster of clusters.filter((c) => request.jobId.startsWith(jobIdPrefix(c.clusterId)))) {
    const kube = openCluster(await clusterKubeconfig(s.clients, cluster.clusterId, 15));
    try {
      const state = await configMapStateStore(kube.core, config.stateNamespace).load();
      const status = statusOf(state, request.jobId, cluster.clusterId);
      if (status) return { kind: 'job-status', found: true, status };
    } finally {
      kube.close();
    }
  }
  return { kind: 'job-status', found: false };
}

/**
 * The webhook's enable: pre-flight checks and UpdateKMSEncryption (cs:UpdateKMSEncryption is in
 * rotation-watch's optional policy only); the regular job, started by the next tick once the cluster runs
 * with encryption on, sweeps and proves the rest.
 */
async function enableFor(
  request: Extract<JobRequest, { kind: 'enable-encryption' }>,
  targets: WatchedTargets,
  s: Deps,
  config: Config,
  log: Logger,
): Promise<EnableAnswer> {
  const { clusterId } = request;
  if (!targets.clusters.some((c) => c.clusterId === clusterId))
    return { kind: 'enable-encryption', outcome: 'not-a-target', clusterId };
  const unwatched = await unwatchedKey(request.keyId, targets, s, config);
  if (unwatched)
    return {
      kind: 'enable-encryption',
      clusterId,
      keyId: request.keyId,
      outcome: 'checks-failed',
      checks: [unwatched],
      steps: [],
    };
  const report = await enableEncryption(
    { clients: s.clients, openCluster: () => Promise.reject(new Error('the switch reads no cluster')) },
    {
      clusterId,
      keyId: request.keyId,
      dryRun: request.dryRun === true,
      protectKey: request.protectKey === true,
      until: 'switch',
    },
  );
  const outcome = report.outcome === 'enabled' ? 'switched' : report.outcome;
  if (outcome === 'switched') await forgetCompletion(s, config, clusterId, log);
  const { resume: _r, sweep: _s, census: _c, proof: _p, ...rest } = report;
  return {
    kind: 'enable-encryption',
    ...rest,
    outcome,
    ...(report.keyVersionId && ['switched', 'already-enabled'].includes(outcome)
      ? { jobId: jobIdFor(clusterId, report.keyId, report.keyVersionId) }
      : {}),
  };
}

/** With explicit keys, a key no tick watches would get no job after the switch: refused before it. */
async function unwatchedKey(
  keyRef: string,
  targets: WatchedTargets,
  s: Deps,
  config: Config,
): Promise<PreflightCheck | undefined> {
  if (config.keys.mode !== 'explicit') return undefined;
  const keyId = await describeKey(s.clients, keyRef).then(
    (k) => k.keyId,
    () => keyRef,
  );
  if (targets.rotationKeys.includes(keyId)) return undefined;
  return {
    id: 'watched-key',
    title: 'The key is one this deployment watches',
    status: 'fail',
    evidence: `${keyId} is not in SENTINEL_KMS_KEY_IDS: no rotation-watch tick would start its job`,
    remedy: 'Add the key to SENTINEL_KMS_KEY_IDS (or use one listed there), then ask again.',
  };
}

/**
 * A completion recorded before encryption was turned off says nothing now (Secrets written since are
 * plaintext): it is forgotten, so the next tick starts the job. Best effort: a cluster not reachable yet
 * (it is restarting) is logged, and its job is then started by the next full check.
 */
async function forgetCompletion(s: Deps, config: Config, clusterId: string, log: Logger): Promise<void> {
  try {
    const kube = openCluster(await clusterKubeconfig(s.clients, clusterId, 15));
    try {
      const store = configMapStateStore(kube.core, config.stateNamespace);
      const { completedKeyVersion: _v, completedAt: _a, completedProof: _p, ...rest } = await store.load();
      if (_v !== undefined) await store.save(rest);
    } finally {
      kube.close();
    }
  } catch (err) {
    log.warn('could not clear the earlier completion after the switch', {
      clusterId,
      error: normalizeError(err).toJSON(),
    });
  }
}

/** The dry run of a cluster's sweep for its key's current version (shared/reencrypt/estimate.ts). */
async function estimateFor(
  clusterId: string,
  clusters: TargetCluster[],
  s: Deps,
  config: Config,
  deadline: number | undefined,
): Promise<EstimateAnswer> {
  const cluster = clusters.find((c) => c.clusterId === clusterId);
  if (!cluster) return { kind: 'estimate', outcome: 'not-a-target', clusterId };
  if (!cluster.encryptionEnabled || !cluster.keyId)
    return { kind: 'estimate', outcome: 'encryption-off', clusterId };
  const key = await describeKey(s.clients, cluster.keyId);
  const kube = openCluster(await clusterKubeconfig(s.clients, clusterId, 15));
  try {
    const identities = await kube.apiServerIdentities();
    const apiServers = identities?.length;
    // As the job counts: where the API servers' evidence is readable, only marks written under proof are done.
    const requireProof =
      config.reencrypt.proof === 'metrics' &&
      (await readSealingEvidence(kube.getRaw, key, identities)).verdict !== 'unproven';
    const estimate = await estimateSweep(kube.secrets, {
      targetKeyVersionId: key.primaryKeyVersion,
      requireProof,
      pageSize: config.reencrypt.pageSize,
      ...(key.lastRotationDate ? { rotatedAt: new Date(key.lastRotationDate) } : {}),
      ...(apiServers ? { apiServers } : {}),
      ...(deadline === undefined ? {} : { deadline }),
    });
    return {
      kind: 'estimate',
      outcome: 'estimated',
      clusterId,
      keyId: key.keyId,
      keyVersionId: key.primaryKeyVersion,
      estimate,
    };
  } finally {
    kube.close();
  }
}

const COUNTERS = ['total', 'rewritten', 'alreadyCurrent', 'gone', 'failed'] as const;

/** The counters of the last checkpoint, or of the final report once the job is done. */
function countersOf(job: NonNullable<ClusterState['job']>): Pick<JobStatus, 'counters'> {
  if (job.checkpoint) return { counters: job.checkpoint.counters };
  const r = job.report ?? {};
  if (!COUNTERS.every((k) => typeof r[k] === 'number')) return {};
  const n = (k: (typeof COUNTERS)[number]) => r[k] as number;
  return {
    counters: {
      total: n('total'),
      rewritten: n('rewritten'),
      alreadyCurrent: n('alreadyCurrent'),
      gone: n('gone'),
      failed: n('failed'),
    },
  };
}

function percentOf(job: NonNullable<ClusterState['job']>): Pick<JobStatus, 'percent'> {
  if (job.phase === 'completed') return { percent: 100 };
  const expected = job.checkpoint?.expected;
  if (!job.checkpoint || !expected) return {};
  return { percent: Math.min(99, Math.floor((job.checkpoint.counters.total * 100) / expected)) };
}

/** A job's status from its cluster's state: the one record every invocation of the job updates. */
export function statusOf(state: ClusterState, jobId: string, clusterId: string): JobStatus | undefined {
  const job = state.job;
  if (job?.jobId !== jobId) return undefined;
  const reason = job.report?.reason;
  return {
    jobId,
    clusterId,
    phase: job.phase,
    attempt: job.attempt ?? 1,
    invocation: job.invocation,
    ...countersOf(job),
    ...percentOf(job),
    ...(job.startedAt ? { startedAt: job.startedAt } : {}),
    updatedAt: job.updatedAt,
    ...(job.phase === 'completed' && state.completedAt ? { completedAt: state.completedAt } : {}),
    ...(job.phase === 'failed' && typeof reason === 'string' ? { lastError: reason } : {}),
  };
}

import { openCluster } from '../cluster/kube';
import { clusterKubeconfig } from '../cluster/user-kubeconfig';
import type { JobRequest } from '../events/rotation-watch';
import type { EnableAnswer } from '../jobs/answers';
import { jobIdFor } from '../jobs/payload';
import type { Config, Deps } from '../jobs/requests';
import { describeKey } from '../kms/keys';
import type { Logger } from '../log';
import { type WatchedTargets, watchedTargets } from '../trail/watched';
import { enableEncryption, encryptionStateIn } from './enable';
import type { PreflightCheck } from './preflight';

/**
 * The webhook's enable, answered by rotation-watch: pre-flight checks and UpdateKMSEncryption
 * (cs:UpdateKMSEncryption is in rotation-watch's optional policy only); the regular job, started by the next
 * tick once the cluster runs with encryption on, sweeps and proves the rest.
 */
export async function answerEnableRequest(
  request: Extract<JobRequest, { kind: 'enable-encryption' }>,
  services: Deps,
  config: Config,
  log: Logger,
): Promise<EnableAnswer> {
  const { clusterId } = request;
  const targets = await watchedTargets(services.clients, config, undefined, log);
  if (!targets.clusters.some((c) => c.clusterId === clusterId))
    return { kind: 'enable-encryption', outcome: 'not-a-target', clusterId };
  const refused = await notAllowedKey(request.keyId, clusterId, targets, services, config);
  if (refused)
    return {
      kind: 'enable-encryption',
      clusterId,
      keyId: request.keyId,
      outcome: 'checks-failed',
      checks: [refused],
      steps: [],
    };
  // Off just before the switch (the cluster is reachable then): the next tick that finds it on records it on,
  // and the job it starts trusts no mark written before.
  const open = async () => openCluster(await clusterKubeconfig(services.clients, clusterId, 15));
  const report = await enableEncryption(
    { clients: services.clients, encryptionState: encryptionStateIn(open, config, log) },
    {
      clusterId,
      keyId: request.keyId,
      dryRun: request.dryRun === true,
      protectKey: request.protectKey === true,
      requireKeyProtection: true,
      until: 'switch',
    },
  );
  const outcome = report.outcome === 'enabled' ? 'switched' : report.outcome;
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

/**
 * The keys the webhook may put a cluster's Secrets under. With SENTINEL_KMS_KEY_IDS, only those: a key no tick
 * watches would get no job after the switch. Otherwise the keys the target clusters name (the ones the suite's
 * alerts watch) and the key SENTINEL_CLUSTER_KEYS maps the cluster to. Any other key of the account could be
 * one someone else may disable or delete: an outage lever for whoever holds the webhook secret.
 */
async function notAllowedKey(
  keyRef: string,
  clusterId: string,
  targets: WatchedTargets,
  services: Deps,
  config: Config,
): Promise<PreflightCheck | undefined> {
  const resolve = (ref: string) =>
    describeKey(services.clients, ref).then(
      (k) => k.keyId,
      () => ref,
    );
  const keyId = await resolve(keyRef);
  const explicit = config.keys.mode === 'explicit';
  const mappedRef = config.clusterKeys[clusterId];
  const mapped = !explicit && mappedRef ? await resolve(mappedRef) : undefined;
  const allowed = explicit
    ? targets.rotationKeys
    : [...new Set([...targets.watched.keys, ...(mapped ? [mapped] : [])])];
  if (allowed.includes(keyId)) return undefined;
  return {
    id: 'allowed-key',
    title: 'The key is one this deployment watches or maps to the cluster',
    status: 'fail',
    evidence: `${keyId} is ${explicit ? 'not in SENTINEL_KMS_KEY_IDS' : `neither a key of the target clusters nor mapped to ${clusterId} (SENTINEL_CLUSTER_KEYS)`}; allowed: ${allowed.join(', ') || 'none'}`,
    remedy: explicit
      ? "Add the key to SENTINEL_KMS_KEY_IDS (or use one listed there), then ask again; the CLI's enable, run with your own RAM rights, takes any key."
      : `Map the key to the cluster in SENTINEL_CLUSTER_KEYS (${clusterId}=<key id>), then ask again; the CLI's enable, run with your own RAM rights, takes any key.`,
  };
}

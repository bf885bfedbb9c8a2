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
  const unwatched = await unwatchedKey(request.keyId, targets, services, config);
  if (unwatched)
    return {
      kind: 'enable-encryption',
      clusterId,
      keyId: request.keyId,
      outcome: 'checks-failed',
      checks: [unwatched],
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

/** With explicit keys, a key no tick watches would get no job after the switch: refused before it. */
async function unwatchedKey(
  keyRef: string,
  targets: WatchedTargets,
  services: Deps,
  config: Config,
): Promise<PreflightCheck | undefined> {
  if (config.keys.mode !== 'explicit') return undefined;
  const keyId = await describeKey(services.clients, keyRef).then(
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

import { withCluster } from '../cluster/user-kubeconfig';
import { normalizeError } from '../errors';
import type { JobRequest } from '../events/rotation-watch';
import type { EnableAnswer } from '../jobs/answers';
import { jobIdFor } from '../jobs/payload';
import type { Config, Deps } from '../jobs/requests';
import { clusterStoreOf } from '../jobs/store';
import { describeKey } from '../kms/keys';
import type { Logger } from '../log';
import { type WatchedTargets, watchedTargets } from '../trail/watched';
import { enableEncryption } from './enable';
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
  const report = await enableEncryption(
    { clients: services.clients },
    {
      clusterId,
      keyId: request.keyId,
      dryRun: request.dryRun === true,
      protectKey: request.protectKey === true,
      until: 'switch',
    },
  );
  const outcome = report.outcome === 'enabled' ? 'switched' : report.outcome;
  if (outcome === 'switched') await forgetCompletion(services, config, clusterId, log);
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

/**
 * A completion recorded before encryption was turned off says nothing now (Secrets written since are
 * plaintext): it is forgotten through the job store, so the next tick starts the job. A cluster not
 * reachable yet (it is restarting) is logged.
 */
async function forgetCompletion(
  services: Deps,
  config: Config,
  clusterId: string,
  log: Logger,
): Promise<void> {
  try {
    await withCluster(services.clients, clusterId, 15, (kube) =>
      clusterStoreOf(kube.core, config, log).forgetCompletion(),
    );
  } catch (err) {
    log.warn('could not clear the earlier completion after the switch', {
      clusterId,
      error: normalizeError(err).toJSON(),
    });
  }
}

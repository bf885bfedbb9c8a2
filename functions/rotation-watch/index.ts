import type { TargetCluster } from '../../shared/cluster/discovery';
import type { SentinelConfig } from '../../shared/config';
import { normalizeError } from '../../shared/errors';
import { decodeEventInput, eventKeyId, parseRotationWatchEvent } from '../../shared/events';
import type { StartAnswer, StatusAnswer } from '../../shared/jobs/answers';
import { answerJobRequest } from '../../shared/jobs/requests';
import { type JobStart, startReencryptJob } from '../../shared/jobs/starter';
import { describeKey, type KeyInfo } from '../../shared/kms/keys';
import { defineHandler, type HandlerDeps, type Invocation } from '../../shared/runtime/handler';
import { type Services, servicesFor } from '../../shared/runtime/services';
import { classify } from '../../shared/trail/classify';
import {
  affectedClusters,
  alertFor,
  clustersEncryptedBy,
  watchedTargets,
  withResolvedAliases,
} from '../../shared/trail/watched';

/**
 * rotation-watch: KMS publishes no "key rotated" event (docs/cloud-facts.md#kms-rotation-events), so a timer polls DescribeKey of every
 * watched key and compares PrimaryKeyVersion with the version each cluster last completed; ActionTrail events
 * through EventBridge only make it faster. One re-encryption job per (cluster, key, version), started by FC
 * async invocation with the job id as task id, so duplicates and races never start a second job. Events
 * that endanger a cluster (a disabled or deleted key, encryption turned off) are alerted at once.
 */
const ROTATION_EVENTS = new Set(['CreateKeyVersion', 'RotateKey', 'UpdateRotationPolicy']);

export type JobOutcome = JobStart | 'failed';

export interface WatchResult {
  trigger: 'timer' | 'event';
  jobs: Array<{
    clusterId: string;
    keyId: string;
    keyVersionId?: string;
    outcome: JobOutcome;
    reason?: string;
  }>;
  alerts: number;
}

async function ensureJob(
  s: Services,
  config: SentinelConfig,
  cluster: TargetCluster,
  key: KeyInfo,
  reason: string,
  inv: Invocation,
) {
  const base = { clusterId: cluster.clusterId, keyId: key.keyId, keyVersionId: key.primaryKeyVersion };
  try {
    const { outcome } = await startReencryptJob(s, config, cluster, key, reason, inv.log);
    return { ...base, outcome };
  } catch (err) {
    // One cluster's trouble (its API server is down) must not stop the others' jobs.
    const e = normalizeError(err);
    inv.log.warn('could not start the job for a cluster', { ...base, error: e.toJSON() });
    return { ...base, outcome: 'failed' as const, reason: e.message };
  }
}

export async function rotationWatch(
  event: unknown,
  inv: Invocation,
  s: Services = servicesFor(inv),
): Promise<WatchResult | StartAnswer | StatusAnswer> {
  const request = parseRotationWatchEvent(decodeEventInput(event, { format: 'rotation-watch event' }));
  if (request.kind === 'start-job' || request.kind === 'job-status')
    return answerJobRequest(request, s, inv.config, inv.log);
  const targets = await watchedTargets(
    s.clients,
    inv.config,
    inv.config.accountId ?? inv.context.accountId,
    inv.log,
  );
  const keys = targets.rotationKeys;
  const result: WatchResult = { trigger: request.kind === 'timer' ? 'timer' : 'event', jobs: [], alerts: 0 };
  let toCheck: string[] = [];
  let reason = 'rotation-watch:timer';

  if (request.kind === 'timer') {
    toCheck = keys;
  } else {
    const trail = request.event;
    const watched = await withResolvedAliases([trail], targets.watched, s.clients, inv.log);
    const finding = classify(trail, watched);
    if (finding?.severity === 'critical') {
      result.alerts++;
      await s.notifier.notify(alertFor(finding, affectedClusters(targets, finding)));
      inv.log.warn('critical change alerted', {
        eventName: finding.eventName,
        keyId: finding.keyId,
        clusterId: finding.clusterId,
      });
    }
    const ref = eventKeyId(trail);
    const keyId = ref && (watched.aliases?.get(ref) ?? ref);
    if (ROTATION_EVENTS.has(trail.eventName) && keyId && keys.includes(keyId)) {
      toCheck = [keyId];
      reason = 'rotation-watch:event';
    }
  }

  for (const keyId of toCheck) {
    // Whatever the event said, DescribeKey is the truth: out-of-order events start the job for the current version.
    let key: KeyInfo;
    try {
      key = await describeKey(s.clients, keyId);
    } catch (err) {
      // One key's trouble (deleted, not allowed to us) must not stop the other keys' jobs.
      const e = normalizeError(err);
      inv.log.warn('could not describe a watched key', { keyId, error: e.toJSON() });
      for (const cluster of clustersEncryptedBy(targets, keyId))
        result.jobs.push({ clusterId: cluster.clusterId, keyId, outcome: 'failed', reason: e.message });
      continue;
    }
    if (key.keyState !== 'Enabled') continue;
    for (const cluster of clustersEncryptedBy(targets, keyId)) {
      result.jobs.push(await ensureJob(s, inv.config, cluster, key, reason, inv));
    }
  }
  inv.log.info('rotation-watch done', {
    trigger: result.trigger,
    jobs: result.jobs.map((j) => `${j.clusterId}:${j.outcome}`),
    alerts: result.alerts,
  });
  return result;
}

export const createHandler = (deps: HandlerDeps = {}) =>
  defineHandler('rotation-watch', (event, inv) => rotationWatch(event, inv), deps);
export const handler = createHandler();

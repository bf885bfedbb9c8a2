import pLimit from 'p-limit';
import type { TargetCluster } from '../../shared/cluster/discovery';
import { withCluster } from '../../shared/cluster/user-kubeconfig';
import type { SentinelConfig } from '../../shared/config';
import { answerEnableRequest } from '../../shared/encryption/requests';
import { normalizeError } from '../../shared/errors';
import { decodeEventInput, eventKeyId, parseRotationWatchEvent } from '../../shared/events';
import type { JobRequest, RotationWatchEvent } from '../../shared/events/rotation-watch';
import type {
  ClusterStatusAnswer,
  EnableAnswer,
  EstimateAnswer,
  StartAnswer,
  StatusAnswer,
} from '../../shared/jobs/answers';
import {
  type DoneRecord,
  type DoneRecordStore,
  emptyRecord,
  fullCheckDue,
  noDoneRecord,
  onlyKeys,
  ossDoneRecord,
  vouchesDone,
  withOutcomes,
  withoutClusters,
} from '../../shared/jobs/done-record';
import { answerJobRequest } from '../../shared/jobs/requests';
import { type JobStart, startReencryptJob } from '../../shared/jobs/starter';
import { answerStatusRequest } from '../../shared/jobs/status';
import { clusterStoreOf } from '../../shared/jobs/store';
import { describeKey, type KeyInfo } from '../../shared/kms/keys';
import { kmsSecret } from '../../shared/kms/secrets';
import { defineHandler, type HandlerDeps, type Invocation } from '../../shared/runtime/handler';
import { type Services, servicesFor, suiteBucket } from '../../shared/runtime/services';
import { classify } from '../../shared/trail/classify';
import {
  affectedClusters,
  alertFor,
  clustersEncryptedBy,
  type WatchedTargets,
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
    /** Nothing left to do or prove for this version: the done record may vouch for the cluster. */
    settled?: boolean;
    reason?: string;
  }>;
  alerts: number;
  /** Clusters not read this tick: the done record vouched that they are done with their key's version. */
  vouched: number;
}

async function ensureJob(
  services: Services,
  config: SentinelConfig,
  cluster: TargetCluster,
  key: KeyInfo,
  reason: string,
  inv: Invocation,
) {
  const base = { clusterId: cluster.clusterId, keyId: key.keyId, keyVersionId: key.primaryKeyVersion };
  try {
    const { outcome, settled } = await startReencryptJob(services, config, cluster, key, reason, inv.log);
    return { ...base, outcome, ...(settled ? { settled } : {}) };
  } catch (err) {
    // One cluster's trouble (its API server is down) must not stop the others' jobs.
    const e = normalizeError(err);
    inv.log.warn('could not start the job for a cluster', { ...base, error: e.toJSON() });
    return { ...base, outcome: 'failed' as const, reason: e.message };
  }
}

/** The keys a trigger asks to check, and the critical alert an ActionTrail event may carry. */
async function keysToCheck(
  request: Exclude<RotationWatchEvent, JobRequest>,
  targets: WatchedTargets,
  services: Services,
  inv: Invocation,
  result: WatchResult,
): Promise<{ keyIds: string[]; reason: string; turnedOff: string[] }> {
  if (request.kind === 'timer')
    return { keyIds: targets.rotationKeys, reason: 'rotation-watch:timer', turnedOff: [] };
  const trail = request.event;
  const watched = await withResolvedAliases([trail], targets.watched, services.clients, inv.log);
  const finding = classify(trail, watched);
  if (finding?.severity === 'critical') {
    result.alerts++;
    await services.notifier.notify(alertFor(finding, affectedClusters(targets, finding)));
    inv.log.warn('critical change alerted', {
      eventName: finding.eventName,
      keyId: finding.keyId,
      clusterId: finding.clusterId,
    });
  }
  const ref = eventKeyId(trail);
  const keyId = ref && (watched.aliases?.get(ref) ?? ref);
  const turnedOff =
    finding?.eventName === 'UpdateKMSEncryption' && finding.severity === 'critical' && finding.clusterId
      ? [finding.clusterId]
      : [];
  return ROTATION_EVENTS.has(trail.eventName) && keyId && targets.rotationKeys.includes(keyId)
    ? { keyIds: [keyId], reason: 'rotation-watch:event', turnedOff }
    : { keyIds: [], reason: '', turnedOff };
}

/**
 * Encryption is off on these clusters: each one's state drops its completion and says since when (read each
 * tick, written once), so when it is turned on again the job runs and trusts no mark written before. A
 * cluster that cannot be reached is logged; the next tick tries again.
 */
async function recordEncryptionOff(clusterIds: string[], services: Services, inv: Invocation): Promise<void> {
  const limit = pLimit(inv.config.fleet.concurrency);
  await Promise.all(
    clusterIds.map((clusterId) =>
      limit(() =>
        withCluster(services.clients, clusterId, 15, (kube) =>
          clusterStoreOf(kube.core, inv.config, inv.log).recordEncryptionOff(inv.now()),
        ).catch((err: unknown) =>
          inv.log.warn('could not record that encryption is off', {
            clusterId,
            error: normalizeError(err).toJSON(),
          }),
        ),
      ),
    ),
  );
}

/** Drops clusters from the done record, so no tick skips them as done. */
async function forgetDone(clusterIds: string[], services: Services, inv: Invocation): Promise<void> {
  const store = doneRecordStore(inv, () => services);
  const before = await loadRecord(store, inv.log);
  await saveRecord(store, before, withoutClusters(before, clusterIds), inv);
}

/**
 * The record of clusters done with their key's version (shared/jobs/done-record.ts), signed with the state
 * secret; none without a bucket or without that secret (every tick then reads every cluster).
 */
function doneRecordStore(inv: Invocation, services: () => Services): DoneRecordStore {
  const bucket = suiteBucket(inv);
  const { stateSecret, kmsSecrets } = inv.config;
  const name = kmsSecrets.stateSecret;
  if (!bucket || !(stateSecret || name)) return noDoneRecord;
  const secrets = async () => {
    if (stateSecret) return [stateSecret];
    const v = await kmsSecret(services().clients, name ?? '', inv.now());
    return v.previous ? [v.current, v.previous] : [v.current];
  };
  return ossDoneRecord(bucket, inv.log, secrets);
}

async function loadRecord(store: DoneRecordStore, log: Invocation['log']): Promise<DoneRecord> {
  try {
    return await store.load();
  } catch (err) {
    // Without the record the tick reads every cluster: slower, never wrong.
    log.warn('could not read the done record; reading every cluster', {
      where: store.where,
      error: normalizeError(err).toJSON(),
    });
    return emptyRecord();
  }
}

/**
 * One key: DescribeKey (whatever an event said, the key's primary version is the truth, so out-of-order events
 * start the job for the current version), then the job of each of its clusters the record cannot vouch for,
 * a bounded number at once.
 */
async function checkKey(
  keyId: string,
  tick: { services: Services; inv: Invocation; targets: WatchedTargets; reason: string; full: boolean },
  record: DoneRecord,
  result: WatchResult,
): Promise<DoneRecord> {
  const { services, inv, targets } = tick;
  const clusters = clustersEncryptedBy(targets, keyId);
  let key: KeyInfo;
  try {
    key = await describeKey(services.clients, keyId);
  } catch (err) {
    // One key's trouble (deleted, not allowed to us) must not stop the other keys' jobs.
    const e = normalizeError(err);
    inv.log.warn('could not describe a watched key', { keyId, error: e.toJSON() });
    for (const cluster of clusters)
      result.jobs.push({ clusterId: cluster.clusterId, keyId, outcome: 'failed', reason: e.message });
    return record;
  }
  if (key.keyState !== 'Enabled') return record;
  const todo = tick.full
    ? clusters
    : clusters.filter((c) => !vouchesDone(record, keyId, key.primaryKeyVersion, c.clusterId));
  result.vouched += clusters.length - todo.length;
  const limit = pLimit(inv.config.fleet.concurrency);
  const jobs = await Promise.all(
    todo.map((cluster) => limit(() => ensureJob(services, inv.config, cluster, key, tick.reason, inv))),
  );
  result.jobs.push(...jobs);
  const ids = clusters.map((c) => c.clusterId);
  return withOutcomes(record, keyId, key.primaryKeyVersion, ids, jobs);
}

/** The keys' clusters, through the done record: loaded before, saved after when it changed. */
async function checkKeys(
  keyIds: string[],
  tick: { services: Services; inv: Invocation; targets: WatchedTargets; reason: string; timer: boolean },
  result: WatchResult,
): Promise<void> {
  const { inv } = tick;
  const store = doneRecordStore(inv, () => tick.services);
  const before = await loadRecord(store, inv.log);
  const now = inv.now();
  const full = tick.timer && fullCheckDue(before, now, inv.config.fleet.fullCheckMs);
  let record = onlyKeys(before, tick.targets.rotationKeys);
  for (const keyId of keyIds) record = await checkKey(keyId, { ...tick, full }, record, result);
  if (full) record = { ...record, fullCheckAt: new Date(now).toISOString() };
  await saveRecord(store, before, record, inv);
}

/** Saves the done record when it changed; one that cannot be saved costs the next tick more reads, not a miss. */
async function saveRecord(
  store: DoneRecordStore,
  before: DoneRecord,
  after: DoneRecord,
  inv: Invocation,
): Promise<void> {
  if (JSON.stringify(after) === JSON.stringify(before)) return;
  await store.save(after).catch((err: unknown) =>
    inv.log.warn('could not save the done record; the next tick reads more clusters', {
      where: store.where,
      error: normalizeError(err).toJSON(),
    }),
  );
}

export async function rotationWatch(
  event: unknown,
  inv: Invocation,
  services: Services = servicesFor(inv),
): Promise<WatchResult | StartAnswer | StatusAnswer | EstimateAnswer | EnableAnswer | ClusterStatusAnswer> {
  const request = parseRotationWatchEvent(decodeEventInput(event, { format: 'rotation-watch event' }));
  if (request.kind === 'enable-encryption')
    return answerEnableRequest(request, services, inv.config, inv.log);
  if (request.kind === 'cluster-status')
    return answerStatusRequest(request, services.clients, inv.config, inv.log);
  if (request.kind !== 'timer' && request.kind !== 'trail')
    return answerJobRequest(
      request,
      services,
      inv.config,
      inv.log,
      inv.deadline - inv.config.reencrypt.budgetMarginMs,
    );
  const targets = await watchedTargets(
    services.clients,
    inv.config,
    inv.config.accountId ?? inv.context.accountId,
    inv.log,
  );
  const result: WatchResult = {
    trigger: request.kind === 'timer' ? 'timer' : 'event',
    jobs: [],
    alerts: 0,
    vouched: 0,
  };
  const { keyIds, reason, turnedOff } = await keysToCheck(request, targets, services, inv, result);
  // CS says off (a timer tick), or an event says it was turned off: no completion may stand for the cluster.
  const off =
    request.kind === 'timer'
      ? targets.clusters.filter((c) => !c.encryptionEnabled).map((c) => c.clusterId)
      : turnedOff;
  await recordEncryptionOff(off, services, inv);
  // An event's cluster is still in the done record (a timer tick drops clusters it finds off): drop it now, or
  // the record would vouch for it if encryption is on again before that tick.
  if (request.kind !== 'timer' && off.length > 0) await forgetDone(off, services, inv);
  if (keyIds.length > 0)
    await checkKeys(keyIds, { services, inv, targets, reason, timer: request.kind === 'timer' }, result);
  inv.log.info('rotation-watch done', {
    trigger: result.trigger,
    jobs: result.jobs.map((j) => `${j.clusterId}:${j.outcome}`),
    vouched: result.vouched,
    alerts: result.alerts,
  });
  return result;
}

export const createHandler = (deps: HandlerDeps = {}) =>
  defineHandler('rotation-watch', (event, inv) => rotationWatch(event, inv), deps);
export const handler = createHandler();

import { credentialsFromContext } from '../../shared/cloud/credentials';
import {
  type ActionTrailEvent,
  decodeEventInput,
  parseTrailLogRecord,
  parseTrailVerifyEvent,
  SLS_TRAIL_TOPICS,
  type SlsTriggerEvent,
} from '../../shared/events';
import { defineHandler, type HandlerDeps, type Invocation } from '../../shared/runtime/handler';
import { type Services, servicesFor } from '../../shared/runtime/services';
import {
  type BatchSummary,
  classify,
  type Finding,
  summarize,
  type Watched,
} from '../../shared/trail/classify';
import {
  ForeignLogstoreError,
  readShardRange,
  type ShardRange,
  trailRange,
} from '../../shared/trail/sls-reader';
import {
  affectedClusters,
  alertFor,
  type WatchedTargets,
  watchedTargets,
  withResolvedAliases,
} from '../../shared/trail/watched';

/**
 * trail-verify: reads ActionTrail events (the SLS trigger on the trail logstore, or EventBridge), classifies
 * each (encryption activity by the ACK managed role per key, KMS refusals it met, changes that endanger a
 * cluster), alerts on what is critical and logs one compact summary per batch.
 */
export interface VerifyResult extends BatchSummary {
  skipped: number;
  findings: Array<Pick<Finding, 'kind' | 'severity' | 'eventName' | 'keyId' | 'clusterId'>>;
}

let targetsCache: { at: number; targets: WatchedTargets } | undefined;
const WATCHED_TTL_MS = 5 * 60_000;

async function targetsFor(services: Services, inv: Invocation): Promise<WatchedTargets> {
  if (targetsCache && inv.now() - targetsCache.at < WATCHED_TTL_MS) return targetsCache.targets;
  targetsCache = {
    at: inv.now(),
    targets: await watchedTargets(
      services.clients,
      inv.config,
      inv.config.accountId ?? inv.context.accountId,
      inv.log,
    ),
  };
  return targetsCache.targets;
}

/** The configured trail's range; an event naming another logstore is poison, and alerted (who sent it?). */
async function readableRange(
  trigger: SlsTriggerEvent,
  services: Services,
  inv: Invocation,
): Promise<ShardRange> {
  try {
    return trailRange(trigger, inv.config);
  } catch (err) {
    if (err instanceof ForeignLogstoreError) {
      await services.notifier.notify({
        severity: 'critical',
        title: 'trail-verify was sent an event for another logstore',
        text: `${err.message}. Nothing was read. Check who may invoke the function and the SLS trigger's configuration.`,
        details: { project: trigger.source.projectName, logstore: trigger.source.logstoreName },
      });
    }
    throw err;
  }
}

/** The trail records of a shard range, parsed; one malformed record is counted and skipped, not fatal. */
async function readTrail(
  range: ShardRange,
  inv: Invocation,
): Promise<{ events: ActionTrailEvent[]; skipped: number }> {
  const events: ActionTrailEvent[] = [];
  let skipped = 0;
  let index = 0;
  for await (const batch of readShardRange(range, credentialsFromContext(inv.context))) {
    for (const log of batch) {
      index++;
      if (!SLS_TRAIL_TOPICS.includes(log.topic as (typeof SLS_TRAIL_TOPICS)[number])) continue;
      try {
        events.push(parseTrailLogRecord(log.contents, index - 1));
      } catch (err) {
        skipped++;
        inv.log.warn('skipped a malformed trail record', { error: (err as Error).message });
      }
    }
  }
  return { events, skipped };
}

/** Classifies a batch: the hot path measured by the benchmark. */
export function classifyBatch(
  events: ActionTrailEvent[],
  w: Watched,
): { findings: Finding[]; summary: BatchSummary } {
  const findings: Finding[] = [];
  for (const e of events) {
    const f = classify(e, w);
    if (f) findings.push(f);
  }
  return { findings, summary: summarize(events.length, findings) };
}

export async function trailVerify(
  event: unknown,
  inv: Invocation,
  services: Services = servicesFor(inv),
): Promise<VerifyResult> {
  const request = parseTrailVerifyEvent(decodeEventInput(event, { format: 'trail-verify event' }));
  const { events, skipped } =
    request.kind === 'cloud-event'
      ? { events: [request.event], skipped: 0 }
      : await readTrail(await readableRange(request.trigger, services, inv), inv);
  const targets = await targetsFor(services, inv);
  const watched = await withResolvedAliases(events, targets.watched, services.clients, inv.log);
  const { findings, summary } = classifyBatch(events, watched);
  for (const f of findings.filter((x) => x.severity === 'critical')) {
    await services.notifier.notify(alertFor(f, affectedClusters(targets, f)));
  }
  inv.log.info('trail batch', { ...summary, skipped });
  return {
    ...summary,
    skipped,
    findings: findings.map((f) => ({
      kind: f.kind,
      severity: f.severity,
      eventName: f.eventName,
      keyId: f.keyId,
      clusterId: f.clusterId,
    })),
  };
}

export const createHandler = (deps: HandlerDeps = {}) =>
  defineHandler('trail-verify', (event, inv) => trailVerify(event, inv), deps);
export const handler = createHandler();

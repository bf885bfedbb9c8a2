import { z } from 'zod';
import type { ActionTrailEvent } from './actiontrail';
import { parseTrailCloudEvent } from './eventbridge';
import { jsonObject, nonEmpty, slsCursor } from './fields';
import { type DecodeOptions, parseEvent } from './parse';

/**
 * The SLS trigger event (docs/cloud-facts.md#fc-events): where to read, not what. The function pulls
 * `[beginCursor, endCursor)` of one shard itself.
 */
export const slsTriggerEventSchema = z.object({
  source: z.object({
    endpoint: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL of the SLS endpoint' }),
    projectName: nonEmpty,
    logstoreName: nonEmpty,
    shardId: z.number().int().min(0),
    beginCursor: slsCursor,
    endCursor: slsCursor,
  }),
  parameter: jsonObject.default({}),
  jobName: nonEmpty,
  taskId: nonEmpty,
  cursorTime: z.number().int().min(0),
});

export type SlsTriggerEvent = z.output<typeof slsTriggerEventSchema>;
export const SLS_TRIGGER_FORMAT = 'SLS trigger event';

export function parseSlsTriggerEvent(input: unknown, options: Partial<DecodeOptions> = {}): SlsTriggerEvent {
  return parseEvent(slsTriggerEventSchema, input, { format: SLS_TRIGGER_FORMAT, ...options });
}

/** What trail-verify receives: the SLS trigger on the trail logstore, or an ActionTrail event through EventBridge. */
export type TrailVerifyEvent =
  | { kind: 'sls-trigger'; trigger: SlsTriggerEvent }
  | { kind: 'cloud-event'; event: ActionTrailEvent };

export function parseTrailVerifyEvent(value: unknown): TrailVerifyEvent {
  // A CloudEvent carries `specversion`; the SLS trigger event never does.
  if (typeof value === 'object' && value !== null && 'specversion' in value)
    return { kind: 'cloud-event', event: parseTrailCloudEvent(value).data };
  return { kind: 'sls-trigger', trigger: parseSlsTriggerEvent(value) };
}

import { z } from 'zod';
import { actionTrailEventSchema } from './actiontrail';
import { nonEmpty } from './fields';
import { type DecodeOptions, parseEvent } from './parse';

/**
 * The EventBridge CloudEvent envelope with Alibaba's extension fields (docs/cloud-facts.md#kms-rotation-events), carrying
 * an ActionTrail event of KMS or CS in `data` (§1.4). `time` and `aliyunpublishtime` are kept as strings:
 * Alibaba writes them in forms such as `2020-11-19T21:04:42.179PRC` that are not ISO 8601.
 */
export const TRAIL_EVENT_TYPE = /^(kms|cs):ActionTrail:(ApiCall|AliyunServiceEvent|ConsoleOperation)$/;

export const cloudEventSchema = z
  .object({
    id: nonEmpty,
    source: z.enum(['acs.kms', 'acs.cs', 'acs:kms', 'acs:cs'], {
      message: 'must be the KMS or ACK event source (acs.kms or acs.cs)',
    }),
    specversion: z.literal('1.0', { message: 'must be "1.0" (CloudEvents 1.0)' }),
    type: z
      .string()
      .regex(TRAIL_EVENT_TYPE, 'must be <kms|cs>:ActionTrail:<ApiCall|AliyunServiceEvent|ConsoleOperation>'),
    subject: z.string().optional(),
    time: nonEmpty,
    datacontenttype: z.string().optional(),
    aliyunaccountid: z.string().optional(),
    aliyunpublishtime: z.string().optional(),
    aliyuneventbusname: z.string().optional(),
    aliyunregionid: z.string().optional(),
    aliyunpublishaddr: z.string().optional(),
    data: actionTrailEventSchema,
  })
  .superRefine((event, ctx) => {
    const service = event.type.split(':')[0];
    if (!event.source.endsWith(service ?? '')) {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: `type "${event.type}" does not belong to source "${event.source}"`,
      });
    }
    const trailType = event.type.split(':')[2];
    if (trailType && event.data.eventType !== trailType) {
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'eventType'],
        message: `is "${event.data.eventType}" but the envelope type says ${trailType}`,
      });
    }
  });

export type TrailCloudEvent = z.output<typeof cloudEventSchema>;
export const EVENTBRIDGE_FORMAT = 'EventBridge event';

export function parseTrailCloudEvent(input: unknown, options: Partial<DecodeOptions> = {}): TrailCloudEvent {
  return parseEvent(cloudEventSchema, input, { format: EVENTBRIDGE_FORMAT, ...options });
}

/** The service whose ActionTrail event this is: `kms` or `cs`. */
export const cloudEventService = (event: TrailCloudEvent): 'kms' | 'cs' =>
  event.type.startsWith('kms:') ? 'kms' : 'cs';

/** EventBridge delivers at least once; `source` + `id` identifies an event (docs/cloud-facts.md#kms-rotation-events). */
export const cloudEventDedupKey = (event: TrailCloudEvent): string => `${event.source}/${event.id}`;

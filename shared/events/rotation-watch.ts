import { z } from 'zod';
import type { ActionTrailEvent } from './actiontrail';
import { parseTrailCloudEvent } from './eventbridge';
import { clusterIdField, JOB_ID, keyIdField } from './fields';
import { parseWith } from './parse';
import { parseTimerEvent, type TimerEvent } from './timer';

/**
 * What rotation-watch receives, as one discriminated union: the poll timer, an ActionTrail event through
 * EventBridge, or a request from the webhook (which holds no kubeconfig and so asks rotation-watch, by
 * synchronous invocation, to start a job through the one starter or to read a job's status from its
 * cluster's state). The shapes are told apart here, once; the handler only routes.
 */
export const jobRequestSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('start-job'),
      clusterId: clusterIdField,
      reason: z.string().max(200).optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('enable-encryption'),
      clusterId: clusterIdField,
      keyId: keyIdField,
      dryRun: z.boolean().optional(),
      protectKey: z.boolean().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('estimate'),
      clusterId: clusterIdField,
    })
    .strict(),
  z
    .object({
      kind: z.literal('cluster-status'),
      clusterId: clusterIdField,
    })
    .strict(),
  z
    .object({
      kind: z.literal('job-status'),
      jobId: z.string().regex(JOB_ID, 'must be a job id'),
    })
    .strict(),
]);
export type JobRequest = z.output<typeof jobRequestSchema>;

export type RotationWatchEvent =
  | { kind: 'timer'; timer: TimerEvent }
  | { kind: 'trail'; event: ActionTrailEvent }
  | JobRequest;

export function parseRotationWatchEvent(value: unknown): RotationWatchEvent {
  const has = (key: string) => typeof value === 'object' && value !== null && key in value;
  if (has('kind')) return parseWith(jobRequestSchema, value, 'rotation-watch request');
  if (has('triggerTime')) return { kind: 'timer', timer: parseTimerEvent(value) };
  return { kind: 'trail', event: parseTrailCloudEvent(value).data };
}

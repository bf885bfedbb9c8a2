import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  clusterIdField,
  isoInstant,
  JOB_ID,
  keyIdField,
  keyVersionIdField,
  nonEmpty,
} from '../events/fields';
import { type DecodeOptions, parseEvent } from '../events/parse';
import { strategyField } from '../reencrypt/strategy-field';

/**
 * The suite's own re-encryption job payload, handed from rotation-watch / webhook / the CLI to `reencrypt`
 * by FC async invocation, and by `reencrypt` to itself with a checkpoint. Versioned: a payload from an older
 * deployment still in FC's async queue is either understood or refused as poison, never misread.
 */
export const JOB_PAYLOAD_VERSION = 1;

export const sweepCountersSchema = z.object({
  total: z.number().int().min(0),
  rewritten: z.number().int().min(0),
  alreadyCurrent: z.number().int().min(0),
  gone: z.number().int().min(0),
  failed: z.number().int().min(0),
});

/** Where a sweep resumes: its cursor (`shared/reencrypt/cursor.ts`) and its counters so far. */
export const sweepCheckpointSchema = z.object({
  targetKeyVersionId: nonEmpty,
  strategy: strategyField,
  namespaceIndex: z.number().int().min(0),
  /** Kubernetes list continue token of the page in progress; absent at a first page. */
  continueToken: z
    .string()
    .max(64 * 1024)
    .optional(),
  resumeAfter: z.string().max(512).optional(),
  recheck: z.boolean().optional(),
  counters: sweepCountersSchema,
  /** How many Secrets the sweep expects in all (the API server's estimate at its first page): for a percentage. */
  expected: z.number().int().min(0).optional(),
});

/** What a job does, in order, within its invocations; the state adds `queued` before and the ends after. */
export const RUN_PHASES = ['waiting-for-adoption', 'sweeping', 'verifying'] as const;
/**
 * `waiting-for-new-seed`: the API servers proved a rewrite now would change nothing (their seed was sealed
 * before the rotation and no new one comes); the job sweeps once they have made a new one (a restart).
 */
export const JOB_PHASES = ['queued', ...RUN_PHASES, 'waiting-for-new-seed', 'completed', 'failed'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];
export type JobPhase = (typeof JOB_PHASES)[number];

/**
 * How a job goes on in its next invocation: its phase, how many invocations so far, when it started, and
 * (while sweeping) the sweep's checkpoint. Carried in the payload's `checkpoint` field (the wire name of
 * payload version 1); in code, "checkpoint" means only the sweep's resume point.
 */
export const continuationSchema = z.object({
  sweep: sweepCheckpointSchema.optional(),
  /** The key version this job rewrites Secrets for. */
  targetKeyVersionId: nonEmpty,
  /** How many invocations have worked on this job so far. */
  invocation: z.number().int().min(1),
  /** When the job's first invocation started: the rotation's evidence window starts here. */
  startedAt: isoInstant,
  phase: z.enum(RUN_PHASES),
});

export const jobPayloadSchema = z
  .object({
    version: z.literal(JOB_PAYLOAD_VERSION, {
      message: `must be ${JOB_PAYLOAD_VERSION} (the job payload version)`,
    }),
    jobId: z.string().regex(JOB_ID, 'must be a job id made by jobIdFor()'),
    clusterId: clusterIdField,
    keyId: keyIdField,
    keyVersionId: keyVersionIdField,
    requestedAt: isoInstant,
    /** What asked for the job: `rotation-watch:event`, `rotation-watch:timer`, `webhook`, `cli`. */
    reason: nonEmpty.max(200),
    /** Which start of this job the payload belongs to: a job presumed dead is started again as attempt 2, … */
    attempt: z.number().int().min(1).max(1000).optional(),
    checkpoint: continuationSchema.optional(),
  })
  .superRefine((job, ctx) => {
    const expected = jobIdFor(job.clusterId, job.keyId, job.keyVersionId);
    if (job.jobId !== expected) {
      ctx.addIssue({
        code: 'custom',
        path: ['jobId'],
        message: `does not match cluster, key and key version (expected ${expected})`,
      });
    }
  });

export type JobPayload = z.output<typeof jobPayloadSchema>;
export type Continuation = z.output<typeof continuationSchema>;
export type SweepCounters = z.output<typeof sweepCountersSchema>;
/** Where a sweep resumes: the sweep's cursor with its counters (`shared/reencrypt/cursor.ts`). */
export type SweepCheckpoint = z.output<typeof sweepCheckpointSchema>;
export const JOB_FORMAT = 're-encryption job payload';

export function parseJobPayload(input: unknown, options: Partial<DecodeOptions> = {}): JobPayload {
  return parseEvent(jobPayloadSchema, input, { format: JOB_FORMAT, ...options });
}

/**
 * The job id derives from (cluster, key, key version): a duplicate event, a timer tick during a running job,
 * or both triggers at once name the same job, so the rotation is never swept twice. Also used as the FC async
 * task id, which FC deduplicates.
 */
export function jobIdFor(clusterId: string, keyId: string, keyVersionId: string): string {
  const digest = createHash('sha256')
    .update(`${clusterId}\n${keyId}\n${keyVersionId}`)
    .digest('hex')
    .slice(0, 16);
  return `${jobIdPrefix(clusterId)}${digest}`;
}

/** What every job id of a cluster starts with: how a job's cluster is found from its id. */
export const jobIdPrefix = (clusterId: string): string =>
  `rj-${clusterId
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40)}-`;

/**
 * The FC async task id of one invocation of a job: the job id itself for the first invocation of the first
 * attempt, then `-i<n>` for the invocations that continue it and `-a<k>` for a later attempt. FC refuses a
 * task id it has seen, which is what makes every start idempotent.
 */
export function taskIdFor(jobId: string, attempt = 1, invocation = 1): string {
  const base = attempt > 1 ? `${jobId}-a${attempt}` : jobId;
  return invocation > 1 ? `${base}-i${invocation}` : base;
}

/** Serialises a payload for FC async invocation (body ≤ 128 KiB; a checkpoint is far smaller). */
export const encodeJobPayload = (job: JobPayload): string =>
  JSON.stringify({
    ...job,
    requestedAt: job.requestedAt.toISOString(),
    ...(job.checkpoint
      ? { checkpoint: { ...job.checkpoint, startedAt: job.checkpoint.startedAt.toISOString() } }
      : {}),
  });

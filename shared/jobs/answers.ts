import { z } from 'zod';
import { parseWith } from '../events/parse';
import type { JobRequest } from '../events/rotation-watch';
import { strategyField } from '../reencrypt/strategy-field';
import { JOB_PHASES, sweepCountersSchema } from './payload';

/**
 * What rotation-watch answers the webhook's job requests (`requests.ts`), as schemas: the webhook checks every
 * answer against them and never casts. Kept apart from `requests.ts` so the webhook's bundle holds no cluster
 * access code (its RAM policy test proves it).
 */
/** What a start of a job came to (`starter.ts`). */
export const JOB_STARTS = [
  'started',
  'restarted',
  'already-started',
  'current',
  /** Completed without the API servers' proof, and still none can be had: not current, not failed. */
  'rewritten-unproven',
  'waiting-for-new-seed',
] as const;
export type JobStart = (typeof JOB_STARTS)[number];

export const startAnswerSchema = z.union([
  z.object({
    kind: z.literal('start-job'),
    outcome: z.enum(JOB_STARTS),
    jobId: z.string(),
    clusterId: z.string(),
    keyId: z.string(),
    keyVersionId: z.string(),
    attempt: z.number().int().optional(),
  }),
  z.object({
    kind: z.literal('start-job'),
    outcome: z.enum(['not-a-target', 'encryption-off']),
    clusterId: z.string(),
  }),
]);

export const jobStatusSchema = z.object({
  jobId: z.string(),
  clusterId: z.string(),
  phase: z.enum(JOB_PHASES),
  /** The job is under way by its phase but saved no progress for SENTINEL_REENCRYPT_STALE_AFTER: it died. */
  stale: z.boolean().optional(),
  attempt: z.number().int(),
  invocation: z.number().int(),
  counters: sweepCountersSchema.optional(),
  /**
   * 100 once completed; while sweeping, Secrets visited of those the API server estimated at the sweep's
   * first page (at most 99: Secrets created since are swept too).
   */
  percent: z.number().optional(),
  startedAt: z.string().optional(),
  updatedAt: z.string(),
  completedAt: z.string().optional(),
  /** A completed job: proven by the API servers, or only rewritten (`note` says why nothing proves it). */
  proof: z.enum(['proven', 'unproven']).optional(),
  note: z.string().optional(),
  lastError: z.string().optional(),
});

export const statusAnswerSchema = z.union([
  z.object({ kind: z.literal('job-status'), found: z.literal(true), status: jobStatusSchema }),
  z.object({ kind: z.literal('job-status'), found: z.literal(false) }),
]);

const count = z.number().int().min(0);
export const estimateSchema = z.object({
  secrets: count,
  toRewrite: count,
  sizesRead: z.boolean(),
  bytes: count.optional(),
  bytesToRewrite: count.optional(),
  cannotKnow: z.array(z.string()),
  pages: count,
  kmsCalls: z.object({ kmsV2: count, kmsV1: count, why: z.string() }),
  expectedDurationMs: count,
  rate: z.object({ perSecond: z.number(), basis: z.string() }),
  blastRadius: z.object({
    watchEvents: count,
    topNamespaces: z.array(z.object({ namespace: z.string(), secrets: count })),
    byType: z.record(z.string(), count),
  }),
  writtenSinceRotation: count.optional(),
  recommendation: z.object({ strategy: strategyField, why: z.string() }),
});

export const estimateAnswerSchema = z.union([
  z.object({
    kind: z.literal('estimate'),
    outcome: z.literal('estimated'),
    clusterId: z.string(),
    keyId: z.string(),
    keyVersionId: z.string(),
    estimate: estimateSchema,
  }),
  z.object({
    kind: z.literal('estimate'),
    outcome: z.enum(['not-a-target', 'encryption-off']),
    clusterId: z.string(),
  }),
]);

export type EstimateAnswer = z.output<typeof estimateAnswerSchema>;

/**
 * Where a cluster stands (`status.ts`): encryption and its key, the key's version and rotation, the API servers'
 * verdict, the last job and the coverage of the key's current version; `verdict` says whether a person is
 * needed (`attention`, each reason listed) or the work is done but not proven (`unproven`).
 */
export const clusterStatusSchema = z.object({
  clusterId: z.string(),
  name: z.string().optional(),
  verdict: z.enum(['ok', 'unproven', 'attention']),
  /** Why a person is needed, or why nothing is proven: one sentence each. */
  reasons: z.array(z.string()),
  encryption: z.object({ enabled: z.boolean(), keyId: z.string().optional() }),
  key: z
    .object({
      keyId: z.string(),
      keyState: z.string(),
      primaryKeyVersion: z.string(),
      automaticRotation: z.string(),
      rotationInterval: z.string().optional(),
      lastRotationDate: z.string().optional(),
      nextRotationDate: z.string().optional(),
      deletionProtection: z.string().optional(),
    })
    .optional(),
  apiServers: z
    .object({ verdict: z.enum(['effective', 'not-effective', 'unproven']), reason: z.string() })
    .optional(),
  /** The last job in the cluster's state, with its key version and how long ago it saved anything. */
  job: jobStatusSchema.extend({ keyVersionId: z.string(), ageSeconds: z.number().int() }).optional(),
  /** The last completed re-encryption. */
  completed: z
    .object({ keyVersionId: z.string(), at: z.string().optional(), proof: z.enum(['proven', 'unproven']) })
    .optional(),
  /** The cluster's Secrets, and those marked for the key's primary version (metadata only): informative, not a verdict. */
  coverage: z
    .object({
      keyVersionId: z.string(),
      secrets: count,
      marked: count,
      proven: count,
      percent: z.number().int(),
    })
    .optional(),
});
export type ClusterStatus = z.output<typeof clusterStatusSchema>;

export const clusterStatusAnswerSchema = z.union([
  z.object({ kind: z.literal('cluster-status'), found: z.literal(true), status: clusterStatusSchema }),
  z.object({ kind: z.literal('cluster-status'), found: z.literal(false), clusterId: z.string() }),
]);
export type ClusterStatusAnswer = z.output<typeof clusterStatusAnswerSchema>;

/** What `enable-encryption` came to: the pre-flight checks, the steps, and the job that will do the rest. */
export const enableAnswerSchema = z.union([
  z.object({
    kind: z.literal('enable-encryption'),
    clusterId: z.string(),
    keyId: z.string(),
    keyVersionId: z.string().optional(),
    outcome: z.enum(['switched', 'already-enabled', 'dry-run', 'checks-failed', 'failed']),
    checks: z.array(
      z.object({
        id: z.string(),
        title: z.string(),
        status: z.enum(['pass', 'fail', 'warn', 'manual']),
        evidence: z.string(),
        remedy: z.string().optional(),
      }),
    ),
    steps: z.array(
      z.object({
        step: z.string(),
        status: z.enum(['done', 'skipped', 'failed']),
        detail: z.string(),
        ms: z.number().optional(),
      }),
    ),
    /** The regular re-encryption job rotation-watch starts once the cluster is Running with encryption on. */
    jobId: z.string().optional(),
  }),
  z.object({
    kind: z.literal('enable-encryption'),
    outcome: z.literal('not-a-target'),
    clusterId: z.string(),
  }),
]);
export type EnableAnswer = z.output<typeof enableAnswerSchema>;
export type StartAnswer = z.output<typeof startAnswerSchema>;
export type JobStatus = z.output<typeof jobStatusSchema>;
export type StatusAnswer = z.output<typeof statusAnswerSchema>;

/** What rotation-watch answered the webhook, checked against the request's kind (never cast). */
export function parseJobAnswer(kind: 'start-job', body: unknown): StartAnswer;
export function parseJobAnswer(kind: 'job-status', body: unknown): StatusAnswer;
export function parseJobAnswer(kind: 'estimate', body: unknown): EstimateAnswer;
export function parseJobAnswer(kind: 'enable-encryption', body: unknown): EnableAnswer;
export function parseJobAnswer(kind: 'cluster-status', body: unknown): ClusterStatusAnswer;
export function parseJobAnswer(
  kind: JobRequest['kind'],
  body: unknown,
): StartAnswer | StatusAnswer | EstimateAnswer | EnableAnswer | ClusterStatusAnswer {
  const schemas = {
    'start-job': startAnswerSchema,
    'job-status': statusAnswerSchema,
    estimate: estimateAnswerSchema,
    'enable-encryption': enableAnswerSchema,
    'cluster-status': clusterStatusAnswerSchema,
  } as const;
  const schema = schemas[kind];
  return parseWith(schema, body, `rotation-watch's ${kind} answer`);
}

import { z } from 'zod';
import { nonEmpty } from '../events/fields';
import { strategyField } from './strategy-field';

/**
 * The sweep's own record of where it is: its counters and its checkpoint (the cursor of `cursor.ts` with the
 * counters so far), as schemas, because a checkpoint crosses process boundaries (the job's payload and state
 * ConfigMap, the CLI's checkpoint file) and is parsed where it arrives. The sweep owns them; the job carries
 * them.
 */
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

export type SweepCounters = z.output<typeof sweepCountersSchema>;
/** Where a sweep resumes: the sweep's cursor with its counters (`shared/reencrypt/cursor.ts`). */
export type SweepCheckpoint = z.output<typeof sweepCheckpointSchema>;

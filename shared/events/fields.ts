import { z } from 'zod';

/** A non-empty string with no surrounding whitespace. */
export const nonEmpty = z.string().trim().min(1, 'must not be empty');

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * An ISO 8601 instant with a zone (`2021-08-05T09:21:32Z`, `2020-11-19T21:04:41+08:00`), as ActionTrail,
 * timer triggers and CloudEvents write it. Parsed into a Date so that no consumer re-parses a string.
 */
export const isoInstant = z
  .string()
  .regex(ISO_8601, 'must be an ISO 8601 date-time with a zone, e.g. 2026-11-29T08:00:00Z')
  .transform((text, ctx) => {
    const d = new Date(text);
    if (Number.isNaN(d.getTime())) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a real date` });
      return z.NEVER;
    }
    return d;
  });

/** SLS cursors are base64 of a decimal number (e.g. `MTUwNTM5MDI3NTY1ODcwNzU2Ng==`). */
export const slsCursor = z
  .string()
  .min(4, 'must be a base64 SLS cursor')
  .max(128, 'must be a base64 SLS cursor')
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be a base64 SLS cursor')
  .refine((cursor) => cursor.length % 4 === 0, 'must be a base64 SLS cursor (length is not a multiple of 4)');

/** A plain JSON object (not an array, not null). */
export const jsonObject = z.record(z.string(), z.unknown());

/** eventVersion appears as number 1 or string "1" in Alibaba's samples. */
export const looseInt = z.union([
  z.number().int(),
  z.string().regex(/^\d+$/, 'must be an integer').transform(Number),
]);

/**
 * The identifiers every layer checks, defined once: configuration, event schemas, the job payload and the
 * webhook's routes all use these.
 */
export const CLUSTER_ID_CHARS = '[a-zA-Z0-9-]{1,64}';
export const CLUSTER_ID = new RegExp(`^${CLUSTER_ID_CHARS}$`);
export const KEY_ID = /^[A-Za-z0-9-_/:.]{1,256}$/;
export const KEY_VERSION_ID = /^[A-Za-z0-9-]{1,128}$/;
/** `rj-<cluster, lower-cased, ≤ 40>-<16 hex>`: a re-encryption job's id (`shared/jobs/payload.ts` jobIdFor). */
export const JOB_ID = /^rj-[a-z0-9-]{1,40}-[0-9a-f]{16}$/;

export const clusterIdField = z
  .string()
  .regex(CLUSTER_ID, 'must be an ACK cluster id (letters, digits, dashes)');
export const keyIdField = z.string().regex(KEY_ID, 'must be a KMS key id, alias or ARN');
export const keyVersionIdField = z.string().regex(KEY_VERSION_ID, 'must be a KMS key version id');

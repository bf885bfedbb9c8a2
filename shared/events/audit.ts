import { z } from 'zod';
import { clusterIdField } from './fields';
import { decodeEventInput, parseWith } from './parse';
import { parseTimerEvent, type TimerEvent } from './timer';

/**
 * What the audit function receives, as one discriminated union: its timer, or a request from the webhook
 * (which names the audit and, optionally, the clusters). The shapes are told apart here, once.
 */
export const auditRequestSchema = z
  .object({
    auditId: z
      .string()
      .regex(/^audit-[0-9a-f]{16}(-[0-9a-f]{8}){0,2}$/, 'must be an audit id made by the webhook'),
    clusterIds: z.array(clusterIdField).max(100).optional(),
  })
  .strict();

/**
 * The webhook's record of a signed request it accepted (`request-<hash of the signature>`): the task id is what
 * counts, FC refusing a second task with it; the audit function does nothing with it.
 */
export const requestRecordSchema = z
  .object({ requestRecord: z.string().regex(/^request-[0-9a-f]{32}$/, 'must be a request record id') })
  .strict();

export type AuditEvent =
  | { kind: 'timer'; timer: TimerEvent }
  | ({ kind: 'webhook' } & z.output<typeof auditRequestSchema>)
  | ({ kind: 'request-record' } & z.output<typeof requestRecordSchema>);

export function parseAuditEvent(input: unknown): AuditEvent {
  const value = decodeEventInput(input, { format: 'audit event' });
  if (typeof value === 'object' && value !== null && 'triggerTime' in value)
    return { kind: 'timer', timer: parseTimerEvent(value) };
  if (typeof value === 'object' && value !== null && 'requestRecord' in value)
    return { kind: 'request-record', ...parseWith(requestRecordSchema, value, 'request record') };
  return { kind: 'webhook', ...parseWith(auditRequestSchema, value, 'audit request') };
}

/** A timer's audit id: `audit-<yyyymmddhhmmss>` of the trigger time. */
export const timerAuditId = (timer: TimerEvent): string =>
  `audit-${timer.triggerTime
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)}`;

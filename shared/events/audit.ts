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

export type AuditEvent =
  | { kind: 'timer'; timer: TimerEvent }
  | ({ kind: 'webhook' } & z.output<typeof auditRequestSchema>);

export function parseAuditEvent(input: unknown): AuditEvent {
  const value = decodeEventInput(input, { format: 'audit event' });
  if (typeof value === 'object' && value !== null && 'triggerTime' in value)
    return { kind: 'timer', timer: parseTimerEvent(value) };
  return { kind: 'webhook', ...parseWith(auditRequestSchema, value, 'audit request') };
}

/** A timer's audit id: `audit-<yyyymmddhhmmss>` of the trigger time. */
export const timerAuditId = (timer: TimerEvent): string =>
  `audit-${timer.triggerTime
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)}`;

import { z } from 'zod';
import { isoInstant, nonEmpty } from './fields';
import { type DecodeOptions, parseEvent } from './parse';

/** The FC timer trigger event (docs/cloud-facts.md#fc-events): `payload` is the trigger's configured string. */
export const timerEventSchema = z.object({
  triggerTime: isoInstant,
  triggerName: nonEmpty,
  payload: z.string().optional(),
});

export type TimerEvent = z.output<typeof timerEventSchema>;
export const TIMER_FORMAT = 'timer trigger event';

export function parseTimerEvent(input: unknown, options: Partial<DecodeOptions> = {}): TimerEvent {
  return parseEvent(timerEventSchema, input, { format: TIMER_FORMAT, ...options });
}

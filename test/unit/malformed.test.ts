import { afterAll, describe, expect, it } from 'vitest';
import { PoisonError } from '../../shared/errors';
import {
  parseActionTrailEvent,
  parseHttpTriggerEvent,
  parseLookupEventsBody,
  parseSlsTriggerEvent,
  parseTimerEvent,
  parseTrailCloudEvent,
} from '../../shared/events';
import { decodeEventInput } from '../../shared/events/parse';
import { parseJobPayload } from '../../shared/jobs/payload';
import { MALFORMED, type Parser } from '../fixtures/malformed';

const PARSERS: Record<Parser, (input: unknown) => unknown> = {
  eventbridge: (i) => parseTrailCloudEvent(i),
  actiontrail: (i) => parseActionTrailEvent(decodeEventInput(i, { format: 'ActionTrail event' })),
  sls: (i) => parseSlsTriggerEvent(i),
  timer: (i) => parseTimerEvent(i),
  http: (i) => parseHttpTriggerEvent(i),
  job: (i) => parseJobPayload(i),
  lookup: (i) => parseLookupEventsBody(decodeEventInput(i, { format: 'LookupEvents response' })),
};

describe('the malformed-input corpus', () => {
  it('has at least 40 cases', () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(40);
  });

  it.each(MALFORMED.map((c) => [c.name, c] as const))('%s: a classified, non-retryable error', (_name, c) => {
    let caught: unknown;
    let result: unknown;
    try {
      result = PARSERS[c.parser](c.input);
    } catch (err) {
      caught = err;
    }
    expect(result, 'nothing may flow on from a malformed input').toBeUndefined();
    expect(caught).toBeInstanceOf(PoisonError);
    const err = caught as PoisonError;
    expect(err.kind).toBe('poison');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^Failed to parse /);
    if (c.path !== undefined) {
      expect(err.path).toBe(c.path);
      expect(err.message).toContain(`${c.path}: `);
    }
    if (c.message) expect(err.message).toMatch(c.message);
    expect(err.message.length, 'messages stay short enough to read').toBeLessThan(400);
  });

  afterAll(() => {
    const probe: Record<string, unknown> = {};
    expect(probe.polluted).toBeUndefined();
    expect(probe.admin).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

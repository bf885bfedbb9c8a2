import { describe, expect, it } from 'vitest';
import { RetryableError } from '../../shared/errors';
import { parseTimerEvent } from '../../shared/events';
import { defineHandler } from '../../shared/runtime/handler';

const env = { SENTINEL_REGION: 'cn-hangzhou', SENTINEL_WEBHOOK_SECRET: 'w'.repeat(40) };
const context = { requestId: 'req-42', function: { name: 'audit', timeout: 120 } };

describe('defineHandler', () => {
  it('parses, runs the use case and logs with the request id', async () => {
    const lines: string[] = [];
    let now = 1_000_000;
    const handler = defineHandler(
      'audit',
      async (event, inv) => {
        const timer = parseTimerEvent(event);
        inv.log.info('tick', { trigger: timer.triggerName });
        now += 5_000;
        return { remaining: inv.remainingMs(), region: inv.config.region };
      },
      { env, sink: (l) => lines.push(l), now: () => now },
    );
    const result = await handler(
      Buffer.from('{"triggerTime":"2026-11-29T08:00:00Z","triggerName":"daily"}'),
      context,
    );
    expect(result).toEqual({ remaining: 115_000, region: 'cn-hangzhou' });
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      msg: 'tick',
      function: 'audit',
      requestId: 'req-42',
      trigger: 'daily',
    });
  });

  it('answers poison without throwing, so FC does not retry it', async () => {
    const lines: string[] = [];
    const handler = defineHandler('audit', async (event) => parseTimerEvent(event), {
      env,
      sink: (l) => lines.push(l),
    });
    const result = await handler(Buffer.from('{"triggerTime":"soon"}'), context);
    expect(result).toEqual({
      ok: false,
      poison: true,
      error: {
        code: 'InvalidEvent',
        message: expect.stringMatching(/triggerTime: must be an ISO 8601/),
        path: 'triggerTime',
      },
    });
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'warn',
      msg: 'poison input refused',
      requestId: 'req-42',
    });
  });

  it('throws retryable failures for FC to retry, with secrets redacted', async () => {
    const lines: string[] = [];
    const handler = defineHandler(
      'reencrypt',
      async () => {
        throw new RetryableError(`throttled; token: ${'t'.repeat(12)} Bearer abcdefghijklmnop`);
      },
      { env, sink: (l) => lines.push(l) },
    );
    const err = await handler('{}', context).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('RetryableError');
    expect((err as Error).message).not.toContain('abcdefghijklmnop');
    expect((err as Error).message).not.toContain('t'.repeat(12));
    expect(lines.join('\n')).not.toContain('abcdefghijklmnop');
  });

  it('fails every invocation with the configuration problem, naming the variable', async () => {
    const lines: string[] = [];
    const handler = defineHandler('audit', async () => 'never', {
      env: { SENTINEL_REENCRYPT_PAGE_SIZE: 'x' },
      sink: (l) => lines.push(l),
    });
    await expect(handler('{}', context)).rejects.toThrow(/SENTINEL_REGION: is not set/);
    await expect(handler('{}', context)).rejects.toThrow(/SENTINEL_REENCRYPT_PAGE_SIZE/);
    expect(JSON.parse(lines[0] ?? '').msg).toBe('invalid configuration');
  });

  it('never echoes the webhook secret in a configuration failure', async () => {
    const secret = 'short-secret-value';
    const lines: string[] = [];
    const handler = defineHandler('webhook', async () => 'never', {
      env: { SENTINEL_REGION: 'cn-hangzhou', SENTINEL_WEBHOOK_SECRET: secret },
      sink: (l) => lines.push(l),
    });
    const err = await handler('{}', context).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/SENTINEL_WEBHOOK_SECRET: must be at least 32 characters/);
    expect((err as Error).message).not.toContain(secret);
    expect(lines.join('')).not.toContain(secret);
  });
});

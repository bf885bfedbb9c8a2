import { afterEach, describe, expect, it } from 'vitest';
import { credentialsFromContext } from '../../shared/cloud/credentials';
import { RetryableError } from '../../shared/errors';
import { jsonResponse, parseTimerEvent } from '../../shared/events';
import { clearRegisteredSecrets } from '../../shared/log';
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

describe('every answer passes the redaction guard', () => {
  afterEach(() => clearRegisteredSecrets());
  const sts = {
    accessKeyId: 'STS.NUx3kZ',
    accessKeySecret: 'sts-secret-9f8e7d6c5b4a',
    securityToken: 'CAIS8gJ1q6Ft5B2yfSjIr5bget+3token',
  };
  // What an SDK's SignatureDoesNotMatch quotes: the string it signed, the token percent-encoded twice.
  const stringToSign = `POST&%2F&AccessKeyId%3DSTS.NUx3kZ%26SecurityToken%3D${encodeURIComponent(
    encodeURIComponent(sts.securityToken),
  )}%26Version%3D2016-01-20`;

  it("an HTTP answer's body: an SDK error quoting the STS token never reaches the client", async () => {
    const handler = defineHandler(
      'webhook',
      async (_e, inv) => {
        credentialsFromContext(inv.context);
        return jsonResponse(502, { error: { code: 'UpstreamError', message: stringToSign } });
      },
      { env, sink: () => undefined },
    );
    const out = (await handler(Buffer.from('{}'), { ...context, credentials: sts })) as { body: string };
    expect(out.body).not.toContain(encodeURIComponent(sts.securityToken));
    expect(out.body).not.toContain('CAIS8gJ1');
    expect(JSON.parse(out.body).error.code).toBe('UpstreamError');
  });

  it("an enable answer's checks and steps, and an estimate's notes", async () => {
    const enable = {
      kind: 'enable-encryption',
      clusterId: 'c-1',
      keyId: 'key-1',
      outcome: 'failed',
      checks: [{ id: 'key', title: 'key', status: 'fail', evidence: `DescribeKey as ${sts.securityToken}` }],
      steps: [{ step: 'UpdateKMSEncryption', status: 'failed', detail: stringToSign }],
      notes: [`Authorization: Bearer ${'e'.repeat(24)}`],
    };
    const handler = defineHandler(
      'rotation-watch',
      async (_e, inv) => {
        credentialsFromContext(inv.context);
        return enable;
      },
      { env, sink: () => undefined },
    );
    const out = JSON.stringify(await handler(Buffer.from('{}'), { ...context, credentials: sts }));
    expect(out).not.toContain('CAIS8gJ1');
    expect(out).not.toContain('e'.repeat(24));
    expect(JSON.parse(out)).toMatchObject({ outcome: 'failed', steps: [{ step: 'UpdateKMSEncryption' }] });
  });
});

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotifyChannelConfig } from '../../shared/config';
import { clearRegisteredSecrets, registerSecret } from '../../shared/log';
import { createNotifier, STANDARD_WEBHOOK_HEADERS } from '../../shared/notify';
import { memoryLogger } from '../helpers/memory-logger';
import { type RecordedRequest, Recorder } from '../helpers/recorder';

/** Local receivers that check each channel's signature the way the service does. */
const WEBHOOK_KEY = randomBytes(32);
const WEBHOOK_SECRET = `whsec_${WEBHOOK_KEY.toString('base64')}`;
const DING_SECRET = 'SECdingtalk0123456789abcdef';
const LARK_SECRET = 'lark-secret-0123456789';
const NOW = Date.parse('2026-11-29T08:00:00Z');

/** A receiver's answer with this status and no body. */
const status = (code: number) => (_req: RecordedRequest, res: ServerResponse) => {
  res.writeHead(code);
  res.end();
};

let receiver: Recorder;
beforeAll(async () => {
  receiver = await new Recorder().start();
});
afterAll(async () => {
  await receiver.stop();
});

const channels = (): NotifyChannelConfig[] => [
  {
    type: 'webhook',
    name: 'hooks',
    url: `${receiver.url}/hook`,
    secret: WEBHOOK_SECRET,
    severities: ['critical', 'report', 'audit'],
  },
  {
    type: 'dingtalk',
    name: 'ding',
    url: `${receiver.url}/robot/send?access_token=tok`,
    secret: DING_SECRET,
    severities: ['critical'],
  },
  {
    type: 'lark',
    name: 'lark',
    url: `${receiver.url}/open-apis/bot/v2/hook/x`,
    secret: LARK_SECRET,
    severities: ['critical', 'report'],
  },
  { type: 'slack', name: 'slack', url: `${receiver.url}/services/T/B/X`, severities: ['audit', 'critical'] },
];

describe('notification channels', () => {
  it('signs each channel the way its service verifies, and routes by severity', async () => {
    receiver.requests.length = 0;
    const results = await createNotifier(channels(), { now: () => NOW }).notify({
      severity: 'critical',
      title: 'KMS key key-1 was disabled',
      text: 'The API server of c1 cannot decrypt Secrets until the key is enabled again.',
      details: { keyId: 'key-1', token: 'must-not-leak-123' },
    });
    expect(results.map((r) => [r.channel, r.ok])).toEqual([
      ['hooks', true],
      ['ding', true],
      ['lark', true],
      ['slack', true],
    ]);
    const byPath = (p: string) => receiver.requests.find((r) => r.path === p);

    // Standard Webhooks: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">, keyed with the whsec_ bytes.
    const hook = byPath('/hook');
    const id = String(hook?.headers[STANDARD_WEBHOOK_HEADERS.id]);
    const t = String(hook?.headers[STANDARD_WEBHOOK_HEADERS.timestamp]);
    const [, v1] =
      /^v1,([A-Za-z0-9+/]{43}=)$/.exec(String(hook?.headers[STANDARD_WEBHOOK_HEADERS.signature])) ?? [];
    const expected = createHmac('sha256', WEBHOOK_KEY).update(`${id}.${t}.${hook?.body}`).digest('base64');
    expect(timingSafeEqual(Buffer.from(expected), Buffer.from(v1 ?? ''))).toBe(true);
    expect(id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(Number(t)).toBe(Math.floor(NOW / 1000));
    expect(JSON.parse(hook?.body ?? '{}')).toMatchObject({
      severity: 'critical',
      title: 'KMS key key-1 was disabled',
      details: { keyId: 'key-1', token: '[REDACTED]' },
    });

    const ding = byPath('/robot/send');
    const ts = ding?.query.timestamp ?? '';
    expect(ding?.query.sign).toBe(
      createHmac('sha256', DING_SECRET).update(`${ts}\n${DING_SECRET}`).digest('base64'),
    );
    expect(Number(ts)).toBe(NOW);
    expect(JSON.parse(ding?.body ?? '{}').msgtype).toBe('markdown');

    const lark = JSON.parse(byPath('/open-apis/bot/v2/hook/x')?.body ?? '{}');
    expect(lark.sign).toBe(
      createHmac('sha256', `${lark.timestamp}\n${LARK_SECRET}`).update('').digest('base64'),
    );
    expect(lark.content.text).toContain('[critical] KMS key key-1 was disabled');

    expect(JSON.parse(byPath('/services/T/B/X')?.body ?? '{}').text).toContain('KMS key key-1 was disabled');
    expect(receiver.requests.map((r) => r.body).join('')).not.toContain('must-not-leak-123');

    receiver.requests.length = 0;
    await createNotifier(channels()).notify({ severity: 'audit', title: 'audit done', text: 'all pass' });
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/hook', '/services/T/B/X']);
  });

  it('retries 429 and 5xx with backoff, and gives up on other 4xx', async () => {
    receiver.requests.length = 0;
    receiver.reply(status(503), status(429), status(200));
    const [first] = await createNotifier([channels()[0] as NotifyChannelConfig], { baseDelayMs: 5 }).notify({
      severity: 'report',
      title: 't',
      text: 'x',
    });
    expect(first).toMatchObject({ ok: true, attempts: 3 });
    receiver.reply(status(400));
    const [bad] = await createNotifier([channels()[0] as NotifyChannelConfig], { baseDelayMs: 5 }).notify({
      severity: 'report',
      title: 't',
      text: 'x',
    });
    expect(bad).toMatchObject({ ok: false, status: 400, error: 'HTTP 400', attempts: 1 });
  });

  it.each([301, 302, 307, 308])(
    'never follows a %i: the signed POST stays with the configured host',
    async (code) => {
      const elsewhere = await new Recorder().start();
      try {
        receiver.requests.length = 0;
        receiver.reply((_req, res) => {
          res.writeHead(code, { location: `${elsewhere.url}/stolen` });
          res.end();
        });
        const [result] = await createNotifier([channels()[0] as NotifyChannelConfig], {
          baseDelayMs: 5,
        }).notify({
          severity: 'critical',
          title: 't',
          text: 'x',
        });
        expect(result).toMatchObject({ ok: false, status: code, attempts: 1 });
        expect(result?.error).toMatch(/redirects are not followed/);
        expect(receiver.requests).toHaveLength(1);
        expect(elsewhere.requests).toEqual([]);
      } finally {
        await elsewhere.stop();
      }
    },
  );

  it('redacts titles and texts too, and names an unnamed channel by its place in the configuration', async () => {
    receiver.requests.length = 0;
    const leaked = 'sts-token-that-must-not-leak-0123456789';
    registerSecret(leaked);
    try {
      const unnamed = channels().map(({ name: _name, ...c }) => c);
      const results = await createNotifier(unnamed, { now: () => NOW }).notify({
        severity: 'report',
        title: `report for ${leaked}`,
        text: `LookupEvents failed: SecurityToken=${leaked}`,
      });
      expect(results.map((r) => r.channel)).toEqual(['webhook#0', 'lark#2']);
      const bodies = receiver.requests.map((r) => r.body).join('\n');
      expect(bodies).toContain('report for');
      expect(bodies.includes(leaked), 'a secret reached a receiver').toBe(false);
    } finally {
      clearRegisteredSecrets();
    }
  });

  it("escapes event-chosen text for each chat's markup: no mention, no link, no control character", async () => {
    receiver.requests.length = 0;
    // What an ActionTrail event may name as its project and logstore, pasted into trail-verify's alert.
    const project = '<!channel> <https://evil.example/login|re-authenticate here>';
    const logstore =
      '[open the console](https://evil.example/x) <at user_id="all"></at> @all \u001b[2J\u009b31m';
    await createNotifier(channels(), { now: () => NOW }).notify({
      severity: 'critical',
      title: `ActionTrail events from another logstore: ${project}`,
      text: `project ${project}, logstore ${logstore}`,
      details: { logstore },
    });
    const byPath = (p: string) => JSON.parse(receiver.requests.find((r) => r.path === p)?.body ?? '{}');
    const slack = String(byPath('/services/T/B/X').text);
    const ding = String(byPath('/robot/send').markdown.text);
    const lark = String(byPath('/open-apis/bot/v2/hook/x').content.text);
    for (const [name, text] of Object.entries({ slack, dingtalk: ding, lark })) {
      expect(text, `${name}: a URL a client would link`).not.toMatch(/https?:\/\/|evil\.example/);
      const controls = [...text].filter((c) => c !== '\n' && /\p{Cc}/u.test(c));
      expect(controls, `${name}: a control character`).toEqual([]);
      expect(text, `${name}: what was said is still there`).toContain('re-authenticate here');
    }
    expect(slack, 'Slack: <!channel> and <url|text> are markup').not.toMatch(/<[!@#h]/);
    expect(slack).toContain('&lt;!channel&gt;');
    expect(ding, 'DingTalk: [text](url) is a link').not.toMatch(/\]\(/);
    expect(lark, 'Lark: <at user_id="all"> mentions everyone').not.toContain('<at');
    // The generic webhook is JSON for programs: the values as they are (a receiver escapes for its own output).
    expect(byPath('/hook').details.logstore).toBe(logstore);
  });

  it('every delivery verifies with the standardwebhooks library, as a receiver would, a retried one under its first id', async () => {
    const RAW_SECRET = 'a-raw-webhook-secret-0123456789';
    const hooks: NotifyChannelConfig[] = [
      {
        type: 'webhook',
        name: 'whsec',
        url: `${receiver.url}/whsec`,
        secret: WEBHOOK_SECRET,
        severities: ['report'],
      },
      {
        type: 'webhook',
        name: 'raw',
        url: `${receiver.url}/raw`,
        secret: RAW_SECRET,
        severities: ['report'],
      },
    ];
    receiver.requests.length = 0;
    // The first attempt of one channel fails (whichever comes first): it is retried with the same id.
    receiver.reply(status(503));
    const notifier = createNotifier(hooks, { baseDelayMs: 5 });
    await notifier.notify({ severity: 'report', title: 'job done', text: 'c1 re-encrypted' });
    await notifier.notify({ severity: 'report', title: 'audit done', text: 'all pass' });
    // A receiver's verifier: the spec's whsec_ secret as it is, a raw secret as its bytes.
    const verifiers: Record<string, Webhook> = {
      '/whsec': new Webhook(WEBHOOK_SECRET),
      '/raw': new Webhook(Buffer.from(RAW_SECRET, 'utf8'), { format: 'raw' }),
    };
    const ids = receiver.requests.map((r) => {
      const headers = Object.fromEntries(
        Object.values(STANDARD_WEBHOOK_HEADERS).map((h) => [h, String(r.headers[h])]),
      );
      expect(verifiers[r.path]?.verify(r.body, headers), r.path).toMatchObject({ severity: 'report' });
      // And nothing else verifies: another body under these headers does not.
      expect(() => verifiers[r.path]?.verify(`${r.body} `, headers)).toThrow(/No matching signature/);
      return headers[STANDARD_WEBHOOK_HEADERS.id];
    });
    expect(receiver.requests).toHaveLength(5);
    // Two messages, each under one id whichever channel and attempt delivered it.
    const [first, ...rest] = ids;
    expect(new Set(ids).size).toBe(2);
    expect(rest.filter((id) => id === first)).toHaveLength(2);
  });

  it('never throws when a receiver is down, and logs no URL or secret', async () => {
    const log = memoryLogger();
    const down: NotifyChannelConfig = {
      type: 'dingtalk',
      url: 'http://127.0.0.1:1/robot/send?access_token=SECRET-TOKEN',
      secret: DING_SECRET,
      severities: ['critical'],
    };
    const [result] = await createNotifier([down], { log, baseDelayMs: 1, maxAttempts: 2 }).notify({
      severity: 'critical',
      title: 't',
      text: 'x',
    });
    expect(result).toMatchObject({ ok: false, attempts: 2, error: 'connection failed' });
    expect(log.lines.join('\n')).not.toContain('SECRET-TOKEN');
    expect(log.lines.join('\n')).not.toContain(DING_SECRET);
  });
});

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../bin/exit-codes';
import { AUDIT_FUNCTION } from '../../functions/webhook';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import { runCli } from '../helpers/cli';
import { emulatorEnv, serveWebhook } from '../helpers/emulator';

/**
 * `ack-kms-sentinel call` against the webhook function behind `serve`'s HTTP server (in this process): it signs
 * as the webhook verifies, sends, prints the answer, and exits by the answer's status. The README's first
 * signed call is run verbatim; the signing secret can live in KMS Secrets Manager.
 */
const SECRET = 'call-test-secret-0123456789abcdef0123456789';
const KMS_NAME = 'ack-kms-sentinel-webhook-call-test';
let cloud: CloudEmulator;
let server: Server;
let url = '';
const audits: string[] = [];
let cloudEnv: Record<string, string>;

beforeAll(async () => {
  cloud = await CloudEmulator.start();
  cloud.registerFunction({ name: AUDIT_FUNCTION, handler: async (e) => audits.push(e.toString()) });
  cloud.state.secrets.push({
    secretName: KMS_NAME,
    versions: [
      { versionId: 'v1', data: SECRET, createTime: new Date().toISOString(), stages: ['ACSCurrent'] },
    ],
  });
  cloudEnv = emulatorEnv(cloud);
  ({ server, url } = await serveWebhook(cloud, { ...cloudEnv, SENTINEL_WEBHOOK_SECRET: SECRET }));
});
afterAll(async () => {
  server.close();
  await cloud.stop();
});

const call = (args: string[], env: Record<string, string> = {}) =>
  runCli(['call', ...args], { SENTINEL_WEBHOOK_URL: url, SENTINEL_WEBHOOK_SECRET: SECRET, ...env });

// Each test starts CLI processes (npx too), which on a busy two-core machine can take many seconds each.
describe('ack-kms-sentinel call', { timeout: 120_000 }, () => {
  it("runs the README's first signed call verbatim: an audit starts, then the retry finds it", async () => {
    const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
    const line = /```sh\n(npx ack-kms-sentinel call [^\n]*)\n```/.exec(readme)?.[1];
    if (!line) throw new Error('the README has no `call` example');
    const env = { ...process.env, SENTINEL_WEBHOOK_URL: url, SENTINEL_WEBHOOK_SECRET: SECRET };
    const run = () => promisify(execFile)('bash', ['-c', line], { env, cwd: join(__dirname, '../..') });
    const first = await run();
    expect(JSON.parse(first.stdout)).toMatchObject({
      status: 'started',
      auditId: expect.stringMatching(/^audit-/),
    });
    expect(first.stderr).toContain('HTTP 202');
    await cloud.idle();
    expect(audits.filter((a) => a.includes('"clusterIds":["c-123"]'))).toHaveLength(1);
    expect(JSON.parse((await run()).stdout)).toMatchObject({ status: 'already-started' });
  });

  it('exits 1 with the answer printed when the webhook refuses (404, 401), or when it cannot be reached', async () => {
    const missing = await call(['GET', '/v1/reports/latest']);
    expect(missing.code).toBe(EXIT.failed);
    expect(JSON.parse(missing.stdout)).toEqual({
      error: { code: 'NoReport', message: 'no report bucket is configured' },
    });
    const wrong = await call(['GET', '/v1/reports/latest'], {
      SENTINEL_WEBHOOK_SECRET: 'another-secret-of-enough-length',
    });
    expect(wrong.code).toBe(EXIT.failed);
    expect(wrong.stderr).toContain('HTTP 401');
    expect(wrong.stdout).not.toContain('another-secret');
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const down = await call(['GET', '/v1/reports/latest', '--url', `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(EXIT.failed);
    expect(down.stderr).toContain(`the webhook at http://127.0.0.1:${port} cannot be reached: ECONNREFUSED`);
  });

  it('signs a query with the path and reads a kms-secret:// secret', async () => {
    const run = await call(['POST', '/v1/clusters/c-123/reencrypt?dryRun=maybe'], {
      ...cloudEnv,
      ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
      SENTINEL_WEBHOOK_SECRET: `kms-secret://${KMS_NAME}`,
    });
    // Past the signature check (a query not signed, or a wrong secret, would be 401): the handler reads the query.
    expect(run.stderr).toContain('HTTP 400');
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { message: 'dryRun must be true or false' } });
    expect(run.code).toBe(EXIT.failed);
  });

  it('refuses bad input before signing anything (exit 2)', async () => {
    const cases: Array<[string[], Record<string, string>, string]> = [
      [['PUT', '/v1/audits'], {}, 'METHOD must be GET or POST'],
      [['POST', '/v1/audits', '--body', '{not json'], {}, '--body is not JSON'],
      [['GET', '/v1/audits', '--body', '{}'], {}, 'a GET request takes no --body'],
      [['GET', 'v1/audits'], {}, 'PATH must start with /v1/'],
      [['GET', '/v1/audits'], { SENTINEL_WEBHOOK_URL: '' }, 'no webhook address'],
      [['GET', '/v1/audits'], { SENTINEL_WEBHOOK_URL: 'http://example.com' }, 'must be https'],
      [['GET', '/v1/audits'], { SENTINEL_WEBHOOK_SECRET: '' }, 'no signing secret'],
      [['POST', '/v1/audits', '--idempotency-key', 'has space'], {}, '--idempotency-key must be'],
    ];
    for (const [args, env, message] of cases) {
      const run = await call(args, env);
      expect(run.code, args.join(' ')).toBe(EXIT.usage);
      expect(run.stderr, args.join(' ')).toContain(message);
    }
  });
});

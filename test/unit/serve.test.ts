import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../bin/cli';
import { localContext } from '../../bin/local-context';
import { startServer } from '../../bin/serve-command';
import {
  AUDIT_FUNCTION,
  createHandler,
  MAX_BODY_BYTES,
  SIGNATURE_HEADER,
  signRequest,
  TIMESTAMP_HEADER,
} from '../../functions/webhook';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import type { HttpTriggerResponse } from '../../shared/events';
import { jobIdFor } from '../../shared/jobs/payload';
import { emulatorEnv, serveWebhook } from '../helpers/emulator';
import { fixture } from '../helpers/fixtures';

/**
 * The webhook as users try it before deploying: `ack-kms-sentinel serve` turns requests into FC 3.0 HTTP
 * trigger events, the README's signed curl call works against it, and `invoke webhook` takes an event file,
 * including the one `s local invoke` sends.
 */
const SECRET = 'serve-test-secret-0123456789abcdef0123456789';
let cloud: CloudEmulator;
let server: Server;
let url = '';
const audits: string[] = [];
let env: Record<string, string>;

beforeAll(async () => {
  cloud = await CloudEmulator.start();
  cloud.registerFunction({ name: AUDIT_FUNCTION, handler: async (e) => audits.push(e.toString()) });
  cloud.registerFunction({ name: 'ack-kms-sentinel-reencrypt', handler: async () => 'ok' });
  env = { ...emulatorEnv(cloud), SENTINEL_WEBHOOK_SECRET: SECRET };
  ({ server, url } = await serveWebhook(cloud, env));
});
afterAll(async () => {
  server.close();
  await cloud.stop();
});

/** docs/webhook.md's signed curl example (openssl and curl alone), verbatim. */
function readmeExample(): string {
  const readme = readFileSync(join(__dirname, '../../docs/webhook.md'), 'utf8');
  const block = /```sh\n(ts=\$\(date \+%s\);[\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error('docs/webhook.md has no signed curl example');
  return block;
}

describe('ack-kms-sentinel serve', () => {
  it("answers docs/webhook.md's signed curl call (openssl and curl alone): an audit starts", async () => {
    // Asynchronously: the server answering curl runs in this process.
    const { stdout: out } = await promisify(execFile)('bash', ['-c', readmeExample()], {
      env: { ...process.env, URL: url, SENTINEL_WEBHOOK_SECRET: SECRET },
    });
    expect(JSON.parse(out)).toMatchObject({ status: 'started', auditId: expect.stringMatching(/^audit-/) });
    await cloud.idle();
    expect(audits.filter((a) => a.includes('"clusterIds":["c-123"]'))).toHaveLength(1);
  });

  it('signs the raw path as sent, percent-encoding included', async () => {
    const rawPath = '/v1/jobs/rj%2Dnone';
    const ts = String(Math.floor(Date.now() / 1000));
    const sign = (path: string) => signRequest(SECRET, { method: 'GET', path, timestamp: ts, body: '' });
    const call = (signature: string) =>
      fetch(`${url}${rawPath}`, { headers: { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signature } });
    expect((await call(sign('/v1/jobs/rj-none'))).status, 'signed over the decoded path').toBe(401);
    const raw = await call(sign(rawPath));
    expect(raw.status, 'signed over the raw path: past the check, no such route').toBe(404);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('NotFound');
  });
});

describe('ack-kms-sentinel invoke webhook', () => {
  it('takes the HTTP event `s local invoke` sends (an empty requestId), and an event of ours', async () => {
    const template = join(__dirname, '../fixtures/events/fc3-local-invoke-http.json');
    const direct = (await createHandler({ env, sink: () => undefined })(readFileSync(template), {
      requestId: '',
    })) as HttpTriggerResponse;
    expect(direct.statusCode, 'parsed, then refused as unsigned').toBe(401);

    const ts = String(Math.floor(Date.now() / 1000));
    const event = fixture<Record<string, unknown>>('fc3-local-invoke-http.json');
    const signed = {
      ...event,
      rawPath: '/v1/reports/latest',
      body: '',
      headers: {
        [TIMESTAMP_HEADER]: ts,
        [SIGNATURE_HEADER]: signRequest(SECRET, {
          method: 'GET',
          path: '/v1/reports/latest',
          timestamp: ts,
          body: '',
        }),
      },
      requestContext: {
        ...(event.requestContext as object),
        http: { method: 'GET', path: '/v1/reports/latest', protocol: 'HTTP/1.1' },
      },
    };
    const file = join(tmpdir(), `webhook-event-${process.pid}.json`);
    writeFileSync(file, JSON.stringify(signed));
    let printed = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
      printed += String(c);
      return true;
    });
    const saved = { ...process.env };
    Object.assign(process.env, env, {
      ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
    });
    try {
      expect(await main(['invoke', 'webhook', '--event', file])).toBe(0);
    } finally {
      out.mockRestore();
      process.env = saved;
    }
    const response = JSON.parse(printed) as HttpTriggerResponse;
    // Signed and routed: no report bucket is configured here.
    expect(response.statusCode).toBe(404);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'NoReport' } });
  });
});

describe('ack-kms-sentinel serve under bad input', () => {
  it('answers a malformed escape and stays up; refuses a port in use with a usage error', async () => {
    const bad = await fetch(`${url}/v1/%E0%A4%A`);
    expect(bad.status).toBe(401);
    const after = await fetch(`${url}/v1/jobs/x`);
    expect(after.status, 'still serving').toBe(401);
    const port = Number(new URL(url).port);
    await expect(
      startServer(env, {
        port,
        host: '127.0.0.1',
        context: { credentials: { accessKeyId: 'a', accessKeySecret: 'b' } },
      }),
    ).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
  });
});

/** A request sent by hand: `head` is the request line and headers; the server's answer as text, once it closes. */
function rawExchange(target: string, head: string, body = ''): Promise<string> {
  const { hostname, port } = new URL(target);
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(Number(port), hostname, () => socket.write(`${head}${body}`));
    socket.on('data', (c: Buffer) => {
      answer += c.toString();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('ack-kms-sentinel serve at its limits', () => {
  it('answers 413 at the body limit while the client is still sending, without reading the rest', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${url}/v1/audits`, { method: 'POST' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      // Chunked, never ended: a server that waits for the whole body never answers.
      req.write(Buffer.alloc(MAX_BODY_BYTES + 1, 'a'));
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'PayloadTooLarge', message: `the body is larger than ${MAX_BODY_BYTES} bytes` },
    });
  });

  it('answers 413 to a Content-Length over the limit before reading a byte of it', async () => {
    const answer = await rawExchange(
      url,
      'POST /v1/audits HTTP/1.1\r\nHost: local\r\ncontent-length: 134217728\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('PayloadTooLarge');
  });

  it('drops a client that never finishes its headers, or its body (408)', async () => {
    const slow = await startServer(env, {
      port: 0,
      host: '127.0.0.1',
      context: {},
      timeouts: { headersMs: 150, requestMs: 300 },
    });
    try {
      const headers = await rawExchange(slow.url, 'POST /v1/audits HTTP/1.1\r\nHost: local\r\n');
      expect(headers).toMatch(/^HTTP\/1\.1 408 /);
      const body = await rawExchange(
        slow.url,
        'POST /v1/audits HTTP/1.1\r\nHost: local\r\ncontent-length: 10\r\n\r\n',
        '12345',
      );
      expect(body).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      slow.server.close();
    }
  });
});

describe('invoke and serve without Alibaba Cloud credentials', () => {
  /** Runs `body` with no credential in the environment or the home directory the default chain reads. */
  async function withoutCredentials<T>(body: () => Promise<T>): Promise<T> {
    const saved = { ...process.env };
    for (const k of Object.keys(process.env)) if (k.startsWith('ALIBABA_CLOUD_')) delete process.env[k];
    process.env.HOME = mkdtempSync(join(tmpdir(), 'no-credentials-'));
    try {
      return await body();
    } finally {
      process.env = saved;
    }
  }

  it('serve starts and answers what never reaches the cloud: a bad signature, a bad request', async () => {
    await withoutCredentials(async () => {
      const local = await startServer(env, {
        port: 0,
        host: '127.0.0.1',
        context: await localContext({ accountId: cloud.state.accountId }),
      });
      try {
        expect((await fetch(`${local.url}/v1/jobs/x`)).status).toBe(401);
        expect(
          (await fetch(`${local.url}/v1/audits`, { method: 'POST', body: 'x'.repeat(70_000) })).status,
        ).toBe(413);
        // Signed and routed: this one needs the cloud, and says what is missing.
        const ts = String(Math.floor(Date.now() / 1000));
        const path = `/v1/jobs/${jobIdFor('c-123', 'key-1', 'v-1')}`;
        const signature = signRequest(SECRET, { method: 'GET', path, timestamp: ts, body: '' });
        const upstream = await fetch(`${local.url}${path}`, {
          headers: { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signature },
        });
        expect(upstream.status).toBe(503);
        expect(((await upstream.json()) as { error: { code: string } }).error.code).toBe('NotConfigured');
      } finally {
        local.server.close();
      }
    });
  });

  it('invoke runs a handler on a request that never reaches the cloud', async () => {
    const file = join(tmpdir(), `unsigned-event-${process.pid}.json`);
    writeFileSync(file, readFileSync(join(__dirname, '../fixtures/events/fc3-local-invoke-http.json')));
    const bad = join(tmpdir(), `bad-event-${process.pid}.json`);
    writeFileSync(bad, '{"kind":"no-such-request"}');
    let printed = '';
    let said = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
      printed += String(c);
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
      said += String(c);
      return true;
    });
    try {
      await withoutCredentials(async () => {
        Object.assign(process.env, env);
        expect(await main(['invoke', 'webhook', '--event', file])).toBe(0);
        expect(await main(['invoke', 'rotation-watch', '--event', bad])).toBe(2);
      });
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(JSON.parse(printed).statusCode, 'unsigned: refused without the cloud').toBe(401);
    expect(said).toMatch(/Failed to parse rotation-watch request: kind/);
    expect(said).not.toContain('No Alibaba Cloud credentials');
  });
});

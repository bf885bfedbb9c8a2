import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler as auditHandler } from '../../functions/audit';
import { createHandler as rotationWatchHandler } from '../../functions/rotation-watch';
import {
  AUDIT_FUNCTION,
  createHandler,
  MAX_BODY_BYTES,
  SIGNATURE_HEADER,
  signRequest,
  TIMESTAMP_HEADER,
} from '../../functions/webhook';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import { buildReport } from '../../shared/audit/report';
import type { HttpTriggerResponse } from '../../shared/events';
import { parseAuditEvent } from '../../shared/events/audit';
import { ossReportStore } from '../helpers/report-store';

/** The signed HTTP API against the emulated cloud (CS, KMS, FC), through the FC 3.0 HTTP trigger format. */
const SECRET = 'webhook-secret-0123456789abcdef0123456789';
let cloud: CloudEmulator;
let handler: ReturnType<typeof createHandler>;
const started: string[] = [];
/** Audits run until this resolves (open unless a test holds them). */
let auditGate: Promise<void> = Promise.resolve();

beforeAll(async () => {
  cloud = await CloudEmulator.start();
  const key = cloud.createKey('key-web');
  cloud.addCluster({ clusterId: 'c-web', kubeconfig: 'x', encryptionKeyId: key.keyId });
  cloud.addCluster({ clusterId: 'c-plain', kubeconfig: 'x' });
  cloud.registerFunction({
    name: 'ack-kms-sentinel-reencrypt',
    handler: async (e) => started.push(e.toString()),
  });
  // Jobs are started and read through rotation-watch (the kubeconfigs are there): the real handler. The
  // paths that reach a cluster are tested with a real API server (test/integration/pipeline.test.ts).
  cloud.registerFunction({
    name: 'ack-kms-sentinel-rotation-watch',
    handler: rotationWatchHandler({
      env: { ...envFor(), SENTINEL_CLUSTER_PROFILE: 'Edge' },
      sink: () => undefined,
    }),
  });
  cloud.registerFunction({
    name: AUDIT_FUNCTION,
    handler: async (e) => {
      started.push(e.toString());
      await auditGate;
    },
  });
  cloud.createBucket('reports-web');
  const env = envFor();
  handler = createHandler({ env, sink: () => undefined });
});
function envFor(): Record<string, string> {
  return {
    SENTINEL_REGION: cloud.state.region,
    SENTINEL_ACCOUNT_ID: cloud.state.accountId,
    SENTINEL_WEBHOOK_SECRET: SECRET,
    SENTINEL_REPORT_BUCKET: 'reports-web',
    SENTINEL_ENDPOINT_OSS: cloud.url,
    SENTINEL_LOG_LEVEL: 'error',
    ...Object.fromEntries(
      ['KMS', 'CS', 'ACTIONTRAIL', 'FC'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.url]),
    ),
  };
}
afterAll(async () => {
  await cloud.stop();
});

function request(
  method: string,
  path: string,
  body = '',
  opts: { secret?: string; timestamp?: number; headers?: Record<string, string>; unsigned?: boolean } = {},
) {
  const ts = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...opts.headers };
  if (!opts.unsigned) {
    headers[TIMESTAMP_HEADER] = ts;
    const idempotencyKey = opts.headers?.['Idempotency-Key'];
    headers[SIGNATURE_HEADER] = signRequest(opts.secret ?? SECRET, {
      method,
      path,
      timestamp: ts,
      body,
      ...(idempotencyKey ? { idempotencyKey } : {}),
    });
  }
  return {
    version: 'v1',
    rawPath: path,
    body,
    isBase64Encoded: false,
    headers,
    queryParameters: {},
    requestContext: {
      requestId: `r-${Math.random()}`,
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.1' },
    },
  };
}

const context = () => ({
  requestId: 'req',
  credentials: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
  accountId: cloud.state.accountId,
});
async function call(
  event: unknown,
): Promise<
  HttpTriggerResponse & { json: Record<string, unknown> & { error?: { code: string; message: string } } }
> {
  const res = (await handler(Buffer.from(JSON.stringify(event)), context())) as HttpTriggerResponse;
  return { ...res, json: JSON.parse(res.body) };
}

describe('the webhook API', () => {
  it('starts an audit idempotently', async () => {
    const a = await call(request('POST', '/v1/audits', '{}', { headers: { 'Idempotency-Key': 'audit-1' } }));
    const b = await call(request('POST', '/v1/audits', '{}', { headers: { 'Idempotency-Key': 'audit-1' } }));
    expect(a.statusCode).toBe(202);
    expect(b.json).toMatchObject({ auditId: a.json.auditId, status: 'already-started' });
    await cloud.idle();
    expect(
      started.filter((s) => s.includes(String(a.json.auditId))),
      'the audit ran once',
    ).toHaveLength(1);
    // What the audit function receives from the webhook is an audit request it accepts (it used to refuse
    // the webhook's audit ids as poison).
    const payload = started.find((s) => s.includes(String(a.json.auditId))) ?? '';
    expect(parseAuditEvent(Buffer.from(payload))).toMatchObject({ kind: 'webhook', auditId: a.json.auditId });
  });

  it('refuses replays of a captured signed audit request, and an Idempotency-Key changed without the secret', async () => {
    const captured = request('POST', '/v1/audits', '{"clusterIds":["c-plain"]}');
    const answers: Awaited<ReturnType<typeof call>>[] = [];
    for (let i = 0; i < 6; i++) answers.push(await call(captured));
    expect(answers.map((a) => a.statusCode)).toEqual([202, 409, 409, 409, 409, 409]);
    expect(answers[1]?.json.error).toMatchObject({ code: 'Replayed' });
    expect(answers[1]?.json.error?.message).toContain(String(answers[0]?.json.auditId));
    const tampered = { ...captured, headers: { ...captured.headers, 'Idempotency-Key': 'attacker-1' } };
    expect((await call(tampered)).statusCode).toBe(401);
    await cloud.idle();
    expect(started.filter((s) => s.includes(String(answers[0]?.json.auditId)))).toHaveLength(1);
    expect(started.filter((s) => s.includes('"clusterIds":["c-plain"]'))).toHaveLength(1);
  });

  it('binds an Idempotency-Key to its body: the same key with another body answers 422', async () => {
    const opts = { headers: { 'Idempotency-Key': 'bound-1' } };
    const first = await call(request('POST', '/v1/audits', '{"clusterIds":["c-web"]}', opts));
    expect(first.statusCode).toBe(202);
    const other = await call(request('POST', '/v1/audits', '{"clusterIds":["c-plain","c-web"]}', opts));
    expect(other.statusCode).toBe(422);
    expect(other.json.error?.code).toBe('IdempotencyKeyReused');
    await cloud.idle();
    expect(started.filter((s) => s.includes('"clusterIds":["c-plain","c-web"]'))).toEqual([]);
  });

  it('runs one audit at a time per set of clusters', async () => {
    let release: () => void = () => {};
    auditGate = new Promise<void>((r) => {
      release = r;
    });
    try {
      const web = (key: string) =>
        call(
          request('POST', '/v1/audits', '{"clusterIds":["c-web"]}', { headers: { 'Idempotency-Key': key } }),
        );
      expect((await web('one-at-a-time-1')).json).toMatchObject({ status: 'started' });
      const second = await web('one-at-a-time-2');
      expect(second.statusCode).toBe(409);
      expect(second.json.error?.code).toBe('AuditRunning');
      const all = await call(
        request('POST', '/v1/audits', '{}', { headers: { 'Idempotency-Key': 'everything-1' } }),
      );
      expect(all.json).toMatchObject({ status: 'started' });
      release();
      await cloud.idle();
      expect((await web('one-at-a-time-3')).json).toMatchObject({ status: 'started' });
    } finally {
      release();
      auditGate = Promise.resolve();
    }
  });

  it('refuses a malformed Idempotency-Key', async () => {
    const res = await call(request('POST', '/v1/audits', '{}', { headers: { 'Idempotency-Key': 'a b' } }));
    expect(res.statusCode).toBe(400);
    expect(res.json.error?.code).toBe('InvalidIdempotencyKey');
  });

  it.each([
    ['no signature', () => request('GET', '/v1/jobs/x', '', { unsigned: true }), 401, 'Unauthorized'],
    [
      'a wrong secret',
      () => request('GET', '/v1/jobs/x', '', { secret: 'not-the-secret-0123456789abcdef0123' }),
      401,
      'Unauthorized',
    ],
    [
      'a stale timestamp',
      () => request('GET', '/v1/jobs/x', '', { timestamp: Math.floor(Date.now() / 1000) - 3600 }),
      401,
      'Unauthorized',
    ],
    ['an unknown route', () => request('GET', '/v1/nothing'), 404, 'NotFound'],
    ['a wrong method', () => request('DELETE', '/v1/audits'), 405, 'MethodNotAllowed'],
    [
      'a bad body',
      () => request('POST', '/v1/clusters/c-web/reencrypt', '{"reason": 42}'),
      400,
      'InvalidBody',
    ],
    [
      'an unknown field',
      () => request('POST', '/v1/audits', '{"clusterIds":["c-web"],"extra":1}'),
      400,
      'InvalidBody',
    ],
    ['not JSON', () => request('POST', '/v1/audits', '{'), 400, 'InvalidBody'],
    [
      'an oversized body',
      () => request('POST', '/v1/audits', `{"x":"${'a'.repeat(MAX_BODY_BYTES)}"}`),
      413,
      'PayloadTooLarge',
    ],
    ['an unknown cluster', () => request('POST', '/v1/clusters/c-nope/reencrypt'), 404, 'ClusterNotFound'],
    [
      'a cluster without encryption',
      () => request('POST', '/v1/clusters/c-plain/reencrypt'),
      409,
      'EncryptionOff',
    ],
    ['an unknown job', () => request('GET', '/v1/jobs/rj-none-0000000000000000'), 404, 'JobNotFound'],
  ] as const)('answers %s with %i', async (_name, build, status, code) => {
    const res = await call(build());
    expect(res.statusCode).toBe(status);
    expect(res.json.error?.code).toBe(code);
    expect(res.body).not.toMatch(/\n\s+at |webhook-secret/);
  });

  it('names the field of a bad body, and answers 405 with Allow', async () => {
    const bad = await call(request('POST', '/v1/clusters/c-web/reencrypt', '{"reason": 42}'));
    expect(bad.json.error?.message).toMatch(/^reason: /);
    const wrong = await call(request('PUT', '/v1/jobs/rj-c1-0123456789abcdef'));
    expect(wrong.headers?.allow).toBe('GET');
  });

  it('serves the latest audit report from OSS, and 404 before there is one', async () => {
    resolveLoopbackSubdomains();
    const none = await call(request('GET', '/v1/reports/latest'));
    expect(none.statusCode).toBe(404);
    expect(none.json.error?.code).toBe('NoReport');
    const store = ossReportStore({
      bucket: 'reports-web',
      accountId: cloud.state.accountId,
      region: cloud.state.region,
      credentials: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
      endpoints: { oss: { protocol: 'http', host: cloud.host, url: cloud.url } },
    });
    await store.save(buildReport('audit-0123456789abcdef', []));
    const latest = await call(request('GET', '/v1/reports/latest'));
    expect(latest.statusCode).toBe(200);
    expect(latest.json).toMatchObject({ auditId: 'audit-0123456789abcdef', status: 'pass' });
  });

  it('reads no report from a bucket of its name that another account owns', async () => {
    const squatted = createHandler({
      env: { ...envFor(), SENTINEL_REPORT_BUCKET: 'reports-squatted' },
      sink: () => undefined,
    });
    cloud.createBucket('reports-squatted', '999999999999');
    const res = (await squatted(
      Buffer.from(JSON.stringify(request('GET', '/v1/reports/latest'))),
      context(),
    )) as HttpTriggerResponse;
    expect(res.statusCode).toBe(503);
    expect(cloud.state.buckets['reports-squatted']).toEqual({});
  });

  it('touches no credentials before the signature is checked, and answers a missing role without a stack', async () => {
    const noRole = { requestId: 'no-role' };
    const unsigned = (await handler(
      Buffer.from(JSON.stringify(request('GET', '/v1/jobs/x', '', { unsigned: true }))),
      noRole,
    )) as HttpTriggerResponse;
    expect(unsigned.statusCode).toBe(401);
    const signed = (await handler(
      Buffer.from(JSON.stringify(request('GET', '/v1/reports/latest'))),
      noRole,
    )) as HttpTriggerResponse;
    expect(signed.statusCode).toBe(503);
    expect(JSON.parse(signed.body).error).toEqual({
      code: 'NotConfigured',
      message: 'the function is not fully configured; see its logs',
    });
    expect(signed.body).not.toMatch(/\s+at\s/);
  });

  describe("turning encryption on (an outage lever when the key is not the operator's choice)", () => {
    const enable = (body: Record<string, unknown>, timestamp?: number) =>
      call(
        request('POST', '/v1/clusters/c-plain/encryption', JSON.stringify(body), {
          ...(timestamp ? { timestamp } : {}),
        }),
      );
    const failed = (res: Awaited<ReturnType<typeof call>>) =>
      (res.json.checks as Array<{ id: string; status: string; evidence: string }>).filter(
        (c) => c.status === 'fail',
      );

    it('refuses a key of the account that this deployment neither watches nor maps to the cluster', async () => {
      const other = cloud.createKey('key-someone-elses');
      other.deletionProtection = 'Enabled';
      const res = await enable({ keyId: other.keyId, dryRun: true });
      expect(res.statusCode).toBe(422);
      expect(failed(res)).toEqual([
        expect.objectContaining({ id: 'allowed-key', evidence: expect.stringContaining('key-web') }),
      ]);
    });

    it('refuses a key without deletion protection unless the request turns it on', async () => {
      const unprotected = await enable({ keyId: 'key-web', dryRun: true });
      expect(unprotected.statusCode).toBe(422);
      expect(failed(unprotected).map((c) => c.id)).toEqual(['deletion-protection']);
      const protecting = await enable({ keyId: 'key-web', dryRun: true, protectKey: true });
      expect(protecting.statusCode).toBe(200);
      expect(protecting.json.outcome).toBe('dry-run');
      expect(cloud.state.keys.find((k) => k.keyId === 'key-web')?.deletionProtection).toBe('Disabled');
    });
  });

  it.each([
    ['a start', 'POST', '/v1/clusters/c-web/reencrypt', {}],
    ['a dry run (it lists every Secret)', 'POST', '/v1/clusters/c-web/reencrypt', { dryRun: 'true' }],
  ] as const)('refuses the replay of %s within its window', async (_name, method, path, query) => {
    const ts = String(Math.floor(Date.now() / 1000));
    const captured = {
      ...request(method, path),
      queryParameters: query,
      headers: {
        [TIMESTAMP_HEADER]: ts,
        [SIGNATURE_HEADER]: signRequest(SECRET, { method, path, query, timestamp: ts, body: '' }),
      },
    };
    const first = await call(captured);
    expect(first.json.error?.code).not.toBe('Replayed');
    const replays = await Promise.all([call(captured), call(captured)]);
    expect(replays.map((r) => [r.statusCode, r.json.error?.code])).toEqual([
      [409, 'Replayed'],
      [409, 'Replayed'],
    ]);
  });

  it('refuses the replay of an encryption request, and answers the same request signed again', async () => {
    const body = JSON.stringify({ keyId: 'key-web', dryRun: true, protectKey: true });
    const at = Math.floor(Date.now() / 1000);
    const captured = request('POST', '/v1/clusters/c-plain/encryption', body, { timestamp: at });
    expect((await call(captured)).statusCode).toBe(200);
    const replay = await call(captured);
    expect([replay.statusCode, replay.json.error?.code]).toEqual([409, 'Replayed']);
    const again = request('POST', '/v1/clusters/c-plain/encryption', body, { timestamp: at - 61 });
    expect((await call(again)).statusCode).toBe(200);
  });

  it('records an accepted request as a task the audit function does nothing with', async () => {
    const before = started.length;
    const res = await call(request('POST', '/v1/clusters/c-plain/reencrypt', '{"reason":"record-1"}'));
    expect(res.statusCode).toBe(409);
    await cloud.idle();
    const records = started.slice(before).map((p) => parseAuditEvent(Buffer.from(p)));
    expect(records).toEqual([
      { kind: 'request-record', requestRecord: expect.stringMatching(/^request-[0-9a-f]{32}$/) },
    ]);
    const audit = auditHandler({ env: envFor(), sink: () => undefined });
    const objects = () => Object.keys(cloud.state.buckets['reports-web'] ?? {}).length;
    const stored = objects();
    const answer = await audit(Buffer.from(started.at(-1) ?? ''), context());
    expect(answer).toMatchObject({ status: 'recorded', counts: {} });
    expect(objects(), 'no report written').toBe(stored);
  });

  it('refuses a malformed trigger event as a bad request', async () => {
    const res = (await handler(Buffer.from('{"version":"v2"}'), context())) as HttpTriggerResponse;
    expect(res.statusCode).toBe(400);
  });
});

import * as $Cs from '@alicloud/cs20151215';
import * as $Kms from '@alicloud/kms20160120';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consoleClients } from '../../sandbox/cloud/console-clients';
import { credentialsFromContext, credentialsFromDefaultChain } from '../../shared/cloud/credentials';
import { resolveEndpoint } from '../../shared/cloud/endpoints';
import { fcInvoker } from '../../shared/cloud/invoker';
import { ossClient } from '../../shared/cloud/oss';
import { ConfigError, normalizeError, type SentinelError } from '../../shared/errors';
import { parseSlsTriggerEvent } from '../../shared/events';
import { clearRegisteredSecrets, redactString } from '../../shared/log';
import { trailRange } from '../../shared/trail/sls-reader';
import { failure as caught } from '../helpers/failures';
import { fixtureText } from '../helpers/fixtures';
import { Recorder, replyJson } from '../helpers/recorder';

const STS = {
  accessKeyId: 'STS.NUexample',
  accessKeySecret: 'sts-secret-0123456789',
  securityToken: 'CAIS-sts-token-0123456789',
};
let server: Recorder;

const clients = (timeouts?: { connectTimeoutMs: number; readTimeoutMs: number }) => {
  const endpoint = { protocol: 'http' as const, host: server.host, url: server.url };
  return consoleClients(
    {
      region: 'cn-hangzhou',
      accountId: '1234567890123456',
      endpoints: { kms: endpoint, cs: endpoint, actiontrail: endpoint, fc: endpoint },
    },
    STS,
    timeouts ? { timeouts } : {},
  );
};

beforeAll(async () => {
  server = await new Recorder().start();
});
afterAll(async () => {
  await server.stop();
});
afterEach(() => {
  clearRegisteredSecrets();
  server.dropQueuedReplies();
});

describe('the client factory reaches each service at the configured endpoint', () => {
  it('KMS 1.2.0: RPC with the STS token in the signed query', async () => {
    server.reply(
      replyJson(200, {
        RequestId: 'r1',
        KeyMetadata: { KeyId: 'key-1', KeyState: 'Enabled', PrimaryKeyVersion: 'v1' },
      }),
    );
    const r = await clients().kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: 'key-1' }));
    expect(r.keyMetadata?.primaryKeyVersion).toBe('v1');
    const req = server.last();
    expect(req.query).toMatchObject({
      Action: 'DescribeKey',
      KeyId: 'key-1',
      SecurityToken: STS.securityToken,
      AccessKeyId: STS.accessKeyId,
      SignatureMethod: 'HMAC-SHA1',
    });
  });

  it('KMS operations 1.2.0 lacks go through the generic callApi, raw fields kept', async () => {
    server.reply(
      replyJson(200, { RequestId: 'r2', KeyMetadata: { KeyId: 'key-1', DeletionProtection: 'Enabled' } }),
    );
    const body = await clients().kmsRpc('DescribeKey', { KeyId: 'key-1' });
    expect(body.KeyMetadata).toEqual({ KeyId: 'key-1', DeletionProtection: 'Enabled' });
    const req = server.last();
    expect(req.headers['x-acs-action']).toBe('DescribeKey');
    expect(req.headers['x-acs-version']).toBe('2016-01-20');
    expect(String(req.headers.authorization)).toMatch(/^ACS3-HMAC-SHA256 Credential=STS\.NUexample,/);
    expect(req.headers['x-acs-security-token']).toBe(STS.securityToken);
  });

  it('ActionTrail LookupEvents through the generic callApi', async () => {
    server.reply(replyJson(200, { RequestId: 'r3', Events: [] }));
    await clients().actionTrailRpc('LookupEvents', {
      'LookupAttribute.1.Key': 'EventName',
      'LookupAttribute.1.Value': 'Encrypt',
    });
    const req = server.last();
    expect(req.headers['x-acs-action']).toBe('LookupEvents');
    expect(req.headers['x-acs-version']).toBe('2020-07-06');
    expect(req.query['LookupAttribute.1.Value']).toBe('Encrypt');
  });

  it('CS: the typed SDK, and the raw call that keeps meta_data', async () => {
    const detail = {
      cluster_id: 'c1',
      profile: 'Edge',
      meta_data: '{"Capabilities":{"EncryptionKMSKeyId":"key-1"}}',
      unknown_field: 1,
    };
    server.reply(replyJson(200, detail), replyJson(200, detail));
    const typed = await clients().cs.describeClusterDetail('c1');
    expect(typed.body?.metaData).toBe(detail.meta_data);
    const raw = (await clients().csRoa('DescribeClusterDetail', 'GET', '/clusters/c1')) as Record<
      string,
      unknown
    >;
    expect(raw.unknown_field).toBe(1);
    expect(server.last()).toMatchObject({ method: 'GET', path: '/clusters/c1' });
    expect(server.last().headers['x-acs-action']).toBe('DescribeClusterDetail');
  });

  it('FC: async invocation on the FC 3.0 path with the job id as task id', async () => {
    server.reply((_req, res) => {
      res.writeHead(202, { 'x-fc-request-id': 'fc-req-1' });
      res.end();
    });
    const result = await fcInvoker(clients().fc).invokeAsync('ack-kms-sentinel-reencrypt', '{"a":1}', {
      taskId: 'rj-c1-0123',
    });
    expect(result).toEqual({ requestId: 'fc-req-1', taskId: 'rj-c1-0123' });
    const req = server.last();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/2023-03-30/functions/ack-kms-sentinel-reencrypt/invocations');
    expect(req.headers).toMatchObject({
      'x-fc-invocation-type': 'Async',
      'x-fc-async-task-id': 'rj-c1-0123',
      'x-acs-action': 'InvokeFunction',
      'x-acs-version': '2023-03-30',
      'x-acs-security-token': STS.securityToken,
    });
    expect(String(req.headers.authorization)).toMatch(/^ACS3-HMAC-SHA256 Credential=STS\.NUexample,/);
    expect(req.body).toBe('{"a":1}');
  });

  it('FC: a synchronous invocation returns the body and surfaces function errors', async () => {
    server.reply(
      replyJson(200, { ok: true }, { 'x-fc-request-id': 'fc-2' }),
      replyJson(200, { errorMessage: 'boom' }, { 'x-fc-error-type': 'UnhandledInvocationError' }),
    );
    const invoker = fcInvoker(clients().fc);
    expect(await invoker.invokeSync('audit', '{}')).toEqual({ requestId: 'fc-2', body: { ok: true } });
    const err = await caught(invoker.invokeSync('audit', '{}'));
    expect(err.code).toBe('UnhandledInvocationError');
  });

  it('defaults to the public regional endpoints over https', () => {
    expect(resolveEndpoint('kms', 'cn-hangzhou', {})).toEqual({
      protocol: 'https',
      host: 'kms.cn-hangzhou.aliyuncs.com',
      url: 'https://kms.cn-hangzhou.aliyuncs.com',
    });
    expect(resolveEndpoint('fc', 'cn-hangzhou', {}, '123').host).toBe('123.cn-hangzhou.fc.aliyuncs.com');
    expect(resolveEndpoint('actiontrail', 'ap-southeast-1', {}).host).toBe(
      'actiontrail.ap-southeast-1.aliyuncs.com',
    );
    // The SLS reader and the OSS stores take theirs from the same table (ali-oss adds the bucket in front).
    expect(resolveEndpoint('sls', 'cn-hangzhou', {}).url).toBe('https://cn-hangzhou.log.aliyuncs.com');
    expect(resolveEndpoint('oss', 'cn-hangzhou', {}).url).toBe('https://oss-cn-hangzhou.aliyuncs.com');
  });

  it('the SLS trigger range and the OSS client resolve their endpoints from that table', () => {
    const trigger = parseSlsTriggerEvent(fixtureText('sls-trigger.json'));
    const trail = { project: trigger.source.projectName, logstore: trigger.source.logstoreName };
    expect(trailRange(trigger, { trail, endpoints: {}, region: 'cn-shanghai' }).endpoint).toBe(
      'https://cn-shanghai.log.aliyuncs.com',
    );
    const oss = ossClient({ bucket: 'reports', region: 'cn-shanghai', endpoints: {}, credentials: STS });
    expect(oss.signatureUrl('audits/latest.json')).toMatch(
      /^https:\/\/reports\.oss-cn-shanghai\.aliyuncs\.com\/audits\/latest\.json\?/,
    );
  });
});

describe('one error taxonomy over every SDK', () => {
  it('KMS 1.2.0: the real code from data.Code, status from the message', async () => {
    server.reply(
      replyJson(400, {
        Code: 'Forbidden.KeyNotFound',
        Message: 'The specified Key is not found.',
        RequestId: 'rid-400',
      }),
    );
    const err = await caught(clients().kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: 'nope' })));
    expect(err).toMatchObject({
      kind: 'permanent',
      code: 'Forbidden.KeyNotFound',
      statusCode: 400,
      requestId: 'rid-400',
    });
    server.reply(replyJson(503, { Code: 'ServiceUnavailable', Message: 'busy', RequestId: 'rid-503' }));
    const busy = await caught(clients().kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: 'k' })));
    expect(busy).toMatchObject({ kind: 'retryable', statusCode: 503 });
    server.reply(
      replyJson(409, { Code: 'Rejected.Disabled', Message: 'The key is disabled', RequestId: 'r' }),
    );
    const disabled = await caught(
      clients().kms.encrypt(new $Kms.EncryptRequest({ keyId: 'k', plaintext: 'aGk=' })),
    );
    expect(disabled).toMatchObject({ kind: 'permanent', code: 'Rejected.Disabled', statusCode: 409 });
  });

  it('generic callApi: throttling is retryable, a missing action is permanent', async () => {
    server.reply(
      replyJson(429, {
        Code: 'Throttling.User',
        Message: 'Request was denied due to user flow control.',
        RequestId: 'r',
      }),
    );
    const throttled = await clients()
      .actionTrailRpc('LookupEvents')
      .catch((e: SentinelError) => e);
    expect(throttled).toMatchObject({
      kind: 'retryable',
      code: 'Throttling.User',
      statusCode: 429,
      service: 'actiontrail',
    });
    expect((throttled as Error).message).toMatch(/^actiontrail LookupEvents: Throttling.User \(HTTP 429\)/);
    server.reply(
      replyJson(404, {
        Code: 'InvalidAction.NotFound',
        Message: 'Specified api is not found',
        RequestId: 'r',
      }),
    );
    const missing = await clients()
      .kmsRpc('NoSuchAction')
      .catch((e: SentinelError) => e);
    expect(missing).toMatchObject({ kind: 'permanent', code: 'InvalidAction.NotFound', statusCode: 404 });
  });

  it('CS 7.x: ClientError, ServerError and ThrottlingError with its retry-after', async () => {
    server.reply(
      replyJson(400, { code: 'ErrorClusterNotFound', message: 'cluster not found', requestId: 'rid-cs' }),
    );
    expect(await caught(clients().cs.describeClusterDetail('c0'))).toMatchObject({
      kind: 'permanent',
      code: 'ErrorClusterNotFound',
      statusCode: 400,
      requestId: 'rid-cs',
    });
    server.reply(replyJson(500, { code: 'InternalError', message: 'oops', requestId: 'r' }));
    expect(await caught(clients().cs.describeClusterDetail('c0'))).toMatchObject({
      kind: 'retryable',
      statusCode: 500,
    });
    server.reply(
      replyJson(
        429,
        { code: 'Throttling.User', message: 'slow down', requestId: 'r' },
        { 'x-acs-retry-after': '1500' },
      ),
    );
    expect(
      await caught(clients().cs.describeClustersV1(new $Cs.DescribeClustersV1Request({}))),
    ).toMatchObject({ kind: 'retryable', retryAfterMs: 1500 });
    server.reply(replyJson(409, { code: 'ErrClusterUpdating', message: 'updating', requestId: 'r' }));
    const conflict = await clients()
      .csRoa('UpdateKMSEncryption', 'PUT', '/clusters/c1/kms')
      .catch((e: SentinelError) => e);
    expect(conflict).toMatchObject({
      kind: 'permanent',
      code: 'ErrClusterUpdating',
      statusCode: 409,
      service: 'cs',
    });
  });

  it('FC 3.0: the error code and status of an error answer', async () => {
    server.reply(
      replyJson(
        404,
        { Code: 'FunctionNotFound', Message: 'function not found', RequestId: 'fc-404' },
        { 'x-fc-request-id': 'fc-404' },
      ),
    );
    const invoker = fcInvoker(clients().fc);
    expect(await caught(invoker.invokeAsync('nope', '{}'))).toMatchObject({
      kind: 'permanent',
      code: 'FunctionNotFound',
      statusCode: 404,
      requestId: 'fc-404',
    });
    server.reply(replyJson(503, { ErrorCode: 'ServiceUnavailable', ErrorMessage: 'later' }));
    expect(await caught(invoker.invokeAsync('fn', '{}'))).toMatchObject({
      kind: 'retryable',
      statusCode: 503,
    });
  });

  it('transport failures: refused connections and read timeouts are retryable', async () => {
    const dead = consoleClients(
      {
        region: 'cn-hangzhou',
        endpoints: { kms: { protocol: 'http', host: '127.0.0.1:1', url: 'http://127.0.0.1:1' } },
      },
      STS,
    );
    expect(await caught(dead.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: 'k' })))).toMatchObject({
      kind: 'retryable',
      code: 'ECONNREFUSED',
    });
    server.reply(() => {
      /* never answers */
    });
    const slow = clients({ connectTimeoutMs: 500, readTimeoutMs: 300 });
    const seen = server.requests.length;
    expect(await caught(slow.kmsRpc('DescribeKey', { KeyId: 'k' }))).toMatchObject({
      kind: 'retryable',
      code: 'Timeout',
    });
    expect(server.requests.length, 'the request arrived and went unanswered').toBe(seen + 1);
  });

  it('Kubernetes ApiException: 429 with Retry-After, 409 conflict, 404', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: server.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const core = kc.makeApiClient(CoreV1Api);
    const status = (code: number, reason: string) => ({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message: `${reason} happened`,
      reason,
      code,
    });
    server.reply(replyJson(429, status(429, 'TooManyRequests'), { 'retry-after': '2' }));
    expect(await caught(core.listSecretForAllNamespaces({ limit: 1 }))).toMatchObject({
      kind: 'retryable',
      code: 'TooManyRequests',
      statusCode: 429,
      retryAfterMs: 2000,
      service: 'kubernetes',
    });
    server.reply(replyJson(409, status(409, 'Conflict')));
    expect(await caught(core.readNamespacedSecret({ name: 's', namespace: 'd' }))).toMatchObject({
      kind: 'permanent',
      code: 'Conflict',
      statusCode: 409,
    });
    server.reply(replyJson(503, status(503, 'ServiceUnavailable')));
    expect(await caught(core.readNamespacedSecret({ name: 's', namespace: 'd' }))).toMatchObject({
      kind: 'retryable',
      statusCode: 503,
    });
  });

  it('anything else is permanent and unexpected, and SentinelErrors pass through', () => {
    expect(normalizeError(new TypeError('x is undefined'))).toMatchObject({
      kind: 'permanent',
      code: 'Unexpected',
    });
    expect(normalizeError('a string')).toMatchObject({
      kind: 'permanent',
      code: 'Unexpected',
      message: 'Unexpected: a string',
    });
    const e = new ConfigError('bad');
    expect(normalizeError(e)).toBe(e);
    expect(normalizeError(Object.assign(new SyntaxError('Unexpected token <'), {}))).toMatchObject({
      kind: 'retryable',
      code: 'MalformedResponse',
    });
  });
});

describe('credentials', () => {
  it('come from the FC context and are registered as secrets', () => {
    const creds = credentialsFromContext({ credentials: STS });
    expect(creds).toEqual(STS);
    expect(redactString(`x ${STS.accessKeySecret} ${STS.securityToken}`)).toBe('x [REDACTED] [REDACTED]');
    expect(() => credentialsFromContext({})).toThrow(ConfigError);
    expect(() => credentialsFromContext({})).toThrow(
      /context\.credentials: missing; give the function a RAM role/,
    );
  });

  it('come from the default chain in the CLI', async () => {
    const saved = { ...process.env };
    try {
      process.env.ALIBABA_CLOUD_ACCESS_KEY_ID = 'LTAI5tChainExample';
      process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET = 'chain-secret-0123456789';
      delete process.env.ALIBABA_CLOUD_SECURITY_TOKEN;
      const creds = await credentialsFromDefaultChain();
      expect(creds).toEqual({
        accessKeyId: 'LTAI5tChainExample',
        accessKeySecret: 'chain-secret-0123456789',
      });
      expect(redactString('chain-secret-0123456789')).toBe('[REDACTED]');
    } finally {
      process.env = saved;
    }
  });
});

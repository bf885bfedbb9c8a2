import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config';
import { ConfigError } from '../../shared/errors';
import { clearRegisteredSecrets, redactString } from '../../shared/log';

const minimal = { SENTINEL_REGION: 'cn-hangzhou' };
const SECRET = 'whsec-0123456789abcdef0123456789abcdef';

function problem(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

afterEach(() => clearRegisteredSecrets());

describe('loadConfig', () => {
  it('applies defaults to a minimal environment', () => {
    const config = loadConfig(minimal);
    expect(config).toMatchObject({
      region: 'cn-hangzhou',
      clusters: { mode: 'discover', regionId: 'cn-hangzhou', tags: {} },
      keys: { mode: 'from-clusters' },
      stateNamespace: 'ack-kms-sentinel',
      reencrypt: {
        strategy: 'annotate',
        concurrency: 64,
        pageSize: 500,
        adoptionDelayMs: 180_000,
        budgetMarginMs: 30_000,
        staleAfterMs: 3_600_000,
        polite: true,
        etcdQuotaBytes: 2 * 1024 ** 3,
        etcdQuotaShare: 0.8,
      },
      notify: [],
      endpoints: {},
      logLevel: 'info',
    });
    expect(config.webhookSecret).toBeUndefined();
  });

  it('reads every setting', () => {
    const config = loadConfig({
      SENTINEL_REGION: 'cn-shanghai',
      SENTINEL_ACCOUNT_ID: '1234567890123456',
      SENTINEL_CLUSTER_PROFILE: 'Edge',
      SENTINEL_CLUSTER_SPEC: 'ack.pro.small',
      SENTINEL_CLUSTER_TAGS: 'env=prod, team=platform',
      SENTINEL_KMS_KEY_IDS: 'key-a, key-b,key-a',
      SENTINEL_CLUSTER_KEYS: 'c1=key-a,c2=key-b',
      SENTINEL_STATE_NAMESPACE: 'kms-state',
      SENTINEL_REENCRYPT_STRATEGY: 'stale-only',
      SENTINEL_REENCRYPT_CONCURRENCY: '32',
      SENTINEL_REENCRYPT_PAGE_SIZE: '250',
      SENTINEL_REENCRYPT_ADOPTION_DELAY: '90s',
      SENTINEL_REENCRYPT_ADOPTION_TIMEOUT: '1h',
      SENTINEL_REENCRYPT_PROOF: 'actiontrail',
      SENTINEL_REENCRYPT_BUDGET_MARGIN: '1500ms',
      SENTINEL_REENCRYPT_STALE_AFTER: '20m',
      SENTINEL_REENCRYPT_POLITE: 'false',
      SENTINEL_ETCD_QUOTA: '8Gi',
      SENTINEL_ETCD_QUOTA_SHARE: '0.7',
      SENTINEL_REENCRYPT_FUNCTION: 'sentinel-reencrypt',
      SENTINEL_NOTIFY_CHANNELS: JSON.stringify([
        { type: 'webhook', url: 'https://hooks.example.com/x', secret: '0123456789abcdef01' },
        {
          type: 'dingtalk',
          url: 'https://oapi.dingtalk.com/robot/send?access_token=abc',
          secret: 'SECabc',
          severities: ['critical'],
        },
        { type: 'slack', url: 'http://127.0.0.1:9000/hook' },
      ]),
      SENTINEL_WEBHOOK_SECRET: SECRET,
      SENTINEL_ENDPOINT_KMS: 'http://127.0.0.1:4566',
      SENTINEL_ENDPOINT_FC: 'https://fc.example.com:8443',
      SENTINEL_LOG_LEVEL: 'debug',
    });
    expect(config.accountId).toBe('1234567890123456');
    expect(config.clusters).toEqual({
      mode: 'discover',
      regionId: 'cn-shanghai',
      profile: 'Edge',
      clusterSpec: 'ack.pro.small',
      tags: { env: 'prod', team: 'platform' },
    });
    expect(config.keys).toEqual({ mode: 'explicit', keyIds: ['key-a', 'key-b'] });
    expect(config.clusterKeys).toEqual({ c1: 'key-a', c2: 'key-b' });
    expect(config.reencrypt).toEqual({
      strategy: 'stale-only',
      concurrency: 32,
      pageSize: 250,
      adoptionDelayMs: 90_000,
      adoptionTimeoutMs: 3_600_000,
      proof: 'actiontrail',
      budgetMarginMs: 1_500,
      staleAfterMs: 1_200_000,
      polite: false,
      etcdQuotaBytes: 8 * 1024 ** 3,
      etcdQuotaShare: 0.7,
      functionName: 'sentinel-reencrypt',
    });
    expect(config.notify.map((c) => c.type)).toEqual(['webhook', 'dingtalk', 'slack']);
    expect(config.notify[0]?.severities).toEqual(['critical', 'warning', 'report', 'audit']);
    expect(config.endpoints.kms).toEqual({
      protocol: 'http',
      host: '127.0.0.1:4566',
      url: 'http://127.0.0.1:4566',
    });
    expect(config.endpoints.fc?.host).toBe('fc.example.com:8443');
    expect(config.webhookSecret).toBe(SECRET);
    // secret-valued settings are registered with the redaction guard
    expect(redactString(`sig with ${SECRET}`)).not.toContain(SECRET);
    expect(redactString('https://oapi.dingtalk.com/robot/send?access_token=abc')).not.toContain(
      'access_token=abc',
    );
  });

  it('takes explicit cluster ids', () => {
    expect(loadConfig({ ...minimal, SENTINEL_CLUSTER_IDS: 'c1, c2' }).clusters).toEqual({
      mode: 'explicit',
      clusterIds: ['c1', 'c2'],
    });
  });

  it('falls back to the region Function Compute sets', () => {
    expect(loadConfig({ FC_REGION: 'ap-southeast-1' }).region).toBe('ap-southeast-1');
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['missing region', {}, /SENTINEL_REGION: is not set \(example: SENTINEL_REGION=cn-hangzhou\)/],
    [
      'bad region',
      { SENTINEL_REGION: 'Hangzhou' },
      /SENTINEL_REGION: must be an Alibaba Cloud region id; got "Hangzhou" \(example/,
    ],
    [
      'concurrency not a number',
      { ...minimal, SENTINEL_REENCRYPT_CONCURRENCY: 'lots' },
      /SENTINEL_REENCRYPT_CONCURRENCY: must be a whole number between 1 and 256; got "lots" \(example: SENTINEL_REENCRYPT_CONCURRENCY=64\)/,
    ],
    [
      'concurrency out of range',
      { ...minimal, SENTINEL_REENCRYPT_CONCURRENCY: '0' },
      /must be between 1 and 256/,
    ],
    [
      'bad strategy',
      { ...minimal, SENTINEL_REENCRYPT_STRATEGY: 'replace' },
      /SENTINEL_REENCRYPT_STRATEGY: must be "annotate" or "stale-only"/,
    ],
    [
      'bad duration',
      { ...minimal, SENTINEL_REENCRYPT_ADOPTION_DELAY: '3 minutes' },
      /SENTINEL_REENCRYPT_ADOPTION_DELAY: must be a duration such as 90s, 3m or 1h/,
    ],
    [
      'bad namespace',
      { ...minimal, SENTINEL_STATE_NAMESPACE: 'Kube_System' },
      /SENTINEL_STATE_NAMESPACE: must be a Kubernetes namespace name/,
    ],
    [
      'bad cluster id',
      { ...minimal, SENTINEL_CLUSTER_IDS: 'c1,c 2' },
      /SENTINEL_CLUSTER_IDS: "c 2" is not an ACK cluster id/,
    ],
    [
      'empty list',
      { ...minimal, SENTINEL_KMS_KEY_IDS: ' , ' },
      /SENTINEL_KMS_KEY_IDS: must list at least one value/,
    ],
    [
      'bad tags',
      { ...minimal, SENTINEL_CLUSTER_TAGS: 'env' },
      /SENTINEL_CLUSTER_TAGS: "env" is not key=value/,
    ],
    [
      'bad mapping',
      { ...minimal, SENTINEL_CLUSTER_KEYS: 'c1:key-1' },
      /SENTINEL_CLUSTER_KEYS: "c1:key-1" is not clusterId=keyId/,
    ],
    [
      'ids and discovery together',
      { ...minimal, SENTINEL_CLUSTER_IDS: 'c1', SENTINEL_CLUSTER_PROFILE: 'Edge' },
      /cannot be combined/,
    ],
    [
      'bad profile',
      { ...minimal, SENTINEL_CLUSTER_PROFILE: 'edge' },
      /must be one of Default, Edge, Serverless, Lingjun/,
    ],
    [
      'endpoint with a path',
      { ...minimal, SENTINEL_ENDPOINT_CS: 'http://127.0.0.1:1/api' },
      /SENTINEL_ENDPOINT_CS: must have no path/,
    ],
    [
      'endpoint not a URL',
      { ...minimal, SENTINEL_ENDPOINT_SLS: '127.0.0.1:1' },
      /SENTINEL_ENDPOINT_SLS: must be an http:\/\/ or https:\/\/ URL|must be a URL/,
    ],
    [
      'a plain-http endpoint off this machine',
      { ...minimal, SENTINEL_ENDPOINT_KMS: 'http://kms.cn-hangzhou.aliyuncs.com' },
      /SENTINEL_ENDPOINT_KMS: must be an https:\/\/ URL \(plain http only for loopback/,
    ],
    [
      'a plain-http endpoint on a private address',
      { ...minimal, SENTINEL_ENDPOINT_SLS: 'http://10.0.0.8:8080' },
      /SENTINEL_ENDPOINT_SLS: must be an https:\/\/ URL/,
    ],
    [
      'a bad trail project',
      { ...minimal, SENTINEL_TRAIL_PROJECT: 'Not_A_Project' },
      /SENTINEL_TRAIL_PROJECT: must be/,
    ],
    [
      'bad log level',
      { ...minimal, SENTINEL_LOG_LEVEL: 'trace' },
      /SENTINEL_LOG_LEVEL: must be debug, info, warn or error/,
    ],
    ['bad account', { ...minimal, SENTINEL_ACCOUNT_ID: 'acct' }, /SENTINEL_ACCOUNT_ID: must be the numeric/],
  ];
  it.each(bad)('fails clearly on %s', (_label, env, expected) => {
    const err = problem(env);
    expect(err.kind).toBe('config');
    expect(err.message).toMatch(expected);
  });

  it("takes a webhook channel's secret in the Standard Webhooks form (whsec_, 24 to 64 bytes) or raw", () => {
    const withSecret = (secret: string) =>
      loadConfig({
        ...minimal,
        SENTINEL_NOTIFY_CHANNELS: JSON.stringify([
          { type: 'webhook', url: 'https://h.example.com/k', secret },
        ]),
      }).notify[0]?.secret;
    const whsec = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    expect(withSecret(whsec)).toBe(whsec);
    expect(withSecret('a-raw-secret-of-some-length')).toBe('a-raw-secret-of-some-length');
    for (const bad of [
      `whsec_${Buffer.alloc(16, 7).toString('base64')}`,
      'whsec_not base64 at all!!!!!!!!!!',
    ])
      expect(() => withSecret(bad)).toThrow(
        /channel 0 field secret: must be whsec_ and the base64 of 24 to 64/,
      );
  });

  it('names every bad setting at once', () => {
    const err = problem({ SENTINEL_REENCRYPT_PAGE_SIZE: '0', SENTINEL_LOG_LEVEL: 'loud' });
    expect(err.message).toContain('SENTINEL_REGION');
    expect(err.message).toContain('SENTINEL_REENCRYPT_PAGE_SIZE');
    expect(err.message).toContain('SENTINEL_LOG_LEVEL');
  });

  it('refuses a polite flag, an etcd quota or a share it cannot read, saying what each must be', () => {
    const err = problem({
      ...minimal,
      SENTINEL_REENCRYPT_POLITE: 'yes',
      SENTINEL_ETCD_QUOTA: '2GB',
      SENTINEL_ETCD_QUOTA_SHARE: '80%',
    });
    expect(err.message).toContain('SENTINEL_REENCRYPT_POLITE: must be "true" or "false"');
    expect(err.message).toContain("SENTINEL_ETCD_QUOTA: must be etcd's --quota-backend-bytes");
    expect(err.message).toContain('SENTINEL_ETCD_QUOTA_SHARE: must be a fraction of the quota');
    expect(problem({ ...minimal, SENTINEL_ETCD_QUOTA_SHARE: '1.5' }).message).toContain(
      'SENTINEL_ETCD_QUOTA_SHARE',
    );
  });

  it('never echoes a secret-valued setting', () => {
    const shortSecret = 'hunter2-is-not-long';
    const err = problem({ ...minimal, SENTINEL_WEBHOOK_SECRET: shortSecret });
    expect(err.message).toMatch(
      /SENTINEL_WEBHOOK_SECRET: must be at least 32 characters long \(it has 19\); got a value of 19 characters/,
    );
    expect(err.message).not.toContain(shortSecret);

    const channels = JSON.stringify([
      { type: 'webhook', url: 'https://h.example.com/?token=TOPSECRET', secret: 'zq9-shh-x' },
    ]);
    const err2 = problem({ ...minimal, SENTINEL_NOTIFY_CHANNELS: channels });
    expect(err2.message).toMatch(
      /SENTINEL_NOTIFY_CHANNELS: channel 0 field secret: must be whsec_ and the base64 of 24 to 64 random bytes, or a raw secret of at least 16 characters/,
    );
    expect(err2.message).not.toContain('TOPSECRET');
    expect(err2.message).not.toContain('zq9-shh-x');

    const err3 = problem({ ...minimal, SENTINEL_NOTIFY_CHANNELS: '[{"type":"teams","url":"https://x"}]' });
    expect(err3.message).toMatch(/channel 0 field type: type must be one of webhook, dingtalk, lark, slack/);
    const err4 = problem({ ...minimal, SENTINEL_NOTIFY_CHANNELS: '{not json TOPSECRET' });
    expect(err4.message).toMatch(/must be a JSON array of channels/);
    expect(err4.message).not.toContain('TOPSECRET');
    const err5 = problem({
      ...minimal,
      SENTINEL_NOTIFY_CHANNELS: '[{"type":"slack","url":"http://hooks.example.com/x"}]',
    });
    expect(err5.message).toMatch(/channel 0 field url: must be an https URL/);
  });

  it('reads a JSON file of the same names, the environment winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sentinel-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ SENTINEL_REGION: 'cn-beijing', SENTINEL_REENCRYPT_CONCURRENCY: 8 }));
    expect(loadConfig({}, { file }).reencrypt.concurrency).toBe(8);
    expect(loadConfig({ SENTINEL_REGION: 'cn-shenzhen' }, { file }).region).toBe('cn-shenzhen');
    writeFileSync(file, JSON.stringify({ REGION: 'x' }));
    expect(() => loadConfig({}, { file })).toThrow(/"REGION" is not a setting/);
    writeFileSync(file, '[1]');
    expect(() => loadConfig({}, { file })).toThrow(/must be a JSON object of setting names/);
    writeFileSync(file, '{');
    expect(() => loadConfig({}, { file })).toThrow(/Invalid configuration file/);
    // A syntax error right after a secret-valued setting: the message says where, never what.
    writeFileSync(file, '{"SENTINEL_WEBHOOK_SECRET": "hunter2-hunter2-hunter2-hunter2-xyz" x}');
    const err = (() => {
      try {
        loadConfig({}, { file });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/is not valid JSON/);
    expect(err?.message.includes('hunter2'), 'the secret is not quoted').toBe(false);
    expect(() => loadConfig({}, { file: join(dir, 'missing.json') })).toThrow(/cannot be read \(ENOENT\)/);
  });

  it('keeps a rotated-out webhook secret valid only briefly: 15 minutes by default, never more than a day', () => {
    expect(loadConfig(minimal).secretGraceMs).toBe(15 * 60_000);
    expect(loadConfig({ ...minimal, SENTINEL_SECRET_GRACE: '2h' }).secretGraceMs).toBe(2 * 3_600_000);
    expect(problem({ ...minimal, SENTINEL_SECRET_GRACE: '48h' }).message).toMatch(
      /SENTINEL_SECRET_GRACE: must be at most 24h; got "48h"/,
    );
  });

  it("reads the state secret (the done record's key) from KMS by name, or a literal of 32 characters", () => {
    expect(
      loadConfig({ ...minimal, SENTINEL_STATE_SECRET: 'kms-secret://ack-kms-sentinel-state' }).kmsSecrets,
    ).toEqual({
      stateSecret: 'ack-kms-sentinel-state',
    });
    expect(loadConfig({ ...minimal, SENTINEL_STATE_SECRET: SECRET }).stateSecret).toBe(SECRET);
    const short = problem({ ...minimal, SENTINEL_STATE_SECRET: 'hunter2' }).message;
    expect(short).toMatch(/SENTINEL_STATE_SECRET: must be at least 32 characters long/);
    expect(short.includes('hunter2')).toBe(false);
  });
});

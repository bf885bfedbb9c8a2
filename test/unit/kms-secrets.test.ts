import * as $Kms from '@alicloud/kms20160120';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as rotationWatchHandler } from '../../functions/rotation-watch';
import { createHandler as webhookHandler } from '../../functions/webhook';
import type { ConsoleClients } from '../../sandbox/cloud/console-clients';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import { loadConfig } from '../../shared/config';
import type { HttpTriggerResponse } from '../../shared/events';
import { clearKmsSecretCache, kmsSecret } from '../../shared/kms/secrets';
import { emulatorClients } from '../helpers/emulator';
import { Recorder } from '../helpers/recorder';
import { signedEvent } from '../helpers/webhook';

/**
 * Secret-valued settings kept in KMS Secrets Manager (`kms-secret://<name>`): read at run time through the
 * KMS SDK, a rotation picked up without redeploying, the previous version accepted for the grace period.
 */
const OLD = 'webhook-secret-version-one-0123456789abcdef';
const NEW = 'webhook-secret-version-two-0123456789abcdef';
let cloud: CloudEmulator;
let user: ConsoleClients;
let receiver: Recorder;
let clock = Date.now();

beforeAll(async () => {
  cloud = await CloudEmulator.start();
  receiver = await new Recorder().start();
  user = emulatorClients(cloud, cloud.user);
  await user.kmsRpc('CreateSecret', {
    SecretName: 'ack-kms-sentinel-webhook',
    SecretData: OLD,
    VersionId: 'v1',
  });
});
afterAll(async () => {
  await cloud.stop();
  await receiver.stop();
});
beforeEach(() => clearKmsSecretCache());

const env = (extra: Record<string, string>) => ({
  SENTINEL_REGION: cloud.state.region,
  SENTINEL_ACCOUNT_ID: cloud.state.accountId,
  SENTINEL_CLUSTER_PROFILE: 'Edge',
  SENTINEL_LOG_LEVEL: 'error',
  ...Object.fromEntries(['KMS', 'CS', 'ACTIONTRAIL', 'FC'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.url])),
  ...extra,
});

describe('the webhook signing secret from KMS Secrets Manager', () => {
  const handler = () =>
    webhookHandler({
      env: env({
        SENTINEL_WEBHOOK_SECRET: 'kms-secret://ack-kms-sentinel-webhook',
        SENTINEL_SECRET_GRACE: '1h',
      }),
      sink: () => undefined,
      now: () => clock,
    });
  const get = async (h: ReturnType<typeof handler>, secret: string) => {
    // Signed at the handler's clock: the one clock measures both the signature's age and the grace period.
    const event = signedEvent(secret, 'GET', '/v1/reports/latest', { at: clock });
    const context = {
      requestId: 'req',
      credentials: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
      accountId: cloud.state.accountId,
    };
    return ((await h(Buffer.from(JSON.stringify(event)), context)) as HttpTriggerResponse).statusCode;
  };

  it('accepts the current version, picks up a rotation without a redeploy, and the previous version for the grace period only', async () => {
    const h = handler();
    // 404 NoReport (no bucket configured): the signature passed; 401: it did not.
    expect(await get(h, OLD)).toBe(404);
    expect(await get(h, 'not-the-secret-0123456789abcdef0123456789')).toBe(401);
    await user.kmsRpc('PutSecretValue', {
      SecretName: 'ack-kms-sentinel-webhook',
      SecretData: NEW,
      VersionId: 'v2',
    });
    clock += 11_000; // the cached value is re-read when a signature matches neither version
    expect(await get(h, NEW)).toBe(404);
    expect(await get(h, OLD), 'the previous version, within the grace period').toBe(404);
    clock += 2 * 3_600_000;
    expect(await get(h, OLD), 'the previous version, after the grace period').toBe(401);
    expect(await get(h, NEW)).toBe(404);
  });

  it('keeps secret values out of ActionTrail (the emulator records calls as ActionTrail does)', async () => {
    await user.kmsRpc('CreateSecret', {
      SecretName: 'ack-kms-sentinel-webhook-trail',
      SecretData: 'value-one-0123',
      VersionId: 'v1',
    });
    await user.kmsRpc('PutSecretValue', {
      SecretName: 'ack-kms-sentinel-webhook-trail',
      SecretData: 'value-two-0123',
      VersionId: 'v2',
    });
    await user.kmsRpc('GetSecretValue', { SecretName: 'ack-kms-sentinel-webhook-trail' });
    const calls = cloud.state.events.filter(
      (e) => e.requestParameters?.SecretName === 'ack-kms-sentinel-webhook-trail',
    );
    expect(calls.map((e) => e.eventName)).toEqual(['CreateSecret', 'PutSecretValue', 'GetSecretValue']);
    expect(JSON.stringify(calls)).not.toMatch(/value-one|value-two/);
  });
});

describe('notification channels from KMS Secrets Manager', () => {
  it('sends alerts to the channels the secret holds', async () => {
    const channels = [
      { type: 'webhook', url: `${receiver.url}/kms-hook`, secret: 'channel-secret-0123456789' },
    ];
    await user.kmsRpc('CreateSecret', {
      SecretName: 'ack-kms-sentinel-channels',
      SecretData: JSON.stringify(channels),
      VersionId: 'v1',
    });
    const key = cloud.createKey();
    cloud.addCluster({ clusterId: 'c-kms-secret', kubeconfig: 'x', encryptionKeyId: key.keyId });
    const watch = rotationWatchHandler({
      env: env({ SENTINEL_NOTIFY_CHANNELS: 'kms-secret://ack-kms-sentinel-channels' }),
      sink: () => undefined,
    });
    cloud.registerFunction({ name: 'ack-kms-sentinel-rotation-watch', handler: watch });
    cloud.subscribe({
      filter: (e) => e.source === 'acs.kms',
      handler: (b) => cloud.functions.invoke('ack-kms-sentinel-rotation-watch', b, {}),
    });
    await user.kms.disableKey(new $Kms.DisableKeyRequest({ keyId: key.keyId }));
    await cloud.idle();
    const sent = receiver.requests.filter((r) => r.path === '/kms-hook').map((r) => JSON.parse(r.body));
    expect(sent.map((n) => n.title)).toEqual([`DisableKey on ${key.keyId}`]);
  });

  it('refuses a secret name the RAM policy does not cover', () => {
    expect(() => loadConfig(env({ SENTINEL_WEBHOOK_SECRET: 'kms-secret://prod-webhook' }))).toThrow(
      /SENTINEL_WEBHOOK_SECRET: must name a KMS secret whose name starts with ack-kms-sentinel-webhook/,
    );
    // The channels' secret cannot be the webhook's: only the webhook may read that one.
    expect(() =>
      loadConfig(env({ SENTINEL_NOTIFY_CHANNELS: 'kms-secret://ack-kms-sentinel-webhook' })),
    ).toThrow(
      /SENTINEL_NOTIFY_CHANNELS: must name a KMS secret whose name starts with ack-kms-sentinel-channels/,
    );
  });
});

describe('a KMS secret without a value', () => {
  it('is a configuration problem (the webhook answers 503 NotConfigured), not an upstream failure', async () => {
    const empty = { kmsRpc: async () => ({ RequestId: 'r', SecretData: '' }) };
    await expect(kmsSecret(empty, 'ack-kms-sentinel-empty', Date.now())).rejects.toMatchObject({
      kind: 'config',
      code: 'EmptySecret',
    });
  });
});

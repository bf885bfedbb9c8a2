import * as $Cs from '@alicloud/cs20151215';
import * as $Kms from '@alicloud/kms20160120';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHandler as rotationWatchHandler } from '../../functions/rotation-watch';
import { createHandler as trailVerifyHandler } from '../../functions/trail-verify';
import type { Credential } from '../../sandbox/cloud/api';
import type { ConsoleClients } from '../../sandbox/cloud/console-clients';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import { CloudEmulator, TRAIL_LOGSTORE, TRAIL_PROJECT } from '../../sandbox/cloud/emulator';
import { findManagedRoleEvents } from '../../shared/trail/evidence';
import { emulatorClients } from '../helpers/emulator';
import { Recorder } from '../helpers/recorder';

/**
 * The guard-rail alerts in the real order of events: the cloud changes first (CS already reports the cluster
 * without encryption, KMS the key disabled), then EventBridge delivers the event to rotation-watch and the
 * trail's SLS trigger hands the record to trail-verify. Both must alert, whatever the current state says.
 */
let cloud: CloudEmulator;
let user: ConsoleClients;
let receiver: Recorder;
const keys: Record<string, string> = {};
// No job starts on these paths, so the clusters need no API server.
const unreachable = 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n';
const WATCH = 'ack-kms-sentinel-rotation-watch';
const VERIFY = 'ack-kms-sentinel-trail-verify';

interface Alert {
  severity: string;
  title: string;
  text: string;
  details: { keyId?: string; keyRef?: string; clusterId?: string; clusters?: string[] };
}
const alerts = (): Alert[] =>
  receiver.requests.map((r) => JSON.parse(r.body) as Alert).filter((n) => n.severity === 'critical');

const results = (fn: string) =>
  [...cloud.functions.tasks.values()]
    .filter((t) => t.functionName === fn)
    .map((t) => JSON.parse(t.returnPayload ?? '{}') as { alerts?: number; critical?: number });

beforeAll(async () => {
  resolveLoopbackSubdomains();
  cloud = await CloudEmulator.start();
  receiver = await new Recorder().start();
  user = emulatorClients(cloud, cloud.user);
  const env = {
    SENTINEL_REGION: cloud.state.region,
    SENTINEL_ACCOUNT_ID: cloud.state.accountId,
    SENTINEL_CLUSTER_PROFILE: 'Edge',
    ...Object.fromEntries(
      ['KMS', 'CS', 'ACTIONTRAIL', 'FC', 'SLS'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.url]),
    ),
    SENTINEL_NOTIFY_CHANNELS: JSON.stringify([
      { type: 'webhook', url: `${receiver.url}/hook`, secret: 'guard-rail-webhook-secret-0123' },
    ]),
    SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
    SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
    SENTINEL_LOG_LEVEL: 'error',
  };
  const quiet = { env, sink: () => undefined };
  cloud.registerFunction({ name: WATCH, handler: rotationWatchHandler(quiet) });
  cloud.registerFunction({ name: VERIFY, handler: trailVerifyHandler(quiet) });
  cloud.subscribe({
    filter: (e) => e.source === 'acs.kms' || e.source === 'acs.cs',
    handler: (b) => cloud.functions.invoke(WATCH, b, { 'x-fc-invocation-type': 'Async' }),
  });
  cloud.subscribeTrail((b) => cloud.functions.invoke(VERIFY, b, { 'x-fc-invocation-type': 'Async' }));
  // Set up before the first invocation: trail-verify keeps its watched set for a few minutes.
  for (const clusterId of ['c-guard-off', 'c-guard-alias', 'c-guard-arn']) {
    keys[clusterId] = cloud.createKey().keyId;
    cloud.addCluster({ clusterId, kubeconfig: unreachable, encryptionKeyId: keys[clusterId] });
  }
});
afterAll(async () => {
  await cloud.stop();
  await receiver.stop();
});
beforeEach(async () => {
  await cloud.idle();
  receiver.requests.length = 0;
  cloud.functions.tasks.clear();
});

describe('guard-rail alerts in the real order of events', () => {
  it('UpdateKMSEncryption turning encryption off: CS no longer reports encryption, both functions alert', async () => {
    await user.cs.updateKMSEncryption(
      'c-guard-off',
      new $Cs.UpdateKMSEncryptionRequest({ disableEncryption: true }),
    );
    await cloud.idle();
    expect(cloud.state.clusters.find((c) => c.clusterId === 'c-guard-off')?.disableEncryption).toBe(true);
    const got = alerts();
    expect(got.map((a) => a.title)).toEqual([
      'UpdateKMSEncryption on c-guard-off',
      'UpdateKMSEncryption on c-guard-off',
    ]);
    expect(got[0]?.text).toMatch(/Secret encryption at rest was turned off/);
    expect(got.every((a) => a.details.clusters?.includes('c-guard-off'))).toBe(true);
    expect(results(WATCH).map((r) => r.alerts)).toEqual([1]);
    expect(results(VERIFY).map((r) => r.critical)).toEqual([1]);
  });

  it('DisableKey naming the key by alias: resolved through KMS, both functions alert', async () => {
    const keyId = keys['c-guard-alias'] ?? '';
    await user.kms.createAlias(new $Kms.CreateAliasRequest({ aliasName: 'alias/ack-guard', keyId }));
    await user.kms.disableKey(new $Kms.DisableKeyRequest({ keyId: 'alias/ack-guard' }));
    await cloud.idle();
    const got = alerts();
    expect(got).toHaveLength(2);
    for (const a of got) {
      expect(a.title).toBe(`DisableKey on ${keyId}`);
      expect(a.details).toMatchObject({ keyId, keyRef: 'alias/ack-guard', clusters: ['c-guard-alias'] });
    }
  });

  it('ScheduleKeyDeletion naming the key by ARN: both functions alert', async () => {
    const key = cloud.state.keys.find((k) => k.keyId === keys['c-guard-arn']);
    if (!key) throw new Error('no key');
    await user.kms.scheduleKeyDeletion(
      new $Kms.ScheduleKeyDeletionRequest({ keyId: key.arn, pendingWindowInDays: 7 }),
    );
    await cloud.idle();
    const got = alerts();
    expect(got.map((a) => a.title)).toEqual([
      `ScheduleKeyDeletion on ${key.keyId}`,
      `ScheduleKeyDeletion on ${key.keyId}`,
    ]);
    expect(got.every((a) => a.details.clusters?.join() === 'c-guard-arn')).toBe(true);
  });

  it('a key no target cluster uses, named by alias, does not alert', async () => {
    const key = cloud.createKey();
    await user.kms.createAlias(
      new $Kms.CreateAliasRequest({ aliasName: 'alias/unrelated', keyId: key.keyId }),
    );
    await user.kms.disableKey(new $Kms.DisableKeyRequest({ keyId: 'alias/unrelated' }));
    await cloud.idle();
    expect(alerts()).toEqual([]);
    expect(results(WATCH).map((r) => r.alerts)).toEqual([0, 0]);
  });
});

describe('trail-verify reads only the configured trail', () => {
  const slsEvent = (endpoint: string, projectName = TRAIL_PROJECT, logstoreName = TRAIL_LOGSTORE) => ({
    source: {
      endpoint,
      projectName,
      logstoreName,
      shardId: 0,
      beginCursor: Buffer.from('0').toString('base64'),
      endCursor: Buffer.from(String(cloud.trailRecords().length)).toString('base64'),
    },
    parameter: {},
    jobName: 'forged',
    taskId: 'forged',
    cursorTime: 0,
  });

  it('never sends its signed PullLogs to the endpoint an event names', async () => {
    const attacker = await new Recorder().start();
    try {
      const out = await cloud.functions.invoke(
        VERIFY,
        Buffer.from(JSON.stringify(slsEvent(attacker.url))),
        {},
      );
      const result = JSON.parse(out.body) as { events?: number; poison?: boolean };
      expect(result.poison).toBeUndefined();
      expect(result.events).toBeGreaterThan(0);
      expect(attacker.requests).toEqual([]);
    } finally {
      await attacker.stop();
    }
  });

  it('refuses an event naming another project or logstore as poison, and alerts', async () => {
    const attacker = await new Recorder().start();
    try {
      for (const event of [
        slsEvent(attacker.url, 'attacker-project'),
        slsEvent(attacker.url, TRAIL_PROJECT, 'other_logstore'),
      ]) {
        const out = await cloud.functions.invoke(VERIFY, Buffer.from(JSON.stringify(event)), {});
        expect(JSON.parse(out.body)).toMatchObject({
          ok: false,
          poison: true,
          error: { code: 'ForeignLogstore' },
        });
      }
      expect(attacker.requests).toEqual([]);
      expect(alerts().map((a) => a.title)).toEqual([
        'trail-verify was sent an event for another logstore',
        'trail-verify was sent an event for another logstore',
      ]);
    } finally {
      await attacker.stop();
    }
  });
});

describe('managed-role evidence', () => {
  it("counts only this account's aliyuncsmanagedsecurityrole, through LookupEvents", async () => {
    const keyId = keys['c-guard-arn'] ?? '';
    const key = cloud.state.keys.find((k) => k.keyId === keyId);
    if (key) key.keyState = 'Enabled';
    const as = (c: Credential) => emulatorClients(cloud, c);
    const since = new Date(cloud.now() - 1_000);
    const encrypt = (c: Credential) =>
      as(c).kms.encrypt(new $Kms.EncryptRequest({ keyId, plaintext: Buffer.from('x').toString('base64') }));
    await encrypt(cloud.assumeRole('aliyuncsmanagedsecurityrole', 'c-guard-arn', '9999999999999999'));
    const query = { keyId, since, until: new Date(cloud.now() + 1_000) };
    const reader = as(cloud.user);
    expect(await findManagedRoleEvents(reader, query)).toEqual([]);
    expect(await findManagedRoleEvents(reader, { ...query, accountId: cloud.state.accountId })).toEqual([]);
    await encrypt(cloud.managedRole('c-guard-arn'));
    const own = await findManagedRoleEvents(reader, { ...query, until: new Date(cloud.now() + 1_000) });
    expect(own.map((e) => e.userIdentity.accountId)).toEqual([cloud.state.accountId]);
  });
});

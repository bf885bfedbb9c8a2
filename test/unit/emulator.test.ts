import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as $Cs from '@alicloud/cs20151215';
import { GetAsyncTaskRequest, ListAsyncTasksRequest } from '@alicloud/fc20230330';
import * as $Kms from '@alicloud/kms20160120';
import { $OpenApiUtil } from '@alicloud/openapi-core';
import Sls, * as $Sls from '@alicloud/sls20201230';
import * as $dara from '@darabonba/typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Credential } from '../../sandbox/cloud/api';
import { type ConsoleClients, consoleClients } from '../../sandbox/cloud/console-clients';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import { CloudEmulator, TRAIL_LOGSTORE, TRAIL_PROJECT } from '../../sandbox/cloud/emulator';
import { buildReport } from '../../shared/audit/report';
import { fcInvoker } from '../../shared/cloud/invoker';
import {
  isManagedSecurityRole,
  parseLookupEventsBody,
  parseSlsTriggerEvent,
  parseTrailCloudEvent,
  parseTrailLogRecord,
} from '../../shared/events';
import { readShardRange } from '../../shared/trail/sls-reader';
import { emulatorClients } from '../helpers/emulator';
import { failure } from '../helpers/failures';
import { ossReportStore } from '../helpers/report-store';

/**
 * Contract tests: every emulated operation called through the real SDK client and parsed by it, including
 * the error paths. If an SDK cannot parse what the emulator answers, these fail.
 */
let cloud: CloudEmulator;
let user: ConsoleClients;
const as = (c: Credential): ConsoleClients => emulatorClients(cloud, c);

beforeAll(async () => {
  resolveLoopbackSubdomains();
  cloud = await CloudEmulator.start();
  user = as(cloud.user);
});
afterAll(async () => {
  await cloud.stop();
});

describe('KMS through @alicloud/kms20160120 1.2.0 (RPC, HMAC-SHA1)', () => {
  it('creates, describes and lists keys and versions', async () => {
    const created = await user.kms.createKey(new $Kms.CreateKeyRequest({ description: 'secrets' }));
    const keyId = created.keyMetadata?.keyId ?? '';
    const described = await user.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId }));
    expect(described.keyMetadata).toMatchObject({
      keyId,
      keyState: 'Enabled',
      automaticRotation: 'Disabled',
      description: 'secrets',
    });
    expect(described.keyMetadata?.primaryKeyVersion).toMatch(/^[0-9a-f-]{36}$/);
    const list = await user.kms.listKeys(new $Kms.ListKeysRequest({ pageSize: 100 }));
    expect(list.keys?.key?.map((k) => k.keyId)).toContain(keyId);
    const versions = await user.kms.listKeyVersions(new $Kms.ListKeyVersionsRequest({ keyId }));
    expect(versions.keyVersions?.keyVersion).toHaveLength(1);
    const v = await user.kms.describeKeyVersion(
      new $Kms.DescribeKeyVersionRequest({ keyId, keyVersionId: described.keyMetadata?.primaryKeyVersion }),
    );
    expect(v.keyVersion?.keyVersionId).toBe(described.keyMetadata?.primaryKeyVersion);
  });

  it('encrypts and decrypts with real AES-GCM, old versions still decrypting after a manual rotation', async () => {
    const key = cloud.createKey();
    const plaintext = Buffer.from('a DEK seed of 32 bytes, really!!').toString('base64');
    const context = JSON.stringify({ cluster: 'c1' }) as unknown as Record<string, string>;
    const first = await user.kms.encrypt(
      new $Kms.EncryptRequest({ keyId: key.keyId, plaintext, encryptionContext: context }),
    );
    expect(first.keyVersionId).toBe(key.versions[0]?.keyVersionId);
    const rotated = await user.kms.createKeyVersion(new $Kms.CreateKeyVersionRequest({ keyId: key.keyId }));
    const newVersion = rotated.keyVersion?.keyVersionId;
    expect(
      (await user.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: key.keyId }))).keyMetadata
        ?.primaryKeyVersion,
    ).toBe(newVersion);
    const second = await user.kms.encrypt(
      new $Kms.EncryptRequest({ keyId: key.keyId, plaintext, encryptionContext: context }),
    );
    expect(second.keyVersionId).toBe(newVersion);
    for (const blob of [first.ciphertextBlob, second.ciphertextBlob]) {
      const out = await user.kms.decrypt(
        new $Kms.DecryptRequest({ ciphertextBlob: blob, encryptionContext: context }),
      );
      expect(out.plaintext).toBe(plaintext);
    }
    const old = await user.kms.decrypt(
      new $Kms.DecryptRequest({ ciphertextBlob: first.ciphertextBlob, encryptionContext: context }),
    );
    expect(old.keyVersionId).toBe(key.versions[0]?.keyVersionId);
    expect(
      await failure(user.kms.decrypt(new $Kms.DecryptRequest({ ciphertextBlob: first.ciphertextBlob }))),
    ).toMatchObject({ code: 'Rejected.InvalidCiphertext' });
    const dk = await user.kms.generateDataKey(
      new $Kms.GenerateDataKeyRequest({ keyId: key.keyId, numberOfBytes: 32 }),
    );
    expect(Buffer.from(dk.plaintext ?? '', 'base64')).toHaveLength(32);
    expect(
      (await user.kms.decrypt(new $Kms.DecryptRequest({ ciphertextBlob: dk.ciphertextBlob }))).plaintext,
    ).toBe(dk.plaintext);
  });

  it('refuses a disabled or pending-deletion key the way KMS does', async () => {
    const key = cloud.createKey();
    const enc = await user.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'aGk=' }));
    await user.kms.disableKey(new $Kms.DisableKeyRequest({ keyId: key.keyId }));
    expect(
      await failure(user.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'aGk=' }))),
    ).toMatchObject({
      kind: 'permanent',
      code: 'Rejected.Disabled',
      statusCode: 409,
    });
    expect(
      await failure(user.kms.decrypt(new $Kms.DecryptRequest({ ciphertextBlob: enc.ciphertextBlob }))),
    ).toMatchObject({ code: 'Rejected.Disabled' });
    await user.kms.enableKey(new $Kms.EnableKeyRequest({ keyId: key.keyId }));
    await user.kms.scheduleKeyDeletion(
      new $Kms.ScheduleKeyDeletionRequest({ keyId: key.keyId, pendingWindowInDays: 7 }),
    );
    const pending = await user.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: key.keyId }));
    expect(pending.keyMetadata?.keyState).toBe('PendingDeletion');
    expect(pending.keyMetadata?.deleteDate).toBeTruthy();
    expect(
      await failure(user.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'aGk=' }))),
    ).toMatchObject({ code: 'Rejected.PendingDeletion' });
    await user.kms.cancelKeyDeletion(new $Kms.CancelKeyDeletionRequest({ keyId: key.keyId }));
    expect(
      (await user.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: key.keyId }))).keyMetadata?.keyState,
    ).toBe('Disabled');
    expect(
      await failure(user.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: 'key-nope' }))),
    ).toMatchObject({ code: 'Forbidden.KeyNotFound', statusCode: 404 });
    expect(await failure(user.kms.describeKey(new $Kms.DescribeKeyRequest({})))).toMatchObject({
      code: 'MissingParameter',
      statusCode: 400,
    });
  });

  it('deletion protection, which the 1.2.0 SDK lacks, through the generic callApi (ACS3)', async () => {
    const key = cloud.createKey();
    await user.kmsRpc('SetDeletionProtection', {
      ProtectedResourceArn: key.arn,
      EnableDeletionProtection: 'true',
      DeletionProtectionDescription: 'in use by ACK',
    });
    const raw = await user.kmsRpc('DescribeKey', { KeyId: key.keyId });
    expect(raw.KeyMetadata).toMatchObject({
      DeletionProtection: 'Enabled',
      DeletionProtectionDescription: 'in use by ACK',
    });
    expect(
      await failure(
        user.kms.scheduleKeyDeletion(
          new $Kms.ScheduleKeyDeletionRequest({ keyId: key.keyId, pendingWindowInDays: 7 }),
        ),
      ),
    ).toMatchObject({
      code: 'Forbidden.DeletionProtection',
      statusCode: 403,
    });
    expect(await failure(user.kmsRpc('NoSuchAction'))).toMatchObject({
      code: 'InvalidAction.NotFound',
      statusCode: 404,
    });
  });

  it('automatic rotation by the sandbox clock: a new primary version and an EventBridge event', async () => {
    const key = cloud.createKey();
    const events: string[] = [];
    cloud.subscribe({
      filter: (e) => e.type === 'kms:ActionTrail:AliyunServiceEvent',
      handler: async (b) => events.push(b.toString()),
    });
    await user.kms.updateRotationPolicy(
      new $Kms.UpdateRotationPolicyRequest({
        keyId: key.keyId,
        enableAutomaticRotation: true,
        rotationInterval: '30d',
      }),
    );
    const before = await user.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: key.keyId }));
    expect(before.keyMetadata).toMatchObject({ automaticRotation: 'Enabled', rotationInterval: '2592000s' });
    expect(Date.parse(before.keyMetadata?.nextRotationDate ?? '')).toBeGreaterThan(
      Date.now() + 29 * 86_400_000,
    );
    expect(
      await failure(
        user.kms.updateRotationPolicy(
          new $Kms.UpdateRotationPolicyRequest({
            keyId: key.keyId,
            enableAutomaticRotation: true,
            rotationInterval: '1d',
          }),
        ),
      ),
    ).toMatchObject({
      code: 'InvalidParameter',
    });
    cloud.advanceClock(31 * 86_400_000);
    await cloud.idle();
    const after = await user.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: key.keyId }));
    expect(after.keyMetadata?.primaryKeyVersion).not.toBe(before.keyMetadata?.primaryKeyVersion);
    const event = parseTrailCloudEvent(events.find((e) => e.includes(key.keyId)) ?? '');
    expect(event.data).toMatchObject({
      eventName: 'RotateKey',
      eventType: 'AliyunServiceEvent',
      requestParameters: { KeyId: key.keyId },
    });
  });
});

describe('ActionTrail and EventBridge', () => {
  it('records every KMS call with the caller, and write calls reach EventBridge as CloudEvents', async () => {
    const key = cloud.createKey();
    const delivered: string[] = [];
    cloud.subscribe({
      filter: (e) => e.source === 'acs.kms' && e.type === 'kms:ActionTrail:ApiCall',
      handler: async (b) => delivered.push(b.toString()),
    });
    const plugin = as(cloud.managedRole('c-sandbox-1'));
    await plugin.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'c2VlZA==' }));
    await user.kms.disableKey(new $Kms.DisableKeyRequest({ keyId: key.keyId }));
    await failure(plugin.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'c2VlZA==' })));
    await cloud.idle();
    const mine = cloud.state.events.filter((e) => e.requestParameters?.KeyId === key.keyId);
    expect(mine.map((e) => [e.eventName, e.eventRW, e.errorCode ?? ''])).toEqual([
      ['Encrypt', 'Read', ''],
      ['DisableKey', 'Write', ''],
      ['Encrypt', 'Read', 'Rejected.Disabled'],
    ]);
    expect(isManagedSecurityRole(mine[0]?.userIdentity)).toBe(true);
    expect(mine[0]?.userIdentity.userName).toBe('aliyuncsmanagedsecurityrole:c-sandbox-1');
    expect(isManagedSecurityRole(mine[1]?.userIdentity)).toBe(false);
    expect(JSON.stringify(mine)).not.toContain('c2VlZA==');
    const events = delivered
      .map((d) => parseTrailCloudEvent(d))
      .filter((e) => e.data.requestParameters?.KeyId === key.keyId);
    expect(events.map((e) => e.data.eventName)).toEqual(['DisableKey']);
  });

  it('delivers duplicates when asked, and redelivers', async () => {
    const key = cloud.createKey();
    const got: string[] = [];
    cloud.subscribe({
      filter: (e) => e.data.requestParameters !== undefined && JSON.stringify(e.data).includes(key.keyId),
      handler: async (b) => got.push(b.toString()),
    });
    cloud.duplicateDeliveries = true;
    await user.kms.createKeyVersion(new $Kms.CreateKeyVersionRequest({ keyId: key.keyId }));
    await cloud.idle();
    cloud.duplicateDeliveries = false;
    expect(got).toHaveLength(2);
    expect(got[0]).toBe(got[1]);
    cloud.redeliver(parseTrailCloudEvent(got[0] ?? '').id);
    await cloud.idle();
    expect(got).toHaveLength(3);
  });

  it('LookupEvents: attributes, time window, paging and the 2-calls-per-second limit', async () => {
    const key = cloud.createKey();
    const plugin = as(cloud.managedRole('c-lookup'));
    for (let i = 0; i < 5; i++)
      await plugin.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'aGk=' }));
    cloud.advanceClock(1_100); // past the 2-calls-per-second window, without sleeping
    const query = {
      'LookupAttribute.1.Key': 'EventName',
      'LookupAttribute.1.Value': 'Encrypt',
      'LookupAttribute.2.Key': 'ResourceName',
      'LookupAttribute.2.Value': key.keyId,
      MaxResults: '3',
    };
    const first = parseLookupEventsBody(await user.actionTrailRpc('LookupEvents', query));
    expect(first.events).toHaveLength(3);
    expect(first.nextToken).toBeTruthy();
    const second = parseLookupEventsBody(
      await user.actionTrailRpc('LookupEvents', { ...query, NextToken: first.nextToken ?? '' }),
    );
    expect(second.events).toHaveLength(2);
    expect(second.nextToken).toBeUndefined();
    expect([...first.events, ...second.events].every((e) => isManagedSecurityRole(e.userIdentity))).toBe(
      true,
    );
    expect(await failure(user.actionTrailRpc('LookupEvents', query))).toMatchObject({
      kind: 'retryable',
      code: 'Throttling.User',
      statusCode: 429,
    });
    cloud.advanceClock(1_100); // past the 2-calls-per-second window, without sleeping
    const future = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const empty = parseLookupEventsBody(
      await user.actionTrailRpc('LookupEvents', { ...query, StartTime: future, EndTime: future }),
    );
    expect(empty.events).toEqual([]);
    expect(await failure(user.actionTrailRpc('LookupEvents', { MaxResults: '500' }))).toMatchObject({
      code: 'InvalidParameter',
    });
  });
});

describe('signatures and unknown calls', () => {
  it('refuses a wrong secret in every scheme, and unknown keys', async () => {
    const wrong = as({ ...cloud.user, accessKeySecret: 'not-the-secret' });
    expect(await failure(wrong.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: 'k' })))).toMatchObject({
      code: 'SignatureDoesNotMatch',
      statusCode: 400,
    });
    expect(await failure(wrong.kmsRpc('DescribeKey', { KeyId: 'k' }))).toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
    expect(await failure(wrong.cs.describeClusterDetail('c'))).toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
    expect(await failure(fcInvoker(wrong.fc).invokeSync('f', '{}'))).toMatchObject({
      code: 'SignatureNotMatch',
      statusCode: 403,
    });
    const stranger = as({ ...cloud.user, accessKeyId: 'LTAI5tUnknown' });
    expect(
      await failure(stranger.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: 'k' }))),
    ).toMatchObject({ code: 'InvalidAccessKeyId.NotFound' });
    const role = cloud.managedRole('c-token');
    const badToken = as({ ...role, securityToken: 'CAIS-forged' });
    expect(await failure(badToken.kmsRpc('ListKeys'))).toMatchObject({
      code: 'InvalidSecurityToken.Mismatch',
    });
  });
});

describe('ACK (CS) through @alicloud/cs20151215 (ROA, ACS3)', () => {
  it('lists clusters with filters and paging, and reads meta_data through the raw call', async () => {
    const key = cloud.createKey();
    cloud.addCluster({
      clusterId: 'c-edge-pro',
      kubeconfig: 'apiVersion: v1\nkind: Config\n',
      encryptionKeyId: key.keyId,
    });
    cloud.addCluster({
      clusterId: 'c-default',
      kubeconfig: 'x',
      profile: 'Default',
      clusterSpec: 'ack.standard',
    });
    const edge = await user.cs.describeClustersV1(
      new $Cs.DescribeClustersV1Request({
        clusterType: 'ManagedKubernetes',
        profile: 'Edge',
        clusterSpec: 'ack.pro.small',
      }),
    );
    expect(edge.body?.clusters?.map((c) => c.clusterId)).toEqual(['c-edge-pro']);
    const paged = await user.cs.describeClustersV1(
      new $Cs.DescribeClustersV1Request({ pageSize: 1, pageNumber: 2 }),
    );
    expect(paged.body?.pageInfo).toMatchObject({ pageNumber: 2, pageSize: 1, totalCount: 2 });
    const detail = (await user.csRoa('DescribeClusterDetail', 'GET', '/clusters/c-edge-pro')) as {
      meta_data: string;
    };
    expect(JSON.parse(detail.meta_data).Capabilities).toEqual({
      EncryptionKMSKeyId: key.keyId,
      DisableEncryption: false,
    });
    const typed = await user.cs.describeClusterDetail('c-edge-pro');
    expect(typed.body).toMatchObject({
      clusterId: 'c-edge-pro',
      profile: 'Edge',
      clusterSpec: 'ack.pro.small',
      clusterType: 'ManagedKubernetes',
    });
    expect(await failure(user.cs.describeClusterDetail('c-missing'))).toMatchObject({
      code: 'ErrorClusterNotFound',
      statusCode: 404,
    });
  });

  it('hands out the kubeconfig, and UpdateKMSEncryption refuses a second change within 5 minutes', async () => {
    cloud.addCluster({ clusterId: 'c-kms', kubeconfig: 'apiVersion: v1\nkind: Config\nclusters: []\n' });
    const kc = await user.cs.describeClusterUserKubeconfig(
      'c-kms',
      new $Cs.DescribeClusterUserKubeconfigRequest({ temporaryDurationMinutes: 60 }),
    );
    expect(kc.body?.config).toContain('kind: Config');
    expect(Date.parse(kc.body?.expiration ?? '')).toBeGreaterThan(Date.now() + 59 * 60_000);
    const key = cloud.createKey();
    const events: string[] = [];
    cloud.subscribe({
      filter: (e) => e.type === 'cs:ActionTrail:ApiCall',
      handler: async (b) => events.push(b.toString()),
    });
    await user.cs.updateKMSEncryption(
      'c-kms',
      new $Cs.UpdateKMSEncryptionRequest({ disableEncryption: false, kmsKeyId: key.keyId }),
    );
    expect(
      await failure(
        user.cs.updateKMSEncryption('c-kms', new $Cs.UpdateKMSEncryptionRequest({ disableEncryption: true })),
      ),
    ).toMatchObject({ statusCode: 409 });
    cloud.advanceClock(6 * 60_000);
    await user.cs.updateKMSEncryption(
      'c-kms',
      new $Cs.UpdateKMSEncryptionRequest({ disableEncryption: true }),
    );
    await cloud.idle();
    const cs = events
      .map((e) => parseTrailCloudEvent(e))
      .filter((e) => e.data.requestParameters?.ClusterId === 'c-kms');
    expect(cs.map((e) => e.data.requestParameters?.disable_encryption)).toEqual([false, true]);
    const detail = (await user.csRoa('DescribeClusterDetail', 'GET', '/clusters/c-kms')) as {
      meta_data: string;
    };
    expect(JSON.parse(detail.meta_data).Capabilities.DisableEncryption).toBe(true);
  });
});

describe('SLS: the trail logstore through @alicloud/sls20201230', () => {
  it('reads a shard between two cursors, and the trigger hands over each new range', async () => {
    const triggers: string[] = [];
    cloud.subscribeTrail(async (b) => triggers.push(b.toString()));
    const key = cloud.createKey();
    const plugin = as(cloud.managedRole('c-sls'));
    for (let i = 0; i < 3; i++)
      await plugin.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'aGk=' }));
    await cloud.idle();
    expect(triggers.length).toBeGreaterThanOrEqual(1);
    const credentials = { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret };
    const seen: string[] = [];
    for (const t of triggers) {
      const event = parseSlsTriggerEvent(t);
      expect(event.source).toMatchObject({
        projectName: TRAIL_PROJECT,
        logstoreName: TRAIL_LOGSTORE,
        shardId: 0,
      });
      for await (const batch of readShardRange(
        {
          endpoint: event.source.endpoint,
          project: event.source.projectName,
          logstore: event.source.logstoreName,
          shardId: 0,
          beginCursor: event.source.beginCursor,
          endCursor: event.source.endCursor,
        },
        credentials,
        { batch: 2 },
      )) {
        for (const log of batch) {
          expect(log.topic).toBe('actiontrail_audit_event');
          seen.push(parseTrailLogRecord(log.contents).eventId);
        }
      }
    }
    const encrypts = cloud.state.events
      .filter((e) => e.eventName === 'Encrypt' && e.requestParameters?.KeyId === key.keyId)
      .map((e) => e.eventId);
    expect(encrypts, 'the three Encrypt calls are in the trail').toHaveLength(3);
    expect(seen).toEqual(expect.arrayContaining(encrypts));

    const sls = new Sls(new $OpenApiUtil.Config({ ...credentials, endpoint: cloud.host, protocol: 'http' }));
    const begin = await sls.getCursor(
      TRAIL_PROJECT,
      TRAIL_LOGSTORE,
      '0',
      new $Sls.GetCursorRequest({ from: 'begin' }),
    );
    expect(begin.body?.cursor).toBe(Buffer.from('0').toString('base64'));
    const shards = await sls.listShards(TRAIL_PROJECT, TRAIL_LOGSTORE);
    expect(shards.body?.[0]?.shardID).toBe(0);
    const wrong = new Sls(
      new $OpenApiUtil.Config({
        ...credentials,
        accessKeySecret: 'wrong',
        endpoint: cloud.host,
        protocol: 'http',
      }),
    );
    expect(await failure(wrong.listShards(TRAIL_PROJECT, TRAIL_LOGSTORE))).toMatchObject({
      code: 'SignatureNotMatch',
    });
  });
});

describe('Function Compute 3.0 through @alicloud/fc20230330', () => {
  it("enforces the function's timeout as FC reports it, and retries a failed async task per its config", async () => {
    const { setTimeout: sleep } = await import('node:timers/promises');
    let calls = 0;
    cloud.registerFunction({
      name: 'slow',
      timeoutSeconds: 1,
      maxAsyncRetryAttempts: 2,
      handler: async () => {
        calls++;
        await sleep(1_500);
        return 'late';
      },
    });
    let flaky = 0;
    cloud.registerFunction({
      name: 'flaky',
      maxAsyncRetryAttempts: 2,
      handler: async () => {
        if (++flaky === 1) throw new Error('first attempt dies');
        return 'ok';
      },
    });
    const fc = fcInvoker(user.fc);
    const timedOut = await failure(fc.invokeSync('slow', '{}'));
    expect(timedOut).toMatchObject({ code: 'UnhandledInvocationError' });
    calls = 0;
    await fc.invokeAsync('slow', '{}', { taskId: 'slow-1' });
    await cloud.idle();
    const slow = (
      await user.fc.getAsyncTaskWithOptions(
        'slow',
        'slow-1',
        new GetAsyncTaskRequest({}),
        {},
        new $dara.RuntimeOptions({}),
      )
    ).body;
    expect(slow).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 2 });
    expect(slow?.taskErrorMessage).toMatch(/Function timed out after 1 seconds/);
    expect(calls, 'the first attempt and two retries').toBe(3);
    await fc.invokeAsync('flaky', '{}', { taskId: 'flaky-1' });
    await cloud.idle();
    expect(cloud.functions.task('flaky', 'flaky-1')).toMatchObject({
      status: 'Succeeded',
      alreadyRetriedTimes: 1,
    });
  });

  it('invokes synchronously and asynchronously with a realistic context, and refuses a duplicate task id', async () => {
    const contexts: Array<{
      requestId: string;
      function?: { name?: string; timeout?: number };
      credentials?: { securityToken?: string };
    }> = [];
    cloud.registerFunction({
      name: 'echo',
      timeoutSeconds: 120,
      handler: async (event, context) => {
        contexts.push(context);
        const body = JSON.parse(event.toString());
        if (body.fail) throw new Error('asked to fail');
        return { got: body };
      },
    });
    const fc = fcInvoker(user.fc);
    expect((await fc.invokeSync('echo', '{"a":1}')).body).toEqual({ got: { a: 1 } });
    expect(await failure(fc.invokeSync('echo', '{"fail":true}'))).toMatchObject({
      code: 'UnhandledInvocationError',
    });
    const started = await fc.invokeAsync('echo', '{"b":2}', { taskId: 'rj-c1-0000000000000001' });
    expect(started.taskId).toBe('rj-c1-0000000000000001');
    expect(
      await failure(fc.invokeAsync('echo', '{"b":2}', { taskId: 'rj-c1-0000000000000001' })),
    ).toMatchObject({ code: 'AsyncTaskAlreadyExists', statusCode: 409 });
    await cloud.idle();
    expect(cloud.functions.task('echo', 'rj-c1-0000000000000001')).toMatchObject({ status: 'Succeeded' });
    const listed = await user.fc.listAsyncTasksWithOptions(
      'echo',
      new ListAsyncTasksRequest({ prefix: 'rj-c1-', limit: 10 }),
      {},
      new $dara.RuntimeOptions({}),
    );
    expect(listed.body?.tasks?.map((t) => [t.taskId, t.status, t.returnPayload])).toEqual([
      ['rj-c1-0000000000000001', 'Succeeded', '{"got":{"b":2}}'],
    ]);
    expect(await fc.listTasks('echo', { prefix: 'rj-c1-', status: 'Running' })).toEqual([]);
    expect(contexts[0]).toMatchObject({ function: { name: 'echo', timeout: 120 } });
    expect(contexts[0]?.credentials?.securityToken).toMatch(/^CAIS/);
    expect(await failure(fc.invokeSync('missing', '{}'))).toMatchObject({
      code: 'FunctionNotFound',
      statusCode: 404,
    });
    // What the FC 2.0 client sends (an `FC ak:sig` signature, no x-acs-action) is refused.
    const fc2Style = await fetch(`${cloud.url}/2023-03-30/functions/echo/invocations`, {
      method: 'POST',
      headers: { authorization: `FC ${cloud.user.accessKeyId}:x`, date: new Date().toUTCString() },
      body: '{}',
    });
    expect(fc2Style.status).toBeGreaterThanOrEqual(400);
    const taskId = await cloud.functions.fireTimer('echo', 'poll', 'tick', new Date('2026-11-29T08:00:00Z'));
    await cloud.idle();
    expect(cloud.functions.task('echo', taskId).returnPayload).toContain('"triggerName":"poll"');
  });
});

describe('persistence', () => {
  it('saves keys and events to a directory and loads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emulator-state-'));
    const first = await CloudEmulator.start({ stateDir: dir });
    const key = first.createKey('key-persisted');
    const client = consoleClients(
      { region: 'cn-hangzhou', endpoints: { kms: { protocol: 'http', host: first.host, url: first.url } } },
      { accessKeyId: first.user.accessKeyId, accessKeySecret: first.user.accessKeySecret },
    );
    const enc = await client.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'aGk=' }));
    await first.stop();
    const second = await CloudEmulator.start({ stateDir: dir });
    try {
      expect(second.state.keys.map((k) => k.keyId)).toEqual(['key-persisted']);
      expect(second.state.events.map((e) => e.eventName)).toEqual(['Encrypt']);
      expect(second.state.events[0]?.eventTime).toBeInstanceOf(Date);
      const again = consoleClients(
        {
          region: 'cn-hangzhou',
          endpoints: { kms: { protocol: 'http', host: second.host, url: second.url } },
        },
        { accessKeyId: second.user.accessKeyId, accessKeySecret: second.user.accessKeySecret },
      );
      expect(
        (await again.kms.decrypt(new $Kms.DecryptRequest({ ciphertextBlob: enc.ciphertextBlob }))).plaintext,
      ).toBe('aGk=');
    } finally {
      await second.stop();
    }
  });

  it('OSS takes STS credentials the way ali-oss sends them (a function role in FC)', async () => {
    cloud.createBucket('reports-sts');
    const role = cloud.managedRole('c-oss');
    expect(role.securityToken).toBeTruthy();
    const store = (credentials: Credential) =>
      ossReportStore({
        bucket: 'reports-sts',
        accountId: cloud.state.accountId,
        region: cloud.state.region,
        credentials,
        endpoints: { oss: { protocol: 'http', host: cloud.host, url: cloud.url } },
      });
    await store(role).save(buildReport('audit-00000000000000aa', []));
    expect((await store(role).latest())?.auditId).toBe('audit-00000000000000aa');
    expect(await failure(store({ ...role, securityToken: 'forged' }).latest())).toMatchObject({
      code: 'InvalidSecurityToken.Mismatch',
    });
  });
});

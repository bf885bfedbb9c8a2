import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler as auditHandler } from '../../functions/audit';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import type { AuditReport } from '../../shared/audit/report';
import { Recorder } from '../helpers/recorder';

/**
 * Opt-in remediation by the audit function (SENTINEL_AUDIT_REMEDIATE), through the emulated KMS: each fix on
 * each key in use that lacks it, recorded in the stored report and notified; never without the setting; a
 * second audit finds nothing left to fix.
 */
let cloud: CloudEmulator;
let receiver: Recorder;
const BUCKET = 'ack-kms-sentinel-remediate';
const AUDIT = 'ack-kms-sentinel-audit';
const unreachable = 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n';

beforeAll(async () => {
  cloud = await CloudEmulator.start();
  receiver = await new Recorder().start();
  cloud.createBucket(BUCKET);
});
afterAll(async () => {
  await receiver.stop();
  await cloud.stop();
});

function register(extra: Record<string, string>) {
  const env = {
    SENTINEL_REGION: cloud.state.region,
    SENTINEL_ACCOUNT_ID: cloud.state.accountId,
    SENTINEL_CLUSTER_PROFILE: 'Default',
    ...Object.fromEntries(
      ['KMS', 'CS', 'ACTIONTRAIL', 'FC', 'SLS', 'OSS'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.url]),
    ),
    SENTINEL_REPORT_BUCKET: BUCKET,
    SENTINEL_NOTIFY_CHANNELS: JSON.stringify([
      { type: 'webhook', url: `${receiver.url}/hook`, secret: 'remediate-webhook-secret-0123' },
    ]),
    SENTINEL_LOG_LEVEL: 'error',
    ...extra,
  };
  cloud.registerFunction({
    name: AUDIT,
    handler: auditHandler({ env, sink: () => undefined }),
    timeoutSeconds: 120,
  });
}

async function audit(): Promise<AuditReport> {
  const res = await cloud.functions.invoke(
    AUDIT,
    Buffer.from(JSON.stringify({ triggerTime: new Date().toISOString(), triggerName: 'daily' })),
    {},
  );
  const { stored } = JSON.parse(res.body) as { stored: { json: string } };
  const object = cloud.state.buckets[BUCKET]?.[stored.json];
  return JSON.parse(Buffer.from(object?.body ?? '', 'base64').toString('utf8')) as AuditReport;
}

describe('audit remediation (opt-in)', () => {
  it('without the setting, changes nothing', async () => {
    const key = cloud.createKey();
    cloud.addCluster({
      clusterId: 'c-fix-off',
      kubeconfig: unreachable,
      profile: 'Default',
      encryptionKeyId: key.keyId,
      disableEncryption: false,
    });
    register({});
    const report = await audit();
    expect(report.remediations).toBeUndefined();
    expect(key.deletionProtection).toBe('Disabled');
    expect(key.automaticRotation).toBe('Disabled');
    cloud.state.clusters = cloud.state.clusters.filter((c) => c.clusterId !== 'c-fix-off');
  });

  it('turns on deletion protection and sets the rotation policy, records and notifies each; then nothing is left', async () => {
    const key = cloud.createKey();
    for (const clusterId of ['c-fix-a', 'c-fix-b'])
      cloud.addCluster({
        clusterId,
        kubeconfig: unreachable,
        profile: 'Default',
        encryptionKeyId: key.keyId,
        disableEncryption: false,
      });
    register({
      SENTINEL_AUDIT_REMEDIATE: 'deletion-protection,rotation-policy',
      SENTINEL_AUDIT_ROTATION_INTERVAL_DAYS: '180',
    });
    const before = receiver.requests.length;
    const report = await audit();
    expect(report.remediations).toEqual([
      expect.objectContaining({
        keyId: key.keyId,
        fix: 'deletion-protection',
        outcome: 'done',
        clusters: ['c-fix-a', 'c-fix-b'],
      }),
      expect.objectContaining({
        keyId: key.keyId,
        fix: 'rotation-policy',
        outcome: 'done',
        detail: 'automatic rotation every 180 days',
      }),
    ]);
    expect(key.deletionProtection).toBe('Enabled');
    expect(key.automaticRotation).toBe('Enabled');
    expect(key.rotationIntervalSeconds).toBe(180 * 86_400);
    const sent = receiver.requests
      .slice(before)
      .map((r) => JSON.parse(r.body) as { text: string; details: Record<string, unknown> });
    expect(sent.at(-1)?.text).toMatch(
      /Remediated: deletion-protection on .*: done; rotation-policy on .*: done/,
    );
    expect(sent.at(-1)?.details.remediations).toHaveLength(2);
    const html = Buffer.from(
      cloud.state.buckets[BUCKET]?.[`audits/${report.auditId}/report.html`]?.body ?? '',
      'base64',
    ).toString('utf8');
    expect(html).toContain('Remediation (opt-in)');

    const again = await audit();
    expect(again.remediations).toEqual([]);
  });

  it('refuses an unknown fix by name', async () => {
    register({ SENTINEL_AUDIT_REMEDIATE: 'deletion-protection,delete-key' });
    const res = await cloud.functions.invoke(
      AUDIT,
      Buffer.from(JSON.stringify({ triggerTime: new Date().toISOString(), triggerName: 'daily' })),
      {},
    );
    expect(res.body).toMatch(/SENTINEL_AUDIT_REMEDIATE.*\\"delete-key\\" is not a fix/);
  });
});

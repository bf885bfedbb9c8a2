import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatReport, type PrepareReport, prepare, prepareClients } from '../../deploy/prepare';
import { FUNCTIONS, policyName, renderPolicy, roleName } from '../../deploy/ram';
import { deployState } from '../../sandbox/cloud/deploy-apis';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import { CloudEmulator, TRAIL_LOGSTORE, TRAIL_PROJECT } from '../../sandbox/cloud/emulator';

/** deploy:prepare against the emulated cloud, through the official SDKs, as a new user runs it. */
let cloud: CloudEmulator;
const LITERAL = 'a-webhook-secret-of-forty-characters-0123';

const envFor = (c: CloudEmulator) => ({
  SENTINEL_REGION: c.state.region,
  SENTINEL_ACCOUNT_ID: c.state.accountId,
  SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
  SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
  SENTINEL_CLUSTER_IDS: 'c8d3a1b2e4f5a6b7c8d9e0f1a2b3c4d5e',
  SENTINEL_KMS_KEY_IDS: 'key-hzz630494463ejqjx0001',
  SENTINEL_WEBHOOK_SECRET: LITERAL,
});

const clientsFor = (c: CloudEmulator) => {
  const endpoint = { protocol: 'http' as const, host: c.host, url: c.url };
  return prepareClients(
    {
      region: c.state.region,
      accountId: c.state.accountId,
      endpoints: { kms: endpoint, actiontrail: endpoint, sls: endpoint, oss: endpoint },
      ram: endpoint,
    },
    { accessKeyId: c.user.accessKeyId, accessKeySecret: c.user.accessKeySecret },
  );
};

const outcomes = (r: PrepareReport) => new Set(r.steps.map((s) => s.outcome));

beforeAll(async () => {
  resolveLoopbackSubdomains();
  cloud = await CloudEmulator.start();
});
afterAll(async () => {
  await cloud?.stop();
});

describe('deploy:prepare', () => {
  it('a dry run says what it would do and changes nothing', async () => {
    const report = await prepare({ dryRun: true, env: envFor(cloud) }, clientsFor(cloud));
    expect(deployState(cloud).writes).toEqual([]);
    expect(cloud.state.secrets).toEqual([]);
    expect(report.steps).toEqual(
      expect.arrayContaining([
        { resource: 'RAM role', name: roleName('audit', 'cn-hangzhou'), outcome: 'would create' },
        {
          resource: 'OSS bucket',
          name: `ack-kms-sentinel-${cloud.state.accountId}-cn-hangzhou`,
          outcome: 'would create',
        },
        { resource: 'KMS secret', name: 'ack-kms-sentinel-webhook', outcome: 'would create' },
      ]),
    );
    expect(formatReport(report)).toMatch(/dry run: nothing changed/);
  });

  it('creates everything once, with the optional policies asked for; a second run changes nothing', async () => {
    const env = envFor(cloud);
    const clients = clientsFor(cloud);
    const first = await prepare({ dryRun: false, env, optional: ['audit-remediate'] }, clients);
    expect(outcomes(first)).not.toContain('would create');
    const state = deployState(cloud);
    for (const fn of FUNCTIONS) {
      const role = roleName(fn, 'cn-hangzhou');
      expect(state.roles.get(role)?.document).toContain('fc.aliyuncs.com');
      expect([...(state.attached.get(role) ?? [])]).toContain(policyName(fn, 'cn-hangzhou'));
      expect(
        JSON.parse(state.policies.get(policyName(fn, 'cn-hangzhou'))?.versions[0]?.document ?? ''),
      ).toEqual(renderPolicy(fn, env));
    }
    expect([...(state.attached.get(roleName('audit', 'cn-hangzhou')) ?? [])]).toContain(
      policyName('audit-remediate', 'cn-hangzhou'),
    );
    // Only the named key, never key/*.
    expect(state.policies.get(policyName('audit-remediate', 'cn-hangzhou'))?.versions[0]?.document).toContain(
      `key/key-hzz630494463ejqjx0001`,
    );
    expect(cloud.state.buckets[`ack-kms-sentinel-${cloud.state.accountId}-cn-hangzhou`]).toBeDefined();
    expect(state.slsProjects.get(TRAIL_PROJECT)).toContain('ack-kms-sentinel-logs');
    expect(state.attached.get('aliyunlogetlrole')).toContain('AliyunLogETLRolePolicy');
    const secret = cloud.state.secrets.find((s) => s.secretName === 'ack-kms-sentinel-webhook');
    expect(secret?.versions[0]?.data).toBe(LITERAL);
    expect(first.ready).toBe(true);
    expect(JSON.stringify(first) + formatReport(first)).not.toContain(LITERAL);

    const writes = state.writes.length;
    const second = await prepare({ dryRun: false, env, optional: ['audit-remediate'] }, clients);
    expect(state.writes.length, 'a second run writes nothing').toBe(writes);
    expect([...outcomes(second)].sort()).toEqual(['manual', 'ok', 'unchanged']);
  });

  it('brings a changed policy back to the template with a new default version', async () => {
    const state = deployState(cloud);
    const name = policyName('webhook', 'cn-hangzhou');
    const policy = state.policies.get(name);
    if (!policy) throw new Error('no policy');
    for (const v of policy.versions) v.isDefault = false;
    policy.versions.push({
      id: 'v9',
      document: '{"Version":"1","Statement":[]}',
      isDefault: true,
      created: '',
    });
    const report = await prepare({ dryRun: false, env: envFor(cloud) }, clientsFor(cloud));
    expect(report.steps).toContainEqual({ resource: 'RAM policy', name, outcome: 'updated' });
    expect(JSON.parse(policy.versions.find((v) => v.isDefault)?.document ?? '')).toEqual(
      renderPolicy('webhook', envFor(cloud)),
    );
  });

  it('names what it cannot do: a bucket of another account, no KMS instance', async () => {
    const other = await CloudEmulator.start({ accountId: '9999999999999999', region: 'cn-shanghai' });
    try {
      // A trail project the sandbox's trail does not deliver to.
      const env = { ...envFor(other), SENTINEL_TRAIL_PROJECT: 'actiontrail-9999999999999999' };
      const bucket = `ack-kms-sentinel-${other.state.accountId}-cn-shanghai`;
      other.createBucket(bucket, '1111111111111111');
      deployState(other).kmsInstances = [];
      const report = await prepare({ dryRun: false, env }, clientsFor(other));
      expect(report.ready).toBe(false);
      const missing = report.steps.filter((s) => s.outcome === 'missing');
      expect(missing.map((s) => s.resource)).toEqual(
        expect.arrayContaining([
          'OSS bucket',
          'SLS project',
          'KMS instance',
          'KMS secret',
          'ActionTrail trail',
        ]),
      );
      expect(missing.find((s) => s.resource === 'KMS instance')?.todo).toMatch(/KMS console → Instances/);
      expect(missing.find((s) => s.resource === 'ActionTrail trail')?.todo).toMatch(
        /aliyun actiontrail CreateTrail .*acs:log:cn-shanghai:9999999999999999:project\//,
      );
    } finally {
      await other.stop();
    }
  });
});

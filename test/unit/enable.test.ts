import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import type { ClusterState } from '../../sandbox/cloud/state';
import type { CloudClients } from '../../shared/cloud/clients';
import { type EnableRequest, enableEncryption } from '../../shared/encryption/enable';
import { emulatorClients } from '../helpers/emulator';

/**
 * `enable`'s pre-flight checks and refusals, one by one, through the emulated cloud and the suite's own
 * clients (no cluster is reached: every case stops before the sweep; the whole procedure on a real control
 * plane is test/integration/demo-enable.test.ts).
 */
let cloud: CloudEmulator;
let user: CloudClients;
let n = 0;

beforeAll(async () => {
  cloud = await CloudEmulator.start();
  user = emulatorClients(cloud, cloud.user);
});
afterAll(async () => {
  await cloud.stop();
});

/** A fresh Pro cluster without encryption (created long ago), and a fresh key, each case its own. */
function setup(cluster: Partial<ClusterState> = {}) {
  n++;
  const key = cloud.createKey();
  const created = new Date(cloud.now() - 86_400_000).toISOString();
  const c = cloud.addCluster({
    clusterId: `c-enable-${n}`,
    kubeconfig: 'unused',
    clusterSpec: 'ack.pro.small',
    created,
    ...cluster,
  });
  return { key, cluster: c, request: { clusterId: c.clusterId, keyId: key.keyId } satisfies EnableRequest };
}

const run = (request: EnableRequest) =>
  enableEncryption(
    {
      clients: user,
      openCluster: () => Promise.reject(new Error('no cluster is reached in these cases')),
      waits: { pollMs: 10, runningMs: 100, evidenceMs: 100 },
      now: () => cloud.now(),
    },
    request,
  );

const statusOf = (report: Awaited<ReturnType<typeof run>>, id: string) =>
  report.checks.find((c) => c.id === id)?.status;

describe('enable: pre-flight checks', () => {
  it('a dry run on a ready cluster passes every check, warns of deletion protection, and changes nothing', async () => {
    const { request, cluster } = setup();
    const report = await run({ ...request, dryRun: true });
    expect(report.outcome).toBe('dry-run');
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(statusOf(report, 'deletion-protection')).toBe('warn');
    expect(report.checks.filter((c) => c.status === 'manual').map((c) => c.id)).toEqual([
      'network',
      'managed-role',
      'rbac-admin',
      'deny-later-changes',
    ]);
    expect(report.checks.every((c) => c.evidence.length > 0)).toBe(true);
    expect(cluster.disableEncryption).toBe(true);
    expect(report.steps.map((s) => s.step)).toEqual(['preflight']);
  });

  it('warns, without failing, of a Kubernetes version before KMS v2', async () => {
    const { request } = setup({ currentVersion: '1.28.9-aliyun.1' });
    const report = await run({ ...request, dryRun: true });
    expect(report.outcome).toBe('dry-run');
    expect(report.checks.find((c) => c.id === 'cluster-version')).toMatchObject({
      status: 'warn',
      evidence: 'Kubernetes 1.28.9-aliyun.1',
    });
  });

  it('--protect-key turns the key deletion protection on, and a dry run only says it would', async () => {
    const { request, key } = setup();
    const dry = await run({ ...request, dryRun: true, protectKey: true });
    expect(dry.steps.map((s) => `${s.step}:${s.status}`)).toEqual(['preflight:done', 'protect-key:skipped']);
    expect(cloud.state.keys.find((k) => k.keyId === key.keyId)?.deletionProtection).toBe('Disabled');
    const on = await run({ ...request, protectKey: true, until: 'switch' });
    expect(on.steps.map((s) => `${s.step}:${s.status}`)).toEqual([
      'preflight:done',
      'protect-key:done',
      'switch:done',
    ]);
    expect(on.outcome).toBe('switched');
    expect(cloud.state.keys.find((k) => k.keyId === key.keyId)?.deletionProtection).toBe('Enabled');
  });

  it('a run that stopped while the cluster was Updating goes on to wait for Running, and names the failing step', async () => {
    const { request, cluster, key } = setup({ state: 'updating' });
    cluster.encryptionKeyId = key.keyId;
    cluster.disableEncryption = false;
    const report = await run(request);
    expect(report.checks.find((c) => c.id === 'cluster-state')).toBeUndefined();
    expect(report.steps.map((s) => `${s.step}:${s.status}`)).toEqual([
      'preflight:done',
      'switch:skipped',
      'running:failed',
    ]);
    expect(report.resume).toMatch(/enable --cluster-id/);
  });

  it.each([
    ['cluster-type', 'an ACK Basic cluster', () => setup({ clusterSpec: 'ack.standard' })],
    ['cluster-state', 'a cluster being updated', () => setup({ state: 'updating' })],
    [
      'key-state',
      'a disabled key',
      () => {
        const s = setup();
        s.key.keyState = 'Disabled';
        return s;
      },
    ],
    [
      'key-region',
      'a key in another region',
      () => {
        const s = setup();
        s.key.arn = s.key.arn.replace(`:${cloud.state.region}:`, ':cn-beijing:');
        return s;
      },
    ],
    [
      'key-spec',
      'an asymmetric key',
      () => {
        const s = setup();
        (s.key as { keySpec: string }).keySpec = 'RSA_2048';
        return s;
      },
    ],
    [
      'key-exists',
      'a key that does not exist',
      () => {
        const s = setup();
        return { ...s, request: { ...s.request, keyId: 'key-missing-0000' } };
      },
    ],
    [
      'other-key',
      'a cluster encrypted with another key',
      () => {
        const other = cloud.createKey();
        return setup({ encryptionKeyId: other.keyId, disableEncryption: false });
      },
    ],
  ])('fails %s: %s, and switches nothing', async (id, _what, make) => {
    const { request } = make();
    const before = cloud.published.length;
    const report = await run(request);
    expect(report.outcome).toBe('checks-failed');
    expect(statusOf(report, id)).toBe('fail');
    expect(report.checks.find((c) => c.id === id)?.remedy).toBeTruthy();
    expect(report.steps.map((s) => s.step)).toEqual(['preflight']);
    const switched = cloud.published
      .slice(before)
      .filter((e) => (e.data as { eventName?: string }).eventName === 'UpdateKMSEncryption');
    expect(switched).toEqual([]);
  });
});

describe('enable: the switch refused, explained, and resumable', () => {
  it('the managed role not authorized: says which role and where, and how to resume', async () => {
    const { request, cluster } = setup();
    cloud.state.managedRoleAuthorized = false;
    try {
      const report = await run(request);
      expect(report.outcome).toBe('failed');
      const step = report.steps.find((s) => s.step === 'switch');
      expect(step?.status).toBe('failed');
      expect(step?.detail).toMatch(/AliyunCSManagedSecurityRole/);
      expect(report.resume).toMatch(new RegExp(`enable --cluster-id ${cluster.clusterId} --key-id`));
      expect(cluster.disableEncryption).toBe(true);
    } finally {
      cloud.state.managedRoleAuthorized = undefined;
    }
  });

  it('a change within 5 minutes of the last: a warning before, and the 409 explained', async () => {
    const { request, cluster } = setup();
    cluster.lastKmsChange = new Date(cloud.now() - 60_000).toISOString();
    const report = await run(request);
    expect(statusOf(report, 'recent-change')).toBe('warn');
    expect(report.steps.find((s) => s.step === 'switch')?.detail).toMatch(/less than 5 minutes ago/);
    expect(report.outcome).toBe('failed');
  });
});

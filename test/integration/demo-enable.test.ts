import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox';
import { readSecretEvidence, summarize } from '../../shared/etcd/evidence';
import { runCli } from '../helpers/cli';
import { runDemo } from '../helpers/demo';
import { coreApi } from '../helpers/sandbox';

/**
 * Turning Secret encryption on, end to end on a real control plane that starts without it: the demo as users
 * run it, and the CLI's `enable` run twice (the second a no-op report), with etcd read by the project's
 * evidence reader before and after.
 */
describe('npm run demo -- --enable', () => {
  it('every Secret written before is plaintext in etcd before, and sealed under the key after', async () => {
    const { code, stderr, summary } = await runDemo(['--enable', '--secrets=120']);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(summary).toMatchObject({
      secrets: 120,
      plaintextBefore: 120,
      // Turning encryption on rewrites nothing: the Secrets written before stay plaintext until the sweep.
      plaintextAfterSwitch: 120,
      newSecretAfterSwitch: 'kms-v2',
      plaintextAfter: 0,
      outcome: 'enabled',
      proof: 'effective',
    });
    expect(Object.values(summary.etcdKeyVersionsAfter)).toEqual([121]);
    expect(summary.durationMs).toBeGreaterThan(0);
    expect((summary.steps as Array<{ step: string }>).map((s) => s.step)).toEqual([
      'preflight',
      'switch',
      'running',
      'evidence',
      'sweep',
      'verify',
    ]);
    expect(stderr, 'no Secret value in the output').not.toMatch(/not-a-real-secret/);
  });
});

describe('ack-kms-sentinel enable', () => {
  let sandbox: Sandbox;
  let config: string;

  beforeAll(async () => {
    sandbox = await startSandbox({ encryption: 'none' });
    const core = coreApi(sandbox.info.kubeconfig);
    await core.createNamespace({ body: { metadata: { name: 'enable-cli' } } });
    for (let i = 0; i < 30; i++)
      await core.createNamespacedSecret({
        namespace: 'enable-cli',
        body: { metadata: { name: `s-${i}` }, stringData: { token: `value-${i}` } },
      });
    const { cloud } = sandbox.info;
    config = join(mkdtempSync(join(tmpdir(), 'enable-cli-')), 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        SENTINEL_REGION: cloud.region,
        SENTINEL_ACCOUNT_ID: cloud.accountId,
        ...Object.fromEntries(
          ['KMS', 'CS', 'ACTIONTRAIL'].map((x) => [`SENTINEL_ENDPOINT_${x}`, cloud.endpoint]),
        ),
      }),
    );
  }, 300_000);
  afterAll(async () => {
    await sandbox?.stop();
  });

  const enable = (...extra: string[]) => {
    const { cloud } = sandbox.info;
    return runCli(
      [
        'enable',
        '--cluster-id',
        cloud.clusterId,
        '--key-id',
        cloud.kmsKeyId,
        '--verify-etcd',
        sandbox.info.etcd,
        '--config',
        config,
        '--json',
        ...extra,
      ],
      {
        ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
      },
    );
  };

  it('a dry run checks and changes nothing; enable encrypts every Secret; a second enable is a no-op report', async () => {
    const dry = await enable('--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.lines.at(-1) ?? '{}')).toMatchObject({ outcome: 'dry-run' });
    expect(dry.stderr).toMatch(/100\.64\.0\.0\/10/);
    expect(summarize(await readSecretEvidence(sandbox.info.etcd)).plaintext).toBeGreaterThanOrEqual(30);

    const first = await enable();
    expect(first.code, first.stderr.slice(-2000)).toBe(0);
    const report = JSON.parse(first.lines.at(-1) ?? '{}');
    expect(report).toMatchObject({ outcome: 'enabled', proof: 'effective', etcd: { plaintext: 0 } });
    expect(report.sweep.rewritten).toBeGreaterThanOrEqual(30);
    expect(report.census.done).toBe(report.census.total);

    const second = await enable();
    expect(second.code, second.stderr.slice(-2000)).toBe(0);
    const again = JSON.parse(second.lines.at(-1) ?? '{}');
    expect(again).toMatchObject({
      outcome: 'already-enabled',
      sweep: { rewritten: 0 },
      etcd: { plaintext: 0 },
    });
    expect(again.steps.find((s: { step: string }) => s.step === 'switch')).toMatchObject({
      status: 'skipped',
    });
    expect(`${first.stdout}${first.stderr}`).not.toMatch(/value-\d/);
  });

  it('audit --fix turns on the key protections once, and records them in the report', async () => {
    const { cloud } = sandbox.info;
    const audit = () =>
      runCli(
        [
          'audit',
          '--cluster-id',
          cloud.clusterId,
          '--kubeconfig',
          sandbox.info.restrictedKubeconfig,
          '--config',
          config,
          '--out',
          mkdtempSync(join(tmpdir(), 'fix-')),
          '--fix',
          'deletion-protection,rotation-policy',
          '--json',
        ],
        {
          ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
          ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
        },
      );
    const first = await audit();
    const report = JSON.parse(first.lines.at(-1) ?? '{}');
    expect(report.remediations, first.stderr.slice(-1500)).toEqual([
      expect.objectContaining({ fix: 'deletion-protection', outcome: 'done', keyId: cloud.kmsKeyId }),
      expect.objectContaining({
        fix: 'rotation-policy',
        outcome: 'done',
        detail: 'automatic rotation every 365 days',
      }),
    ]);
    const key = sandbox.cloud.state.keys.find((k) => k.keyId === cloud.kmsKeyId);
    expect(key).toMatchObject({ deletionProtection: 'Enabled', automaticRotation: 'Enabled' });
    const second = JSON.parse((await audit()).lines.at(-1) ?? '{}');
    expect(second.remediations).toEqual([]);
  });

  it('disable needs its confirmation; then new Secrets are plaintext and the old stay sealed', async () => {
    const { cloud } = sandbox.info;
    const disable = (...extra: string[]) =>
      runCli(['disable', '--cluster-id', cloud.clusterId, '--config', config, '--json', ...extra], {
        ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
      });
    const refused = await disable();
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/do not disable or delete the key/);
    expect(sandbox.cloud.state.clusters.find((c) => c.clusterId === cloud.clusterId)?.disableEncryption).toBe(
      false,
    );

    // CS refuses a second change within 5 minutes: the last one is dated back instead of moving the cloud's
    // clock, which put its ActionTrail events minutes ahead of the CLI's time windows (no real deployment has
    // that skew; the likely reason the re-enable below waited ~6 minutes in two loaded runs).
    const pastCooldown = () => {
      const cluster = sandbox.cloud.state.clusters.find((c) => c.clusterId === cloud.clusterId);
      if (cluster) cluster.lastKmsChange = new Date(Date.now() - 6 * 60_000).toISOString();
    };
    pastCooldown();
    const done = await disable('--confirm-disable');
    expect(done.code, done.stderr.slice(-1500)).toBe(0);
    expect(JSON.parse(done.lines.at(-1) ?? '{}')).toMatchObject({
      outcome: 'disabled',
      keyId: cloud.kmsKeyId,
    });
    await coreApi(sandbox.info.kubeconfig).createNamespacedSecret({
      namespace: 'enable-cli',
      body: { metadata: { name: 'after-disable' }, stringData: { token: 'plain' } },
    });
    const stored = (await readSecretEvidence(sandbox.info.etcd)).filter((s) => s.namespace === 'enable-cli');
    expect(stored.find((s) => s.name === 'after-disable')?.storage).toBe('identity');
    expect(stored.filter((s) => s.name !== 'after-disable').every((s) => s.storage === 'kms-v2')).toBe(true);

    // A Secret updated while encryption is off keeps its old mark but is stored in plaintext: enabling again
    // must not trust that mark.
    await coreApi(sandbox.info.kubeconfig).patchNamespacedSecret(
      { namespace: 'enable-cli', name: 's-0', body: { stringData: { token: 'changed-while-off' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const changed = (await readSecretEvidence(sandbox.info.etcd)).find((s) => s.name === 's-0');
    expect(changed?.storage).toBe('identity');
    pastCooldown();
    const again = await enable();
    expect(again.code, again.stderr.slice(-1500)).toBe(0);
    expect(JSON.parse(again.lines.at(-1) ?? '{}')).toMatchObject({
      outcome: 'enabled',
      etcd: { plaintext: 0 },
    });
  });
});

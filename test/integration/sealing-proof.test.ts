import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import * as $Kms from '@alicloud/kms20160120';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler as reencryptHandler } from '../../functions/reencrypt';
import { createHandler as rotationWatchHandler } from '../../functions/rotation-watch';
import { type Sandbox, sandboxUserClients, startSandbox } from '../../sandbox';
import type { FcHandler } from '../../sandbox/cloud/fc';
import type { AuditReport } from '../../shared/audit/report';
import { CLOCK_MARGIN_MS } from '../../shared/cluster/sealing';
import { readSecretEvidence, summarize } from '../../shared/etcd/evidence';
import { jobIdFor } from '../../shared/jobs/payload';
import { type ClusterState, configMapState } from '../../shared/jobs/store';
import { annotationPatch, FORCED, SEALED_UNDER_ANNOTATION } from '../../shared/reencrypt/annotations';
import { runCli } from '../helpers/cli';
import { Recorder } from '../helpers/recorder';
import { coreApi } from '../helpers/sandbox';
import { seedSecrets } from '../helpers/secrets';

/**
 * The proof on a control plane whose KMS plugin behaves like the open-source ACK plugin (a constant key id):
 * after a rotation the API server keeps its seed, sealed under the old version, until it restarts. The
 * suite must find that out from the API server's own /metrics, not claim a re-encryption it did not do, and
 * sweep once the API server has made a new seed. etcd is the truth every test checks.
 */
const NAMESPACES = ['seal-a', 'seal-b'];
const COUNT = 60;
const REENCRYPT = 'ack-kms-sentinel-reencrypt';
const WATCH = 'ack-kms-sentinel-rotation-watch';

let sandbox: Sandbox;
let receiver: Recorder;

beforeAll(async () => {
  sandbox = await startSandbox({ plugin: 'constant-key-id' });
  receiver = await new Recorder().start();
  const { cloud } = sandbox.info;
  const env = {
    SENTINEL_REGION: cloud.region,
    SENTINEL_ACCOUNT_ID: cloud.accountId,
    SENTINEL_CLUSTER_PROFILE: 'Edge',
    ...Object.fromEntries(
      ['KMS', 'CS', 'ACTIONTRAIL', 'FC'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.endpoint]),
    ),
    SENTINEL_STATE_NAMESPACE: sandbox.info.stateNamespace,
    // The API server polls the plugin's Status every minute; for the test a shorter wait for a new key id.
    SENTINEL_REENCRYPT_ADOPTION_DELAY: '15s',
    SENTINEL_REENCRYPT_BUDGET_MARGIN: '5s',
    SENTINEL_NOTIFY_CHANNELS: JSON.stringify([
      { type: 'webhook', url: `${receiver.url}/hook`, secret: 'sealing-proof-webhook-secret-0123' },
    ]),
    SENTINEL_LOG_LEVEL: 'warn',
  };
  const quiet = () => undefined;
  const fc = (h: unknown) => h as FcHandler;
  sandbox.cloud.registerFunction({
    name: WATCH,
    handler: fc(rotationWatchHandler({ env, sink: quiet })),
    timeoutSeconds: 60,
  });
  sandbox.cloud.registerFunction({
    name: REENCRYPT,
    handler: fc(reencryptHandler({ env, sink: quiet })),
    timeoutSeconds: 120,
    maxAsyncRetryAttempts: 2,
  });
  await seedSecrets(coreApi(sandbox.info.kubeconfig), { namespaces: NAMESPACES, count: COUNT });
}, 180_000);

afterAll(async () => {
  await receiver?.stop();
  await sandbox?.stop();
});

async function rotate(): Promise<string> {
  const { cloud } = sandbox.info;
  const user = sandboxUserClients(sandbox.info);
  const r = await user.kms.createKeyVersion(new $Kms.CreateKeyVersionRequest({ keyId: cloud.kmsKeyId }));
  return r.keyVersion?.keyVersionId ?? '';
}

/** A rotation-watch tick: the outcome for the sandbox cluster, once every job it started has run. */
async function tick(): Promise<string | undefined> {
  const res = await sandbox.cloud.functions.invoke(
    WATCH,
    Buffer.from(JSON.stringify({ triggerTime: new Date().toISOString(), triggerName: 'poll' })),
    {},
  );
  await sandbox.cloud.idle();
  const answer = JSON.parse(res.body);
  if (!answer.jobs) throw new Error(`rotation-watch answered ${res.body}`);
  const jobs = answer.jobs as Array<{ clusterId: string; outcome: string }>;
  return jobs.find((j) => j.clusterId === sandbox.info.cloud.clusterId)?.outcome;
}

/** etcd's truth: how many of the seeded Secrets have a seed sealed under each KMS key version. */
async function sealedByVersion(): Promise<Record<string, number>> {
  const stored = (await readSecretEvidence(sandbox.info.etcd)).filter((s) =>
    NAMESPACES.includes(s.namespace),
  );
  expect(stored).toHaveLength(COUNT);
  return summarize(stored).bySealingVersion;
}

const state = () => configMapState(coreApi(sandbox.info.kubeconfig), sandbox.info.stateNamespace).load();
const critical = () =>
  receiver.requests
    .map((r) => JSON.parse(r.body) as { severity: string; title: string })
    .filter((n) => n.severity === 'critical');

/** The CLI as a user runs it with cloud credentials, against the suite's least-privileged kubeconfig. */
function cli(args: string[]) {
  const { cloud } = sandbox.info;
  const dir = mkdtempSync(join(tmpdir(), 'sealing-'));
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      SENTINEL_REGION: cloud.region,
      SENTINEL_ACCOUNT_ID: cloud.accountId,
      SENTINEL_STATE_NAMESPACE: sandbox.info.stateNamespace,
      ...Object.fromEntries(
        ['KMS', 'CS', 'ACTIONTRAIL'].map((x) => [`SENTINEL_ENDPOINT_${x}`, cloud.endpoint]),
      ),
    }),
  );
  return runCli(
    [
      ...args,
      '--kubeconfig',
      sandbox.info.restrictedKubeconfig,
      '--cluster-id',
      cloud.clusterId,
      '--config',
      config,
    ],
    {
      ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
    },
  );
}

/** The audit's coverage check, through the CLI. */
async function auditCoverage() {
  const run = await cli(['audit', '--out', mkdtempSync(join(tmpdir(), 'sealing-audit-')), '--json']);
  // Exit 1 when a check fails; the report is written either way.
  expect([0, 1], run.stderr).toContain(run.code);
  const last = run.lines.at(-1) ?? '';
  expect(last.startsWith('{'), `no report on stdout; stderr: ${run.stderr.slice(-1500)}`).toBe(true);
  const report = JSON.parse(last) as AuditReport;
  const cluster = report.clusters[0];
  return { check: cluster?.checks.find((c) => c.id === 'coverage'), coverage: cluster?.coverage };
}

describe('a control plane whose plugin keeps its key id across rotations (the ACK plugin)', () => {
  let v1 = '';
  let v2 = '';

  it('after a rotation without a restart: the job does not sweep, says why, alerts once, and claims nothing', async () => {
    const before = await sealedByVersion();
    expect(Object.keys(before)).toHaveLength(1);
    v1 = Object.keys(before)[0] ?? '';
    v2 = await rotate();
    expect(await tick()).toBe('started');
    const s = await state();
    expect(s.completedKeyVersion, 'claimed complete').not.toBe(v2);
    expect(s.job).toMatchObject({ phase: 'waiting-for-new-seed', keyVersionId: v2 });
    expect(JSON.stringify(s.job?.report)).toContain('CMK id');
    expect(critical().map((n) => n.title)).toEqual([
      `Re-encryption of ${sandbox.info.cloud.clusterId} for ${v2} cannot take effect yet`,
    ]);
    // Nothing was rewritten, and the truth agrees: every seed is still the old version's.
    expect(await sealedByVersion()).toEqual({ [v1]: COUNT });
    expect(await tick(), 'a later tick finds it still waiting, and alerts no more').toBe(
      'waiting-for-new-seed',
    );
    expect(critical()).toHaveLength(1);
  });

  it('the audit says "not effective"; the CLI refuses a useless sweep, and --force marks its rewrites as forced', async () => {
    const audit = await auditCoverage();
    expect(audit.coverage).toMatchObject({ proof: 'not-effective', current: 0 });
    expect(audit.check).toMatchObject({
      status: 'fail',
      evidence: expect.stringMatching(/^not effective: /),
    });

    const refused = await cli(['reencrypt']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not effective: .*CMK id.*--force/);
    const forced = await cli(['reencrypt', '--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.lines.at(-1) ?? '{}').rewritten).toBeGreaterThanOrEqual(COUNT);
    // Rewritten, and still sealed under the old version: that is why no one may trust these marks.
    expect(await sealedByVersion()).toEqual({ [v1]: COUNT });
    const secret = await coreApi(sandbox.info.kubeconfig).readNamespacedSecret({
      namespace: NAMESPACES[0] ?? '',
      name: 's-00000',
    });
    expect(secret.metadata?.annotations?.[SEALED_UNDER_ANNOTATION]).toBe(FORCED);
    expect((await auditCoverage()).coverage, 'forced marks are not coverage').toMatchObject({ current: 0 });
  });

  it('once kube-apiserver has restarted (a new seed under the new version), the next tick sweeps and proves it', async () => {
    await sandbox.controlPlane.restartApiServer();
    expect(await tick()).toBe('restarted');
    const s = await state();
    expect(s).toMatchObject({ completedKeyVersion: v2, completedProof: 'proven' });
    expect(s.job?.report).toMatchObject({
      rewritten: COUNT,
      evidence: { verdict: 'effective', constantKeyId: true, apiServers: [{ state: 'restarted' }] },
    });
    expect(await sealedByVersion()).toEqual({ [v2]: COUNT });
    expect(await tick()).toBe('current');
    const audit = await auditCoverage();
    expect(audit.coverage).toMatchObject({ proof: 'proven', share: 1 });
    expect(audit.check).toMatchObject({ status: 'pass', evidence: expect.stringMatching(/^proven: /) });
  });

  it('never trusts a mark or a completion written without proof: after the restart everything is rewritten', async () => {
    const rotatedAt = Date.now();
    const v3 = await rotate();
    // What the suite did before it read the API servers: it swept (marking every Secret for v3) and called the
    // version complete, while every seed stayed sealed under v2.
    const admin = coreApi(sandbox.info.kubeconfig);
    for (const namespace of NAMESPACES) {
      const { items } = await admin.listNamespacedSecret({ namespace });
      for (const secret of items)
        await admin.patchNamespacedSecret(
          { namespace, name: secret.metadata?.name ?? '', body: annotationPatch(v3, new Date()) },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
    }
    const legacy: ClusterState = {
      completedKeyVersion: v3,
      completedAt: new Date().toISOString(),
      job: {
        jobId: jobIdFor(sandbox.info.cloud.clusterId, sandbox.info.cloud.kmsKeyId, v3),
        keyId: sandbox.info.cloud.kmsKeyId,
        keyVersionId: v3,
        phase: 'completed',
        attempt: 1,
        invocation: 1,
        updatedAt: new Date().toISOString(),
      },
    };
    const store = configMapState(admin, sandbox.info.stateNamespace);
    await store.load();
    await store.save(legacy);
    expect(await sealedByVersion()).toEqual({ [v2]: COUNT });
    expect(await tick(), 'a completion without proof is not "current"').toBe('waiting-for-new-seed');
    // A start counts as after the rotation only CLOCK_MARGIN_MS after LastRotationDate (whole seconds): this
    // test gets here within a few seconds of rotating, and its restart was read as before it now and then.
    await setTimeout(Math.max(0, rotatedAt + CLOCK_MARGIN_MS + 1_000 - Date.now()));
    await sandbox.controlPlane.restartApiServer();
    expect(await tick()).toBe('restarted');
    expect((await state()).job?.report).toMatchObject({ rewritten: COUNT, alreadyCurrent: 0 });
    expect(await sealedByVersion()).toEqual({ [v3]: COUNT });
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox';
import { applyFlowControl, flowControlNames } from '../../shared/cluster/flow-control';
import { KubeHttp } from '../../shared/cluster/kube-http';
import { SENTINEL_USER } from '../../shared/cluster/rbac';
import { httpSecretStore } from '../../shared/cluster/secret-store';
import { kubeSpace } from '../../shared/etcd/space';
import { sweep } from '../../shared/reencrypt/sweep';
import { coreApi, kubeConfig, pool } from '../helpers/sandbox';

/**
 * A sweep its neighbours can live with, on a real control plane: the suite's identity served by its own APF
 * priority level (deploy/apf.yaml, applied as the grant step does), and the etcd space guard pausing a sweep
 * that grows etcd past its threshold until the API server compacts (every 2 s here), then finishing it.
 */
describe('a sweep beside its neighbours', () => {
  let sandbox: Sandbox;
  const namespace = 'neighbours';
  const COUNT = 60;

  beforeAll(async () => {
    sandbox = await startSandbox({ compactionIntervalSeconds: 2 });
    const core = coreApi(sandbox.info.kubeconfig);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // Helm-sized: each rewrite stores ~100 KiB again, so 60 of them grow etcd by megabytes.
    const release = randomBytes(100 * 1024).toString('base64');
    await pool(
      Array.from({ length: COUNT }, (_, i) => i),
      8,
      async (i) => {
        await core.createNamespacedSecret({
          namespace,
          body: { metadata: { name: `release-${String(i).padStart(3, '0')}` }, data: { release } },
        });
      },
    );
  }, 180_000);

  afterAll(async () => {
    await sandbox?.stop();
  });

  it("reports the APF level that served it: the suite's own once deploy/apf.yaml is applied", async () => {
    const admin = new KubeHttp(kubeConfig(sandbox.info.kubeconfig));
    const applied = await applyFlowControl(admin, [SENTINEL_USER]);
    // Applied twice: the same objects (server-side apply is idempotent).
    expect(await applyFlowControl(admin, [SENTINEL_USER])).toEqual(applied);
    const store = httpSecretStore(kubeConfig(sandbox.info.restrictedKubeconfig));
    try {
      const report = await sweep({
        store,
        targetKeyVersionId: 'apf-check',
        dryRun: true,
        selection: { namespaces: [namespace] },
      });
      // A dry run reads etcd's size once, for the estimate's outlook (quota: etcd's default unless given).
      expect(report.etcdSpace).toMatchObject({ quotaBytes: 2 * 1024 ** 3, share: 0.8, pauses: 0 });
      expect(report.etcdSpace?.sizeBytes).toBeGreaterThan(0);
      expect(report.flowControl).toEqual({
        flowSchemaUid: applied.flowSchemaUid,
        priorityLevelUid: applied.priorityLevelUid,
      });
      // The admin may read the names behind the UIDs (the suite's identity need not).
      expect(
        await flowControlNames(admin, report.flowControl as NonNullable<typeof report.flowControl>),
      ).toMatchObject({
        flowSchema: 'ack-kms-sentinel',
        priorityLevel: 'ack-kms-sentinel',
      });
    } finally {
      store.close();
      admin.close();
    }
  });

  it('pauses once etcd grows past its share of the quota, saves its checkpoint, resumes after a compaction and writes every Secret once', async () => {
    const http = new KubeHttp(kubeConfig(sandbox.info.restrictedKubeconfig));
    const before = await kubeSpace(http).storageSizeBytes();
    http.close();
    expect(before).toBeGreaterThan(0);
    const quotaBytes = 1024 ** 3;
    // The threshold 2 MiB above today's size: the sweep's own rewrites cross it.
    const share = ((before ?? 0) + 2 * 1024 * 1024) / quotaBytes;
    const store = httpSecretStore(kubeConfig(sandbox.info.restrictedKubeconfig));
    const saved: unknown[] = [];
    try {
      const report = await sweep({
        store,
        targetKeyVersionId: 'space-check',
        selection: { namespaces: [namespace] },
        pageSize: 10,
        concurrency: 4,
        etcdSpace: { quotaBytes, share, pollMs: 50 },
        onCheckpoint: (c) => void saved.push(c),
      });
      expect(report).toMatchObject({ complete: true, total: COUNT, rewritten: COUNT, failed: 0 });
      expect(report.etcdSpace?.pauses).toBeGreaterThanOrEqual(1);
      expect(report.etcdSpace?.sizeAtStartBytes).toBe(before);
      expect(report.etcdSpace?.sizeBytes).toBeGreaterThan(before ?? 0);
      expect(saved.length).toBeGreaterThanOrEqual(1);
      // Every Secret carries the mark once more, no more.
      const marked = (await store.list({ namespace, limit: 500 })).items.filter((s) =>
        Object.values(s.annotations ?? {}).includes('space-check'),
      );
      expect(marked).toHaveLength(COUNT);
    } finally {
      store.close();
    }
  }, 120_000);
});

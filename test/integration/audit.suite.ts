import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import OSS from 'ali-oss';
import { beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/audit';
import { sandboxUserClients } from '../../sandbox';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import type { AuditReport } from '../../shared/audit/report';
import { createCloudClients } from '../../shared/cloud/clients';
import { apiServerIdentities, getRaw } from '../../shared/cluster/kube';
import { readSealingEvidence } from '../../shared/cluster/sealing';
import { describeKey } from '../../shared/kms/keys';
import { runCli } from '../helpers/cli';
import { ossReportStore } from '../helpers/report-store';
import { kubeConfig, sandboxInfo } from '../helpers/sandbox';

/** The audit against the sandbox: the real cluster, the emulated KMS, ActionTrail and OSS. */

function env(): Record<string, string> {
  const { cloud, stateNamespace } = sandboxInfo();
  return {
    SENTINEL_REGION: cloud.region,
    SENTINEL_ACCOUNT_ID: cloud.accountId,
    SENTINEL_CLUSTER_IDS: cloud.clusterId,
    SENTINEL_STATE_NAMESPACE: stateNamespace,
    SENTINEL_REPORT_BUCKET: cloud.reportBucket,
    SENTINEL_LOG_LEVEL: 'error',
    ...Object.fromEntries(
      ['KMS', 'CS', 'ACTIONTRAIL', 'FC', 'SLS', 'OSS'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.endpoint]),
    ),
  };
}

async function latestReport(): Promise<AuditReport> {
  const { cloud } = sandboxInfo();
  return (await ossReportStore({
    bucket: cloud.reportBucket,
    accountId: cloud.accountId,
    region: cloud.region,
    credentials: cloud.user,
    endpoints: { oss: { protocol: 'http', host: cloud.endpoint.slice(7), url: cloud.endpoint } },
  }).latest()) as AuditReport;
}

/**
 * The suites before this one rotate the key; the audit's coverage check reads the API server's own evidence
 * of that rotation. Until a status poll after the rotation has been recorded, that evidence reads "not
 * effective" (docs/kms-v2-proof.md): the audit is checked once it has settled (at most 2 minutes).
 */
async function untilSettled(): Promise<void> {
  const { cloud, restrictedKubeconfig } = sandboxInfo();
  const kc = kubeConfig(restrictedKubeconfig);
  const key = await describeKey(sandboxUserClients({ cloud }), cloud.kmsKeyId);
  let reason = '';
  for (let i = 0; i < 60; i++) {
    const e = await readSealingEvidence(
      { getRaw: (p) => getRaw(kc, p), apiServerIdentities: () => apiServerIdentities(kc) },
      key,
    );
    if (e.verdict !== 'not-effective') return;
    reason = e.reason;
    await sleep(2_000);
  }
  throw new Error(`the sealing evidence did not settle in 2 minutes: ${reason}`);
}

describe('the audit', () => {
  beforeAll(async () => {
    resolveLoopbackSubdomains();
    await untilSettled();
  }, 150_000);

  it('checks the cluster end to end and stores JSON and HTML reports in OSS', async () => {
    const { cloud } = sandboxInfo();
    const handler = createHandler({ env: env(), sink: () => undefined });
    const context = { requestId: 'audit-test', credentials: cloud.user };
    const result = (await handler(
      Buffer.from(JSON.stringify({ triggerTime: '2026-11-29T08:00:00Z', triggerName: 'daily' })),
      context,
    )) as {
      auditId: string;
      stored: { html: string };
    };
    expect(result.auditId).toBe('audit-20261129080000');
    const store = ossReportStore({
      bucket: cloud.reportBucket,
      accountId: cloud.accountId,
      region: cloud.region,
      credentials: cloud.user,
      endpoints: { oss: { protocol: 'http', host: cloud.endpoint.slice(7), url: cloud.endpoint } },
    });
    const report = (await store.latest()) as AuditReport;
    expect(report.auditId).toBe(result.auditId);
    const oss = new OSS({
      accessKeyId: cloud.user.accessKeyId,
      accessKeySecret: cloud.user.accessKeySecret,
      bucket: cloud.reportBucket,
      endpoint: cloud.endpoint,
      secure: false,
    });
    const html = (await oss.get(result.stored.html)).content.toString();
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain(cloud.clusterId);
    const [cluster] = report.clusters;
    const status = Object.fromEntries((cluster?.checks ?? []).map((c) => [c.id, c.status]));
    expect(status).toMatchObject({
      encryption: 'pass',
      'key-state': 'pass',
      'key-region': 'pass',
      'deletion-protection': 'warn',
      rotation: 'warn',
      'kms-refusals': 'pass',
      evidence: 'pass',
      'ram-deny': 'manual',
      network: 'manual',
      'state-writers': 'pass',
    });
    const coverage = cluster?.checks.find((c) => c.id === 'coverage');
    expect(['pass', 'warn'], `coverage: ${coverage?.evidence}`).toContain(status.coverage);
    expect(cluster?.timeline.some((t) => t.who.startsWith('aliyuncsmanagedsecurityrole:'))).toBe(true);
    expect(cluster?.checks.find((c) => c.id === 'deletion-protection')?.remedy).toContain(
      'SetDeletionProtection',
    );

    // Fix what the audit reported, and it passes.
    const clients = createCloudClients(
      {
        region: cloud.region,
        endpoints: { kms: { protocol: 'http', host: cloud.endpoint.slice(7), url: cloud.endpoint } },
      },
      cloud.user,
    );
    const key = (await clients.kmsRpc('DescribeKey', { KeyId: cloud.kmsKeyId })).KeyMetadata as {
      Arn: string;
    };
    await clients.kmsRpc('SetDeletionProtection', {
      ProtectedResourceArn: key.Arn,
      EnableDeletionProtection: 'true',
    });
    await handler(
      Buffer.from(JSON.stringify({ triggerTime: '2026-11-29T09:00:00Z', triggerName: 'daily' })),
      context,
    );
    const again = (await store.latest()) as AuditReport;
    expect(again.clusters[0]?.checks.find((c) => c.id === 'deletion-protection')?.status).toBe('pass');
  });

  it('the CLI writes audit.json and a self-contained audit.html', async () => {
    const { cloud, restrictedKubeconfig } = sandboxInfo();
    const dir = mkdtempSync(join(tmpdir(), 'audit-'));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify(env()));
    const run = (args: string[]) =>
      runCli(['audit', ...args], {
        ACK_KMS_SENTINEL_DEBUG: '1',
        ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
      });
    const full = await run([
      '--kubeconfig',
      restrictedKubeconfig,
      '--cluster-id',
      cloud.clusterId,
      '--out',
      join(dir, 'full'),
      '--json',
      '--config',
      config,
    ]);
    expect(full.code, full.stderr).toBe(0);
    const report = JSON.parse(full.stdout.trim().split('\n').at(-1) ?? '{}') as AuditReport;
    expect(report.clusters[0]?.clusterId).toBe(cloud.clusterId);
    const html = readFileSync(join(dir, 'full', 'audit.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<table>');
    expect(html).not.toMatch(/<script|<link|src="http/);
    expect(existsSync(join(dir, 'full', 'audit.json'))).toBe(true);

    const local = await run(['--kubeconfig', restrictedKubeconfig, '--out', join(dir, 'local')]);
    expect(local.code, local.stderr).toBe(0);
    expect(readFileSync(join(dir, 'local', 'audit.json'), 'utf8')).toContain(
      'Key versions the Secrets were rewritten for',
    );
    const usage = await run(['--kubeconfig', restrictedKubeconfig]);
    expect(usage.code).toBe(2);
  });

  it('names every other subject that can write the state ConfigMap (it could forge a job)', async () => {
    const { cloud, stateNamespace } = sandboxInfo();
    const rbac = kubeConfig(sandboxInfo().kubeconfig).makeApiClient(RbacAuthorizationV1Api);
    const binding = {
      metadata: { name: 'intruder-edit', namespace: stateNamespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'team-a' }],
    };
    // A label does not hide a binding: anyone who may bind can set it.
    const disguised = {
      metadata: {
        name: 'looks-like-a-default',
        namespace: stateNamespace,
        labels: {
          'kubernetes.io/bootstrapping': 'rbac-defaults',
          'app.kubernetes.io/name': 'ack-kms-sentinel',
        },
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
      subjects: [{ kind: 'User', name: 'mallory' }],
    };
    // The broadest grants: every authenticated caller, every service account, and a kube-system one bound by
    // a tenant (not by one of Kubernetes' own system: ClusterRoleBindings).
    const everyone = {
      metadata: { name: 'everyone-edit', namespace: stateNamespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [
        { kind: 'Group', name: 'system:authenticated', apiGroup: 'rbac.authorization.k8s.io' },
        { kind: 'Group', name: 'system:serviceaccounts', apiGroup: 'rbac.authorization.k8s.io' },
        { kind: 'ServiceAccount', name: 'helper', namespace: 'kube-system' },
      ],
    };
    await rbac.createNamespacedRoleBinding({ namespace: stateNamespace, body: binding });
    await rbac.createNamespacedRoleBinding({ namespace: stateNamespace, body: disguised });
    await rbac.createNamespacedRoleBinding({ namespace: stateNamespace, body: everyone });
    try {
      const handler = createHandler({ env: env(), sink: () => undefined });
      await handler(
        Buffer.from(JSON.stringify({ triggerTime: '2026-11-30T08:00:00Z', triggerName: 'daily' })),
        { requestId: 'audit-writers', credentials: cloud.user },
      );
      const check = (await latestReport()).clusters[0]?.checks.find((c) => c.id === 'state-writers');
      expect(check).toMatchObject({ status: 'fail' });
      expect(check?.evidence).toContain('5 subject(s) beyond the suite and cluster admins');
      for (const subject of [
        'Group system:authenticated (RoleBinding everyone-edit → ClusterRole edit)',
        'Group system:serviceaccounts (RoleBinding everyone-edit → ClusterRole edit)',
        'ServiceAccount kube-system/helper (RoleBinding everyone-edit → ClusterRole edit)',
      ])
        expect(check?.evidence).toContain(subject);
      expect(check?.evidence).toContain(
        `ServiceAccount team-a/deployer (RoleBinding intruder-edit → ClusterRole edit)`,
      );
      expect(check?.evidence).toContain(
        'User mallory (RoleBinding looks-like-a-default → ClusterRole admin)',
      );
      expect(check?.evidence).not.toMatch(/User ack-kms-sentinel|system:masters|system:controller/);
    } finally {
      await rbac.deleteNamespacedRoleBinding({ name: 'intruder-edit', namespace: stateNamespace });
      await rbac.deleteNamespacedRoleBinding({ name: 'looks-like-a-default', namespace: stateNamespace });
      await rbac.deleteNamespacedRoleBinding({ name: 'everyone-edit', namespace: stateNamespace });
    }
  });
});

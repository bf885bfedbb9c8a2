import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { auditCluster, type ClusterAudit } from '../shared/audit/checks';
import { type Remediation, remediate } from '../shared/audit/remediate';
import { buildReport, renderHtml, summaryText } from '../shared/audit/report';
import { discoverClusters } from '../shared/cluster/discovery';
import { apiServerIdentities, getRaw, loadKubeConfig } from '../shared/cluster/kube';
import { proofSettings } from '../shared/cluster/sealing';
import { httpSecretStore } from '../shared/cluster/secret-store';
import { parseFixes } from '../shared/config/fixes';
import { clusterStoreOf } from '../shared/jobs/store';
import { createLogger, redact } from '../shared/log';
import { keyVersionCensus, type SecretStore } from '../shared/reencrypt/secrets-api';
import { cloudFor } from './cloud';
import { EXIT } from './exit-codes';
import { printJson, say, UsageError } from './output';

/**
 * `ack-kms-sentinel audit --kubeconfig … [--cluster-id …] [--out <dir>] [--json]`. With a cluster id (and cloud
 * credentials, configuration from the environment or --config) every check runs; with a kubeconfig alone the
 * cloud checks become manual items and the report shows which key versions the Secrets were rewritten for.
 * The report goes to files (--out), to stdout (--json), or both. Exit 0 when nothing fails, 1 when a check
 * fails, 2 on usage errors.
 */
export interface AuditFlags {
  kubeconfig?: string;
  context?: string;
  clusterId?: string;
  out?: string;
  json?: boolean;
  config?: string;
  /** Opt-in fixes (`deletion-protection,rotation-policy`); needs --cluster-id. */
  fix?: string;
  rotationIntervalDays?: string;
}

async function kubeconfigOnly(secrets: SecretStore, name: string): Promise<ClusterAudit> {
  const census = await keyVersionCensus(secrets);
  const { total } = census;
  const versions = Object.fromEntries(
    [...census.byVersion].map(([v, n]) => [v ?? '(never rewritten by the suite)', n]),
  );
  return {
    clusterId: name,
    name,
    status: 'pass',
    timeline: [],
    checks: [
      {
        id: 'cloud',
        title: 'Encryption, key state, rotation and ActionTrail evidence',
        status: 'manual',
        evidence: 'no --cluster-id: the cloud side was not checked',
        remedy:
          'Run again with --cluster-id and Alibaba Cloud credentials (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET) and SENTINEL_REGION.',
      },
      {
        id: 'coverage',
        title: 'Key versions the Secrets were rewritten for',
        status: 'manual',
        evidence: `${total} Secrets: ${Object.entries(versions)
          .map(([v, n]) => `${n} × ${v}`)
          .join('; ')}`,
      },
    ],
  };
}

/** The report: its summary on stderr, the files in --out, the JSON on stdout with --json. */
function publish(report: ReturnType<typeof buildReport>, flags: AuditFlags): void {
  say(process.stderr, summaryText(report));
  if (flags.out) {
    mkdirSync(flags.out, { recursive: true });
    writeFileSync(join(flags.out, 'audit.json'), `${JSON.stringify(redact(report), null, 2)}\n`);
    writeFileSync(join(flags.out, 'audit.html'), renderHtml(report));
    say(process.stderr, `wrote ${join(flags.out, 'audit.html')} and audit.json`);
  }
  if (flags.json) printJson(process.stdout, report);
}

export async function auditCommand(flags: AuditFlags): Promise<number> {
  if (!flags.out && !flags.json)
    throw new UsageError(
      'where should the report go? --out <dir> (audit.json, audit.html), --json (stdout), or both',
    );
  const kc = loadKubeConfig({
    ...(flags.kubeconfig ? { path: flags.kubeconfig } : {}),
    ...(flags.context ? { context: flags.context } : {}),
  });
  const secrets = httpSecretStore(kc);
  const fixes = flags.fix === undefined ? [] : parseFixes(flags.fix);
  if (typeof fixes === 'string') throw new UsageError(`--fix: ${fixes}`);
  if (fixes.length && !flags.clusterId)
    throw new UsageError('--fix needs --cluster-id (it changes the KMS key)');
  const intervalDays =
    flags.rotationIntervalDays === undefined ? undefined : Number(flags.rotationIntervalDays);
  if (
    intervalDays !== undefined &&
    (!Number.isInteger(intervalDays) || intervalDays < 7 || intervalDays > 2555)
  )
    throw new UsageError('--rotation-interval-days must be a whole number from 7 to 2555');
  let remediations: Remediation[] | undefined;
  let audits: ClusterAudit[];
  try {
    if (flags.clusterId) {
      const { config, clients } = await cloudFor({
        clusterId: flags.clusterId,
        ...(flags.config ? { config: flags.config } : {}),
      });
      const [cluster] = await discoverClusters(clients, config);
      if (!cluster) throw new UsageError(`cluster ${flags.clusterId} not found`);
      audits = [
        await auditCluster(clients, cluster, secrets, {
          evidenceWindowMs: config.audit.evidenceWindowMs,
          rbac: kc.makeApiClient(RbacAuthorizationV1Api),
          stateNamespace: config.stateNamespace,
          proof: proofSettings(config.reencrypt),
          jobState: () =>
            clusterStoreOf(
              kc.makeApiClient(CoreV1Api),
              config,
              createLogger({ level: 'error', sink: () => {} }),
            ).read(),
          staleAfterMs: config.reencrypt.staleAfterMs,
          getRaw: (path) => getRaw(kc, path),
          apiServerIdentities: () => apiServerIdentities(kc),
        }),
      ];
      if (fixes.length) {
        remediations = await remediate(
          clients,
          audits,
          fixes,
          intervalDays ?? config.audit.rotationIntervalDays,
        );
      }
    } else {
      audits = [await kubeconfigOnly(secrets, kc.getCurrentContext() || 'kubeconfig')];
    }
  } finally {
    kc.close();
    secrets.close();
  }
  const report = buildReport(
    `audit-${new Date()
      .toISOString()
      .replace(/[^0-9]/g, '')
      .slice(0, 14)}`,
    audits,
  );
  if (remediations) report.remediations = remediations;
  for (const r of remediations ?? [])
    say(process.stderr, `remediation: ${r.fix} on ${r.keyId}: ${r.outcome} (${r.detail})`);
  publish(report, flags);
  return report.status === 'fail' ? EXIT.failed : EXIT.done;
}

import pLimit from 'p-limit';
import { type AuditOptions, auditCluster, type ClusterAudit, keyCache } from '../../shared/audit/checks';
import { remediate } from '../../shared/audit/remediate';
import { buildReport, summaryText } from '../../shared/audit/report';
import { ossReportWriter } from '../../shared/audit/report-writer';
import { discoverClusters, type TargetCluster } from '../../shared/cluster/discovery';
import { openCluster } from '../../shared/cluster/kube';
import { proofSettings } from '../../shared/cluster/sealing';
import { clusterKubeconfig } from '../../shared/cluster/user-kubeconfig';
import { normalizeError } from '../../shared/errors';
import { parseAuditEvent, timerAuditId } from '../../shared/events/audit';
import { clusterStoreOf } from '../../shared/jobs/store';
import { defineHandler, type HandlerDeps, type Invocation } from '../../shared/runtime/handler';
import { type Services, servicesFor, suiteBucket } from '../../shared/runtime/services';

/**
 * audit (timer, or started by the webhook): every target cluster's checks, a JSON and an HTML report stored
 * in OSS, and a summary through the notification channels.
 */
export interface AuditResult {
  auditId: string;
  status: string;
  counts: Record<string, number>;
  stored?: { json: string; html: string };
}

/** One cluster's checks, with the coverage check when its kubeconfig can be had. */
async function auditOne(
  cluster: TargetCluster,
  options: AuditOptions,
  services: Services,
  inv: Invocation,
): Promise<ClusterAudit> {
  let kube: ReturnType<typeof openCluster> | undefined;
  try {
    kube = openCluster(await clusterKubeconfig(services.clients, cluster.clusterId, 15));
  } catch (err) {
    inv.log.warn('no kubeconfig for the coverage check', {
      clusterId: cluster.clusterId,
      error: normalizeError(err).toJSON(),
    });
  }
  try {
    return await auditCluster(services.clients, cluster, kube?.secrets, {
      ...options,
      ...(kube
        ? {
            rbac: kube.rbac,
            stateNamespace: inv.config.stateNamespace,
            proof: proofSettings(inv.config.reencrypt),
            jobState: () => clusterStoreOf(kube.core, inv.config, inv.log).read(),
            staleAfterMs: inv.config.reencrypt.staleAfterMs,
            getRaw: kube.getRaw,
            apiServerIdentities: kube.apiServerIdentities,
          }
        : {}),
    });
  } finally {
    kube?.close();
  }
}

export async function audit(
  event: unknown,
  inv: Invocation,
  services: Services = servicesFor(inv),
): Promise<AuditResult> {
  const request = parseAuditEvent(event);
  if (request.kind === 'request-record')
    return { auditId: request.requestRecord, status: 'recorded', counts: {} };
  const auditId = request.kind === 'timer' ? timerAuditId(request.timer) : request.auditId;
  const only = request.kind === 'webhook' ? request.clusterIds : undefined;
  const options: AuditOptions = { evidenceWindowMs: inv.config.audit.evidenceWindowMs, cache: keyCache() };
  const clusters = (await discoverClusters(services.clients, inv.config)).filter(
    (c) => !only || only.includes(c.clusterId),
  );
  // A bounded number of clusters at once: an audit of a hundred clusters fits the function's timeout.
  const limit = pLimit(inv.config.fleet.concurrency);
  const audits = await Promise.all(
    clusters.map((cluster) => limit(() => auditOne(cluster, options, services, inv))),
  );
  const report = buildReport(auditId, audits);
  const { remediate: fixes, rotationIntervalDays } = inv.config.audit;
  if (fixes.length > 0) {
    report.remediations = await remediate(services.clients, audits, fixes, rotationIntervalDays);
    for (const r of report.remediations) inv.log.warn('audit remediation', { ...r });
  }
  let stored: AuditResult['stored'];
  const bucket = suiteBucket(inv);
  if (bucket) stored = await ossReportWriter(bucket).save(report);
  await services.notifier.notify({
    severity: report.status === 'fail' ? 'critical' : 'audit',
    title: `KMS Secret encryption audit: ${report.status}`,
    text: `${summaryText(report)}${stored ? ` Report: oss://${inv.config.audit.reportBucket}/${stored.html}` : ''}`,
    details: {
      auditId,
      counts: report.counts,
      ...(report.remediations ? { remediations: report.remediations } : {}),
    },
  });
  inv.log.info('audit done', { auditId, status: report.status, counts: report.counts });
  return { auditId, status: report.status, counts: report.counts, ...(stored ? { stored } : {}) };
}

export const createHandler = (deps: HandlerDeps = {}) =>
  defineHandler('audit', (event, inv) => audit(event, inv), deps);
export const handler = createHandler();

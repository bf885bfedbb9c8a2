import type { summarize } from '../shared/etcd/evidence';
import { isManagedSecurityRole } from '../shared/events';
import type { ClusterState } from '../shared/jobs/store';
import type { Sandbox } from './index';

/** What `npm run demo` reports: its `--json` object, and the table on stderr. */
type Evidence = ReturnType<typeof summarize>;

/** The job completed `version` with the API servers' proof: what the suite reports as done. */
export const provenComplete = (state: ClusterState, version: string): boolean =>
  state.completedKeyVersion === version && state.completedProof === 'proven';
export type DemoSummary = ReturnType<typeof summaryOf>;

export function summaryOf(
  { info, cloud }: Sandbox,
  o: {
    secrets: number;
    version: string;
    rotatedAt: Date;
    before: Evidence;
    after: Evidence;
    state: ClusterState;
    started: number;
    restarted: string[];
    written: Record<string, string>;
  },
) {
  const managedRoleEncrypts = cloud.state.events.filter(
    (e) =>
      e.eventName === 'Encrypt' &&
      isManagedSecurityRole(e.userIdentity) &&
      e.eventTime >= new Date(o.rotatedAt.getTime() - 1000),
  );
  const report = (o.state.job?.report ?? {}) as Record<string, unknown> & {
    evidence?: { verdict?: string; reason?: string; apiServers?: unknown[] };
  };
  return {
    cluster: info.cloud.clusterId,
    keyId: info.cloud.kmsKeyId,
    newKeyVersion: o.version,
    plugin: info.pluginMode,
    secrets: o.secrets,
    apiServers: info.apiServers.length,
    loadBalancer: info.loadBalancer?.mode,
    leaseAccess: info.leaseAccess,
    restartedApiServers: o.restarted.length,
    restarted: o.restarted,
    /** Done with proof: a version completed without it is "rewritten, not proven", which claims nothing. */
    claimedComplete: provenComplete(o.state, o.version),
    /** How the job completed its version (`proven`, `unproven`), when it did. */
    completedProof: o.state.completedKeyVersion === o.version ? o.state.completedProof : undefined,
    verdict: report.evidence?.verdict ?? 'unproven',
    /** How many API servers the verdict was judged on (the suite's own count, from what it sampled). */
    apiServersJudged: report.evidence?.apiServers?.length ?? 0,
    reason: report.evidence?.reason,
    jobPhase: o.state.job?.phase,
    rewritten: Number(report.rewritten ?? 0),
    alreadyCurrent: Number(report.alreadyCurrent ?? 0),
    failed: Number(report.failed ?? 0),
    etcdKeyVersionsBefore: o.before.byKeyId,
    etcdKeyVersionsAfter: o.after.byKeyId,
    sealedByVersionBefore: o.before.bySealingVersion,
    sealedByVersionAfter: o.after.bySealingVersion,
    /** The KMS key version a Secret written now through each API server alone is sealed under. */
    sealedByApiServerAfter: o.written,
    managedRoleEncryptEvents: managedRoleEncrypts.length,
    managedRole: managedRoleEncrypts[0]?.userIdentity.userName,
    reencryptInvocations: [...cloud.functions.tasks.values()].filter((t) =>
      t.functionName.endsWith('reencrypt'),
    ).length,
    durationMs: Date.now() - o.started,
  };
}

export function printTable(s: DemoSummary): void {
  const list = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, n]) => `${n} under ${k}`)
      .join('; ');
  const rows: Array<[string, string]> = [
    ['cluster', `${s.cluster} (ACK Edge Pro, local control plane; plugin: ${s.plugin})`],
    [
      'API servers',
      `${s.apiServers}${s.loadBalancer ? ` behind a ${s.loadBalancer} load balancer` : ''}${s.leaseAccess ? '' : ', leases not readable by the suite'}; restarted: ${s.restarted.join(', ') || 'none'}`,
    ],
    ['KMS key', `${s.keyId} → new version ${s.newKeyVersion}`],
    ['etcd before', `seeds sealed: ${list(s.sealedByVersionBefore)}`],
    ['etcd after', `seeds sealed: ${list(s.sealedByVersionAfter)}`],
    [
      'written now',
      Object.entries(s.sealedByApiServerAfter)
        .map(([name, version]) => `through ${name}: ${version}`)
        .join('; '),
    ],
    ['proof', `${s.verdict}, judged on ${s.apiServersJudged} API server(s) (their /metrics)`],
    [
      'job',
      `${s.claimedComplete ? 'complete' : s.completedProof === 'unproven' ? 'rewritten, not proven' : `not complete (${s.jobPhase})`}: ${s.rewritten} rewritten, ${s.alreadyCurrent} already current, ${s.failed} failed, ${s.reencryptInvocations} invocation(s)`,
    ],
    [
      'ActionTrail',
      `${s.managedRoleEncryptEvents} Encrypt call(s) by ${s.managedRole ?? 'the managed role'} since the rotation`,
    ],
    ['time', `${(s.durationMs / 1000).toFixed(1)} s`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stderr.write(`\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n\n`);
}

import { redact } from '../log';
import type { ClusterAudit, Status } from './checks';
import type { Remediation } from './remediate';

/** The audit report: JSON for machines, a self-contained HTML page for people. */
export interface AuditReport {
  auditId: string;
  generatedAt: string;
  status: Status;
  clusters: ClusterAudit[];
  counts: Record<Status, number>;
  /** Opt-in fixes made after the checks (the checks show what was found before them). */
  remediations?: Remediation[];
}

export function buildReport(auditId: string, clusters: ClusterAudit[], at = new Date()): AuditReport {
  const counts: Record<Status, number> = { pass: 0, warn: 0, fail: 0, manual: 0 };
  for (const c of clusters) for (const check of c.checks) counts[check.status]++;
  const status: Status = clusters.some((c) => c.status === 'fail')
    ? 'fail'
    : clusters.some((c) => c.status === 'warn')
      ? 'warn'
      : 'pass';
  return redact({ auditId, generatedAt: at.toISOString(), status, clusters, counts }) as AuditReport;
}

const esc = (value: unknown): string =>
  String(value ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const COLOURS: Record<Status, string> = {
  pass: '#1a7f37',
  warn: '#9a6700',
  fail: '#cf222e',
  manual: '#57606a',
};
const badge = (status: Status) =>
  `<span class="badge" style="background:${COLOURS[status]}">${status}</span>`;

const PROOF = {
  proven: { label: 'proven', colour: COLOURS.pass, says: "by the API servers' own evidence" },
  unproven: { label: 'unproven', colour: COLOURS.warn, says: "the API servers' /metrics could not be read" },
  'not-effective': {
    label: 'not effective',
    colour: COLOURS.fail,
    says: 'a rewrite now would not re-seal anything',
  },
} as const;

/** The coverage bar, and beside it what the API servers prove about it. */
function coverageHtml(c: NonNullable<ClusterAudit['coverage']>, share: number): string {
  const proof = PROOF[c.proof];
  const colour = c.proof === 'not-effective' ? COLOURS.fail : share === 100 ? COLOURS.pass : COLOURS.warn;
  return `<div class="coverage"><div class="bar"><div style="width:${share}%;background:${colour}"></div></div>
    ${c.current} of ${c.total} Secrets rewritten for key version <code>${esc(c.keyVersionId)}</code> (${share}%)
    <p><strong class="proof" style="color:${proof.colour}">${proof.label}</strong> ${proof.says}: ${esc(c.proofReason)}</p></div>`;
}

export function renderHtml(report: AuditReport): string {
  const clusters = report.clusters
    .map((c) => {
      const rows = c.checks
        .map(
          (k) =>
            `<tr><td>${badge(k.status)}</td><td>${esc(k.title)}</td><td>${esc(k.evidence)}</td><td>${esc(k.remedy ?? '')}</td></tr>`,
        )
        .join('');
      const share = c.coverage ? Math.round(c.coverage.share * 1000) / 10 : undefined;
      const coverage = c.coverage ? coverageHtml(c.coverage, share ?? 0) : '';
      const timeline = c.timeline.length
        ? `<ol class="timeline">${c.timeline
            .map(
              (t) =>
                `<li><time>${esc(t.time)}</time> ${esc(t.eventName)} by <code>${esc(t.who)}</code>${t.error ? ` <strong style="color:${COLOURS.fail}">${esc(t.error)}</strong>` : ''}</li>`,
            )
            .join('')}</ol>`
        : '<p class="muted">No KMS calls by the ACK control plane in the evidence window.</p>';
      return `<section><h2>${badge(c.status)} ${esc(c.name)} <small>${esc(c.clusterId)}${c.keyId ? ` · key <code>${esc(c.keyId)}</code>` : ''}</small></h2>
        <table><thead><tr><th>status</th><th>check</th><th>evidence</th><th>remedy</th></tr></thead><tbody>${rows}</tbody></table>
        ${coverage}<h3>ActionTrail evidence</h3>${timeline}</section>`;
    })
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ack-kms-sentinel audit ${esc(report.generatedAt)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d0d7de;padding:.4rem;text-align:left;vertical-align:top}
.badge{color:#fff;border-radius:1em;padding:.1em .6em;font-size:.8em;text-transform:uppercase}
.bar{background:#eaeef2;border-radius:4px;height:10px;margin:.5rem 0}.bar div{height:10px;border-radius:4px}
.timeline{font-size:.9em}.muted{color:#57606a}small{color:#57606a;font-weight:normal}
</style></head><body>
<h1>${badge(report.status)} KMS Secret encryption audit</h1>
<p>${esc(report.generatedAt)} · ${report.clusters.length} cluster(s) · ${report.counts.pass} pass · ${report.counts.warn} warn · ${report.counts.fail} fail · ${report.counts.manual} manual</p>
${remediationsHtml(report.remediations)}
${clusters}
</body></html>
`;
}

function remediationsHtml(list: AuditReport['remediations']): string {
  if (!list?.length) return '';
  const rows = list
    .map(
      (r) =>
        `<tr><td>${badge(r.outcome === 'done' ? 'pass' : 'fail')}</td><td>${esc(r.fix)}</td><td><code>${esc(r.keyId)}</code></td><td>${esc(r.detail)}</td><td>${esc(r.clusters.join(', '))}</td></tr>`,
    )
    .join('');
  return `<h2>Remediation (opt-in)</h2><table><thead><tr><th>outcome</th><th>fix</th><th>key</th><th>what</th><th>clusters</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The summary line sent through the notification channels. */
export function summaryText(report: AuditReport): string {
  const failing = report.clusters.filter((c) => c.status === 'fail').map((c) => c.clusterId);
  const fixed = (report.remediations ?? []).map((r) => `${r.fix} on ${r.keyId}: ${r.outcome}`);
  return `${report.clusters.length} cluster(s): ${report.counts.pass} checks pass, ${report.counts.warn} warn, ${report.counts.fail} fail, ${report.counts.manual} to check by hand.${failing.length ? ` Failing: ${failing.join(', ')}.` : ''}${fixed.length ? ` Remediated: ${fixed.join('; ')}.` : ''}`;
}

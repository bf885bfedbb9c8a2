import { describe, expect, it } from 'vitest';
import type { ClusterAudit } from '../../shared/audit/checks';
import { buildReport, renderHtml, summaryText } from '../../shared/audit/report';

const cluster = (id: string, statuses: Array<'pass' | 'warn' | 'fail' | 'manual'>): ClusterAudit => ({
  clusterId: id,
  name: `<b>${id}</b>`,
  keyId: 'key-1',
  status: statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'pass',
  checks: statuses.map((status, i) => ({
    id: `c${i}`,
    title: `check ${i}`,
    status,
    evidence: `evidence with token: abcdefghijklmnop ${i}`,
    remedy: 'do <this>',
  })),
  coverage: {
    total: 10,
    current: 7,
    share: 0.7,
    keyVersionId: 'v2',
    proof: 'not-effective',
    proofReason: 'the plugin reports the CMK id as its key id',
  },
  timeline: [
    { time: '2026-11-29T08:00:00.000Z', eventName: 'Encrypt', who: 'aliyuncsmanagedsecurityrole:c1' },
  ],
});

describe('the audit report', () => {
  it('counts, takes the worst status, and redacts', () => {
    const report = buildReport('audit-1', [
      cluster('c1', ['pass', 'warn', 'manual']),
      cluster('c2', ['pass', 'fail']),
    ]);
    expect(report.status).toBe('fail');
    expect(report.counts).toEqual({ pass: 2, warn: 1, fail: 1, manual: 1 });
    expect(JSON.stringify(report)).not.toContain('abcdefghijklmnop');
    expect(summaryText(report)).toBe(
      '2 cluster(s): 2 checks pass, 1 warn, 1 fail, 1 to check by hand. Failing: c2.',
    );
  });

  it('renders a self-contained HTML page with status colours, escaped text and the coverage bar', () => {
    const html = renderHtml(buildReport('audit-2', [cluster('c1', ['pass', 'warn'])]));
    expect(html).toContain('&lt;b&gt;c1&lt;/b&gt;');
    expect(html).toContain('do &lt;this&gt;');
    expect(html).toContain('width:70%');
    expect(html).toMatch(/<strong class="proof"[^>]*>not effective<\/strong>/);
    expect(html).toContain('the plugin reports the CMK id as its key id');
    expect(html).toContain('aliyuncsmanagedsecurityrole:c1');
    expect(html).toContain('#9a6700');
    expect(html).not.toMatch(/<script|src=/);
  });
});

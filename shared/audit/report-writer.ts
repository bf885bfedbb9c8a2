import { checkBucketOwner, type OssBucket, ossClient } from '../cloud/oss';
import { normalizeError } from '../errors';
import { type AuditReport, renderHtml } from './report';

/**
 * Stores a report in the suite's bucket through the official OSS SDK: `audits/<auditId>/report.json` and
 * `report.html`, and the `audits/latest.json` pointer to the newest (report-reader.ts reads them).
 */
export function ossReportWriter(bucket: OssBucket) {
  const client = ossClient(bucket);
  const put = async (name: string, body: string, mime: string) => {
    try {
      await client.put(name, Buffer.from(body), { mime });
    } catch (err) {
      throw normalizeError(err, { service: 'oss', operation: 'PutObject' });
    }
  };
  return {
    async save(report: AuditReport): Promise<{ json: string; html: string }> {
      await checkBucketOwner(client, bucket);
      const base = `audits/${report.auditId}`;
      await put(`${base}/report.json`, JSON.stringify(report, null, 2), 'application/json');
      await put(`${base}/report.html`, renderHtml(report), 'text/html');
      await put(
        'audits/latest.json',
        JSON.stringify({ auditId: report.auditId, generatedAt: report.generatedAt }),
        'application/json',
      );
      return { json: `${base}/report.json`, html: `${base}/report.html` };
    },
  };
}

import { checkBucketOwner, type OssBucket, ossClient } from '../cloud/oss';
import { normalizeError } from '../errors';
import type { AuditReport } from './report';

/**
 * Reads the newest report from OSS (through `audits/latest.json`); undefined before the first audit. Reading
 * (here, the webhook) and writing (report-writer.ts, the audit function) live apart, so each function's RAM
 * policy holds only its own OSS action.
 */
export function ossReportReader(bucket: OssBucket) {
  const client = ossClient(bucket);
  return {
    async latest(): Promise<AuditReport | undefined> {
      await checkBucketOwner(client, bucket);
      try {
        const pointer = JSON.parse((await client.get('audits/latest.json')).content.toString()) as {
          auditId: string;
        };
        return JSON.parse(
          (await client.get(`audits/${pointer.auditId}/report.json`)).content.toString(),
        ) as AuditReport;
      } catch (err) {
        const e = err as { status?: number; code?: string };
        if (e.status === 404 || e.code === 'NoSuchKey') return undefined;
        throw normalizeError(err, { service: 'oss', operation: 'GetObject' });
      }
    },
  };
}

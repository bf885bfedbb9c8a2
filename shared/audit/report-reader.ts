import { normalizeError } from '../errors';
import type { AuditReport } from './report';
import { ossClient, type ReportStoreOptions } from './store';

/** Reads the newest report from OSS (through `audits/latest.json`); undefined before the first audit. */
export function ossReportReader(options: ReportStoreOptions) {
  const client = ossClient(options);
  return {
    async latest(): Promise<AuditReport | undefined> {
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

import type { AuditReport } from '../../shared/audit/report';
import { ossReportReader } from '../../shared/audit/report-reader';
import { ossReportWriter } from '../../shared/audit/report-writer';
import type { OssBucket } from '../../shared/cloud/oss';

export interface ReportStore {
  save(report: AuditReport): Promise<{ json: string; html: string }>;
  latest(): Promise<AuditReport | undefined>;
}

/** Both halves, for tests that write and read (the functions import only the half they use). */
export const ossReportStore = (bucket: OssBucket): ReportStore => ({
  ...ossReportWriter(bucket),
  ...ossReportReader(bucket),
});

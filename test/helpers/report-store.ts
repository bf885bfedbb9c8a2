import { ossReportReader } from '../../shared/audit/report-reader';
import { ossReportWriter } from '../../shared/audit/report-writer';
import type { ReportStore, ReportStoreOptions } from '../../shared/audit/store';

/** Both halves, for tools and tests that write and read (the functions import only the half they use). */
export const ossReportStore = (options: ReportStoreOptions): ReportStore => ({
  ...ossReportWriter(options),
  ...ossReportReader(options),
});

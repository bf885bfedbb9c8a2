import { ossReportReader } from './report-reader';
import { ossReportWriter } from './report-writer';
import type { ReportStore, ReportStoreOptions } from './store';

/** Both halves, for tools and tests that write and read (the functions import only the half they use). */
export const ossReportStore = (options: ReportStoreOptions): ReportStore => ({
  ...ossReportWriter(options),
  ...ossReportReader(options),
});

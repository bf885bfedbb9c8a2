import type OSS from 'ali-oss';
import type { CloudCredentials } from '../cloud/credentials';
import type { EndpointOverride } from '../config';
import type { AuditReport } from './report';

/**
 * Where Function Compute keeps audit reports: OSS, through its official SDK (ali-oss). Each audit writes
 * `audits/<auditId>/report.json` and `report.html`, and `audits/latest.json` points at the newest. Writing
 * (report-writer.ts, the audit function) and reading (report-reader.ts, the webhook) live apart, so each
 * function's RAM policy holds only its own OSS action.
 */
export interface ReportStoreOptions {
  bucket: string;
  region: string;
  credentials: CloudCredentials;
  endpoint?: EndpointOverride;
}

export interface ReportStore {
  save(report: AuditReport): Promise<{ json: string; html: string }>;
  latest(): Promise<AuditReport | undefined>;
}

/** The OSS client, loaded on first use (ali-oss and its encodings are large): a webhook call that reads no report pays nothing. */
export function ossClient(options: ReportStoreOptions): OSS {
  const Client = require('ali-oss') as typeof OSS;
  return new Client({
    accessKeyId: options.credentials.accessKeyId,
    accessKeySecret: options.credentials.accessKeySecret,
    ...(options.credentials.securityToken
      ? {
          stsToken: options.credentials.securityToken,
          // FC's credentials outlive the invocation; handing them back keeps ali-oss from warning on every client.
          refreshSTSToken: async () => ({
            accessKeyId: options.credentials.accessKeyId,
            accessKeySecret: options.credentials.accessKeySecret,
            stsToken: options.credentials.securityToken ?? '',
          }),
        }
      : {}),
    bucket: options.bucket,
    ...(options.endpoint
      ? { endpoint: options.endpoint.url, secure: options.endpoint.protocol === 'https' }
      : { region: `oss-${options.region}`, secure: true }),
    timeout: 30_000,
  });
}

import OSS from 'ali-oss';
import type { CloudCredentials } from '../cloud/credentials';
import type { EndpointOverride } from '../config';
import { normalizeError } from '../errors';
import { type AuditReport, renderHtml } from './report';

/**
 * Where Function Compute keeps audit reports: OSS, through its official SDK (ali-oss). Each audit writes
 * `audits/<auditId>/report.json` and `report.html`, and `audits/latest.json` points at the newest.
 */
export interface ReportStore {
  save(report: AuditReport): Promise<{ json: string; html: string }>;
  latest(): Promise<AuditReport | undefined>;
}

export function ossReportStore(options: {
  bucket: string;
  region: string;
  credentials: CloudCredentials;
  endpoint?: EndpointOverride;
}): ReportStore {
  const client = new OSS({
    accessKeyId: options.credentials.accessKeyId,
    accessKeySecret: options.credentials.accessKeySecret,
    ...(options.credentials.securityToken ? { stsToken: options.credentials.securityToken } : {}),
    bucket: options.bucket,
    ...(options.endpoint
      ? { endpoint: options.endpoint.url, secure: options.endpoint.protocol === 'https' }
      : { region: `oss-${options.region}`, secure: true }),
    timeout: 30_000,
  });
  const put = async (name: string, body: string, mime: string) => {
    try {
      await client.put(name, Buffer.from(body), { mime });
    } catch (err) {
      throw normalizeError(err, { service: 'oss', operation: 'PutObject' });
    }
  };
  return {
    async save(report) {
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
    async latest() {
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

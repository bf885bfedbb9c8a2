import type OSS from 'ali-oss';
import type { EndpointOverride, ServiceName } from '../config';
import type { CloudCredentials } from './credentials';
import { resolveEndpoint } from './endpoints';

/** The suite's OSS bucket (`SENTINEL_REPORT_BUCKET`): audit reports under `audits/`, the done record under `state/`. */
export interface OssBucket {
  bucket: string;
  region: string;
  endpoints: Partial<Record<ServiceName, EndpointOverride>>;
  credentials: CloudCredentials;
}

/**
 * The OSS client (ali-oss), required on first use and in a file of its own: ali-oss and its encodings are
 * large, so only the bundles that read or write the bucket hold it (deploy/build.sh ships it beside them), and
 * a webhook call that reads no report loads nothing.
 */
export function ossClient(target: OssBucket): OSS {
  const { credentials } = target;
  const Client = require('ali-oss') as typeof OSS;
  const endpoint = resolveEndpoint('oss', target.region, target.endpoints);
  return new Client({
    accessKeyId: credentials.accessKeyId,
    accessKeySecret: credentials.accessKeySecret,
    ...(credentials.securityToken
      ? {
          stsToken: credentials.securityToken,
          // FC's credentials outlive the invocation; handing them back keeps ali-oss from warning on every client.
          refreshSTSToken: async () => ({
            accessKeyId: credentials.accessKeyId,
            accessKeySecret: credentials.accessKeySecret,
            stsToken: credentials.securityToken ?? '',
          }),
        }
      : {}),
    bucket: target.bucket,
    endpoint: endpoint.url,
    secure: endpoint.protocol === 'https',
    timeout: 30_000,
  });
}

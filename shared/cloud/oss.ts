import type OSS from 'ali-oss';
import type { EndpointOverride, ServiceName } from '../config';
import { ConfigError, normalizeError } from '../errors';
import type { CloudCredentials } from './credentials';
import { resolveEndpoint } from './endpoints';

/** The suite's OSS bucket (`SENTINEL_REPORT_BUCKET`): audit reports under `audits/`, the done record under `state/`. */
export interface OssBucket {
  bucket: string;
  /** The account that must own the bucket (`SENTINEL_ACCOUNT_ID`, or FC's own). */
  accountId?: string;
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

/** Buckets whose owner was checked in this instance (bucket@account). */
const owned = new Set<string>();

/**
 * Bucket names are global: a bucket of the suite's name may belong to another account (squatted before the
 * deployment, or after the suite's was deleted). Its owner could read the reports and forge the done record,
 * and a bucket policy of its own could grant our roles access whatever our RAM policies say. So before the
 * first read or write an instance asks OSS who owns the bucket (GetBucketInfo) and refuses any other account.
 */
export async function checkBucketOwner(client: OSS, target: OssBucket): Promise<void> {
  const id = `${target.bucket}@${target.accountId ?? ''}`;
  if (owned.has(id)) return;
  if (!target.accountId)
    throw new ConfigError(
      `the owner of bucket ${target.bucket} cannot be checked: set SENTINEL_ACCOUNT_ID (the account that must own it)`,
      { code: 'AccountUnknown', service: 'oss' },
    );
  let owner: string | undefined;
  try {
    owner = (await client.getBucketInfo(target.bucket)).bucket?.Owner?.ID;
  } catch (err) {
    throw normalizeError(err, { service: 'oss', operation: 'GetBucketInfo' });
  }
  if (owner !== target.accountId)
    throw new ConfigError(
      `bucket ${target.bucket} is not owned by account ${target.accountId}${owner ? ` (its owner is ${owner})` : ''}: the suite neither reads nor writes it`,
      { code: 'BucketNotOwned', service: 'oss' },
    );
  owned.add(id);
}

/**
 * How the code's cloud calls map to RAM actions. Each function's RAM policy (deploy/ram/<function>.json) is
 * checked against the calls found in its bundle's sources (test/unit/deploy.test.ts): nothing the code calls is
 * missing, nothing else is granted. Only that test reads it, so it lives here, out of every bundle.
 */
export const RAM_ACTION_OF: Record<string, string> = {
  // kmsRpc('<Action>')
  'kms:DescribeKey': 'kms:DescribeKey',
  'kms:GetSecretValue': 'kms:GetSecretValue',
  // optional policies only (deploy/ram/optional/): remediation, enable and disable
  'kms:SetDeletionProtection': 'kms:SetDeletionProtection',
  'kms:UpdateRotationPolicy': 'kms:UpdateRotationPolicy',
  'cs:UpdateKMSEncryption': 'cs:UpdateKMSEncryption',
  // csRoa('<Action>')
  'cs:DescribeClustersV1': 'cs:DescribeClustersV1',
  'cs:DescribeClusterDetail': 'cs:DescribeClusterDetail',
  'cs:DescribeClusterUserKubeconfig': 'cs:DescribeClusterUserKubeconfig',
  // actionTrailRpc('<Action>')
  'actiontrail:LookupEvents': 'actiontrail:LookupEvents',
  // invoker.invokeAsync / fc.get('.../async-tasks/...')
  'fc:InvokeFunction': 'fc:InvokeFunction',
  // invoker.listTasks
  'fc:ListAsyncTasks': 'fc:ListAsyncTasks',
  // the SLS reader's PullLogs (RAM names it GetCursorOrData)
  'sls:PullLogs': 'log:GetCursorOrData',
  // ali-oss put / get: the audit reports and the done record (shared/cloud/oss.ts makes the client)
  'oss:PutObject': 'oss:PutObject',
  'oss:GetObject': 'oss:GetObject',
  // ali-oss getBucketInfo: the bucket's owner, checked before the first read or write
  'oss:GetBucketInfo': 'oss:GetBucketInfo',
};

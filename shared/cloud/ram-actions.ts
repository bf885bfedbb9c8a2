/**
 * How the code's cloud calls map to RAM actions. Each function's RAM policy (deploy/ram/<function>.json) is checked against
 * the calls found in the source (test/unit/deploy.test.ts): nothing the code calls is missing, nothing else
 * is granted.
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
  // the audit report store (ali-oss put / get)
  'oss:PutObject': 'oss:PutObject',
  'oss:GetObject': 'oss:GetObject',
};

import { $OpenApiUtil } from '@alicloud/openapi-core';
import Ram from '@alicloud/ram20150501';
import type Sls from '@alicloud/sls20201230';
import type OSS from 'ali-oss';
import { createCloudClients, type RpcCaller } from '../shared/cloud/clients';
import type { CloudCredentials } from '../shared/cloud/credentials';
import { resolveEndpoint, teaConfig } from '../shared/cloud/endpoints';
import { ossClient } from '../shared/cloud/oss';
import { slsClient } from '../shared/cloud/sls';
import type { EndpointOverride, SentinelConfig } from '../shared/config';

/**
 * The official SDKs deploy:prepare works through, each configured by endpoint (the sandbox's in tests): RAM
 * (`@alicloud/ram20150501`), OSS (ali-oss), SLS (`@alicloud/sls20201230`), KMS Secrets Manager and ActionTrail
 * through openapi-client's `callApi` (the suite's own callers: the typed KMS SDK lacks DescribeSecret's
 * KMS 3.0 fields and ActionTrail has no SDK on npm).
 */
export interface PrepareClients {
  ram: Ram;
  kms: RpcCaller;
  actionTrail: RpcCaller;
  sls: Sls;
  oss: (bucket: string) => OSS;
}

/** RAM answers at one global endpoint. */
const RAM_ENDPOINT: EndpointOverride = {
  protocol: 'https',
  host: 'ram.aliyuncs.com',
  url: 'https://ram.aliyuncs.com',
};

export function prepareClients(
  target: Pick<SentinelConfig, 'region' | 'accountId' | 'endpoints'> & { ram?: EndpointOverride },
  credentials: CloudCredentials,
): PrepareClients {
  const cloud = createCloudClients(target, credentials);
  return {
    ram: new Ram(new $OpenApiUtil.Config(teaConfig(target.region, credentials, target.ram ?? RAM_ENDPOINT))),
    kms: cloud.kmsRpc,
    actionTrail: cloud.actionTrailRpc,
    sls: slsClient(new URL(resolveEndpoint('sls', target.region, target.endpoints).url), credentials),
    oss: (bucket) => ossClient({ bucket, region: target.region, endpoints: target.endpoints, credentials }),
  };
}

import type { EndpointOverride, SentinelConfig, ServiceName } from '../config';
import type { CloudCredentials } from './credentials';

/**
 * Where each Alibaba Cloud service answers in a region, and what every SDK client is given: the one table of
 * default endpoints, which a configured override (`SENTINEL_ENDPOINT_<SERVICE>`, the local sandbox) replaces.
 * Every client of `shared/cloud/` (clients.ts, oss.ts, sls.ts) resolves its endpoint here.
 */
const DEFAULT_HOSTS: Record<ServiceName, (region: string) => string> = {
  // kms 1.2.0 never sets its product id, so without an endpoint it resolves undefined.<region>.aliyuncs.com.
  kms: (r) => `kms.${r}.aliyuncs.com`,
  cs: (r) => `cs.${r}.aliyuncs.com`,
  actiontrail: (r) => `actiontrail.${r}.aliyuncs.com`,
  fc: (r) => `${r}.fc.aliyuncs.com`,
  sls: (r) => `${r}.log.aliyuncs.com`,
  // ali-oss puts the bucket in front of it (`<bucket>.oss-<region>.aliyuncs.com`).
  oss: (r) => `oss-${r}.aliyuncs.com`,
  // RAM is global: one endpoint whatever the region.
  ram: () => 'ram.aliyuncs.com',
};

export function resolveEndpoint(
  service: ServiceName,
  region: string,
  overrides: Partial<Record<ServiceName, EndpointOverride>>,
  accountId?: string,
): EndpointOverride {
  const override = overrides[service];
  if (override) return override;
  const host =
    service === 'fc' && accountId
      ? `${accountId}.${DEFAULT_HOSTS.fc(region)}`
      : DEFAULT_HOSTS[service](region);
  return { protocol: 'https', host, url: `https://${host}` };
}

export interface Timeouts {
  connectTimeoutMs: number;
  readTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectTimeoutMs: 5_000, readTimeoutMs: 15_000 };

/** What every Tea SDK client is given: openapi-client, openapi-core and rpc-client name these alike. */
export function teaConfig(
  region: string | undefined,
  credentials: CloudCredentials,
  endpoint: Pick<EndpointOverride, 'host' | 'protocol'>,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
) {
  return {
    accessKeyId: credentials.accessKeyId,
    accessKeySecret: credentials.accessKeySecret,
    ...(credentials.securityToken ? { securityToken: credentials.securityToken } : {}),
    ...(region ? { regionId: region } : {}),
    endpoint: endpoint.host,
    protocol: endpoint.protocol,
    connectTimeout: timeouts.connectTimeoutMs,
    readTimeout: timeouts.readTimeoutMs,
  };
}
export type TeaConfig = ReturnType<typeof teaConfig>;

export interface ClientOptions {
  timeouts?: Timeouts;
  /** Overrides `config.accountId` (inside FC: `context.accountId`). */
  accountId?: string;
}

/** What one service's Tea SDK client is given: `config`'s region, the service's endpoint there, the timeouts. */
export function serviceConfig(
  service: ServiceName,
  config: Pick<SentinelConfig, 'region' | 'endpoints' | 'accountId'>,
  credentials: CloudCredentials,
  options: ClientOptions = {},
): TeaConfig {
  const { region, endpoints } = config;
  const endpoint = resolveEndpoint(service, region, endpoints, options.accountId ?? config.accountId);
  return teaConfig(region, credentials, endpoint, options.timeouts ?? DEFAULT_TIMEOUTS);
}

import type { Credential } from '../../sandbox/cloud/api';
import type { CloudEmulator } from '../../sandbox/cloud/emulator';
import { type CloudClients, createCloudClients } from '../../shared/cloud/clients';

/** The suite's cloud clients with every service pointed at the emulator, acting as `c`. */
export function emulatorClients(cloud: CloudEmulator, c: Credential): CloudClients {
  const endpoint = { protocol: 'http' as const, host: cloud.host, url: cloud.url };
  return createCloudClients(
    {
      region: cloud.state.region,
      accountId: cloud.state.accountId,
      endpoints: { kms: endpoint, cs: endpoint, actiontrail: endpoint, fc: endpoint, sls: endpoint },
    },
    {
      accessKeyId: c.accessKeyId,
      accessKeySecret: c.accessKeySecret,
      ...(c.securityToken ? { securityToken: c.securityToken } : {}),
    },
    { timeouts: { connectTimeoutMs: 2_000, readTimeoutMs: 10_000 } },
  );
}

import type { Credential } from '../../sandbox/cloud/api';
import { type ConsoleClients, consoleClients } from '../../sandbox/cloud/console-clients';
import type { CloudEmulator } from '../../sandbox/cloud/emulator';

/** The suite's cloud clients and the typed ones with every service pointed at the emulator, acting as `c`. */
export function emulatorClients(cloud: CloudEmulator, c: Credential): ConsoleClients {
  const endpoint = { protocol: 'http' as const, host: cloud.host, url: cloud.url };
  return consoleClients(
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
    // A loopback connect is instant, unless the machine is busy: the full suite on 2 cores has starved one
    // past 2 s (the test's first request, a ConnectTimeout). Tests of timeouts make clients of their own.
    { timeouts: { connectTimeoutMs: 10_000, readTimeoutMs: 10_000 } },
  );
}

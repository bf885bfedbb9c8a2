import type { Server } from 'node:http';
import { startServer } from '../../bin/serve-command';
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

/** The settings of a function run against the emulator alone: its region and account, its cloud endpoints. */
export const emulatorEnv = (cloud: CloudEmulator): Record<string, string> => ({
  SENTINEL_REGION: cloud.state.region,
  SENTINEL_ACCOUNT_ID: cloud.state.accountId,
  SENTINEL_LOG_LEVEL: 'error',
  ...Object.fromEntries(['KMS', 'CS', 'ACTIONTRAIL', 'FC'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.url])),
});

/** The webhook function behind `serve`'s HTTP server, in this process, calling the emulator as its user. */
export const serveWebhook = (
  cloud: CloudEmulator,
  env: Record<string, string>,
): Promise<{ server: Server; url: string }> =>
  startServer(env, {
    port: 0,
    host: '127.0.0.1',
    context: {
      credentials: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
      accountId: cloud.state.accountId,
    },
  });

import Cs from '@alicloud/cs20151215';
import Kms from '@alicloud/kms20160120';
import { $OpenApiUtil } from '@alicloud/openapi-core';
import { Config as RpcConfig } from '@alicloud/rpc-client';
import { type CloudClients, createCloudClients } from '../../shared/cloud/clients';
import type { CloudCredentials } from '../../shared/cloud/credentials';
import { type ClientOptions, serviceConfig } from '../../shared/cloud/endpoints';
import type { SentinelConfig } from '../../shared/config';

/** The suite's clients plus the typed KMS and CS SDK clients, as a person at the console calls them. */
export type ConsoleClients = CloudClients & { kms: Kms; cs: Cs };

/**
 * For the sandbox's own calls (the KMS plugin's Encrypt, a user rotating a key) and the tests. The functions
 * make generic calls only (shared/cloud/clients.ts): the typed clients are about 1 MB of code that no
 * production bundle holds (test/unit/deploy.test.ts checks), so they live here, beside the emulator.
 */
export function consoleClients(
  config: Pick<SentinelConfig, 'region' | 'endpoints' | 'accountId'>,
  credentials: CloudCredentials,
  options: ClientOptions = {},
): ConsoleClients {
  return Object.assign(createCloudClients(config, credentials, options), {
    kms: new Kms(new RpcConfig(serviceConfig('kms', config, credentials, options))),
    cs: new Cs(new $OpenApiUtil.Config(serviceConfig('cs', config, credentials, options))),
  });
}

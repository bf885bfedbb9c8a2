import { type CloudClients, createCloudClients } from '../shared/cloud/clients';
import { credentialsFromDefaultChain } from '../shared/cloud/credentials';
import { loadConfig, type SentinelConfig } from '../shared/config';

/** The flags every command that reaches Alibaba Cloud takes. */
export interface CloudFlags {
  clusterId: string;
  config?: string;
}

let built: { key: string; cloud: Promise<{ config: SentinelConfig; clients: CloudClients }> } | undefined;

/**
 * A command's configuration (the environment, a `--config` file, the one cluster it names) and its cloud
 * clients on the default credential chain: built once per process, whichever commands ask.
 */
export function cloudFor(flags: CloudFlags): Promise<{ config: SentinelConfig; clients: CloudClients }> {
  const key = `${flags.clusterId}\n${flags.config ?? ''}`;
  if (built?.key !== key) {
    const config = loadConfig(
      { ...process.env, SENTINEL_CLUSTER_IDS: flags.clusterId },
      flags.config ? { file: flags.config } : {},
    );
    built = {
      key,
      cloud: credentialsFromDefaultChain().then((credentials) => ({
        config,
        clients: createCloudClients(config, credentials),
      })),
    };
  }
  return built.cloud;
}

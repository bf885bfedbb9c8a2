import { type CloudClients, createCloudClients } from '../cloud/clients';
import { credentialsFromContext } from '../cloud/credentials';
import { type FunctionInvoker, fcInvoker } from '../cloud/invoker';
import type { OssBucket } from '../cloud/oss';
import { parseNotifyChannels } from '../config/channels';
import { Problem } from '../config/settings';
import { ConfigError } from '../errors';
import { kmsSecret } from '../kms/secrets';
import { registerSecret } from '../log';
import { type ChannelSource, createNotifier, type Notifier } from '../notify';
import type { Invocation } from './handler';

/**
 * What a function needs from the cloud, built from its configuration and FC context. Kubernetes access is
 * `openCluster` (shared/cluster/kube.ts), imported only by the functions that need it: @kubernetes/client-node
 * is most of a cold start, and webhook and trail-verify never touch a cluster.
 */
export interface Services {
  clients: CloudClients;
  invoker: FunctionInvoker;
  notifier: Notifier;
}

/** The configured channels, or those kept in a KMS secret (read when the first notification goes out). */
function channelSource(inv: Invocation, clients: () => CloudClients): ChannelSource {
  const name = inv.config.kmsSecrets.notify;
  if (!name) return inv.config.notify;
  return async () => {
    const parsed = parseNotifyChannels((await kmsSecret(clients(), name, inv.now())).current);
    if (parsed instanceof Problem) throw new ConfigError(`KMS secret ${name}: ${parsed.message}`);
    for (const channel of parsed) {
      registerSecret(channel.url);
      registerSecret(channel.secret);
    }
    return parsed;
  };
}

/**
 * The clients are made, and the credentials read, when first used: a request refused before it reaches the
 * cloud (a malformed event, a bad signature) needs none, which lets `invoke` and `serve` try it without any.
 */
export function servicesFor(inv: Invocation): Services {
  let clients: CloudClients | undefined;
  const cloud = () => {
    clients ??= createCloudClients(
      inv.config,
      credentialsFromContext(inv.context),
      inv.context.accountId ? { accountId: inv.context.accountId } : {},
    );
    return clients;
  };
  return {
    get clients() {
      return cloud();
    },
    invoker: fcInvoker(() => cloud().fc),
    notifier: createNotifier(channelSource(inv, cloud), { log: inv.log }),
  };
}

/** The suite's bucket (audit reports, the done record), when the configuration names one. */
export function suiteBucket(inv: Invocation): OssBucket | undefined {
  const bucket = inv.config.audit.reportBucket;
  if (!bucket) return undefined;
  const { region, endpoints } = inv.config;
  return { bucket, region, endpoints, credentials: credentialsFromContext(inv.context) };
}

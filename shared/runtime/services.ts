import { type CloudClients, createCloudClients } from '../cloud/clients';
import { credentialsFromContext } from '../cloud/credentials';
import { type FunctionInvoker, fc2Invoker } from '../cloud/invoker';
import { createNotifier, type Notifier } from '../notify';
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

export function servicesFor(inv: Invocation): Services {
  const credentials = credentialsFromContext(inv.context);
  const clients = createCloudClients(
    inv.config,
    credentials,
    inv.context.accountId ? { accountId: inv.context.accountId } : {},
  );
  return {
    clients,
    invoker: fc2Invoker(clients.fc),
    notifier: createNotifier(inv.config.notify, { log: inv.log }),
  };
}

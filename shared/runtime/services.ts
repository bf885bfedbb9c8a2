import { CoreV1Api } from '@kubernetes/client-node';
import { type CloudClients, createCloudClients } from '../cloud/clients';
import { credentialsFromContext } from '../cloud/credentials';
import { type FunctionInvoker, fc2Invoker } from '../cloud/invoker';
import { loadKubeConfig } from '../cluster/kube';
import { createNotifier, type Notifier } from '../notify';
import type { Invocation } from './handler';

/** What a function needs from the outside world, built from its configuration and FC context. */
export interface Services {
  clients: CloudClients;
  invoker: FunctionInvoker;
  notifier: Notifier;
  /** A Kubernetes client from a kubeconfig text (DescribeClusterUserKubeconfig); close it when done. */
  kube(kubeconfig: string): { core: CoreV1Api; close(): void };
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
    kube(kubeconfig) {
      const kc = loadKubeConfig({ text: kubeconfig });
      return { core: kc.makeApiClient(CoreV1Api), close: () => kc.close() };
    },
  };
}

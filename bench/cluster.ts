import { CoreV1Api } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { loadKubeConfig } from '../shared/cluster/kube';

export const coreApiFor = (kubeconfig: string): CoreV1Api =>
  loadKubeConfig({ path: kubeconfig }).makeApiClient(CoreV1Api);

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const run = pLimit(limit);
  await Promise.all(items.map((item) => run(() => fn(item))));
}

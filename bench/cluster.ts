import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../shared/cluster/kube';

export const coreApiFor = (kubeconfig: string): CoreV1Api =>
  loadKubeConfig({ path: kubeconfig }).makeApiClient(CoreV1Api);

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

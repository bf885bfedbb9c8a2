import type { CoreV1Api } from '@kubernetes/client-node';
import pLimit from 'p-limit';

/** The namespaces both demos seed, and the one way they seed them (values are recognisably fake). */
export const DEMO_NAMESPACES = ['payments', 'orders', 'auth', 'helm-releases'];

export const inDemo = (s: { namespace: string }) => DEMO_NAMESPACES.includes(s.namespace);

export async function seedDemoSecrets(
  core: CoreV1Api,
  count: number,
  say: (line: string) => void,
): Promise<void> {
  say(`seeding ${count} Secrets in ${DEMO_NAMESPACES.length} namespaces`);
  for (const name of DEMO_NAMESPACES) await core.createNamespace({ body: { metadata: { name } } });
  const limit = pLimit(16);
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(() =>
        core.createNamespacedSecret({
          namespace: DEMO_NAMESPACES[i % DEMO_NAMESPACES.length] ?? 'payments',
          body: {
            metadata: { name: `secret-${i}` },
            stringData: { password: `demo-${i}-not-a-real-secret` },
          },
        }),
      ),
    ),
  );
}

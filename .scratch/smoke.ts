import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startSandbox } from '../sandbox';
import { createCloudClients } from '../shared/cloud/clients';
import { clusterKubeconfig } from '../shared/cluster/user-kubeconfig';

(async () => {
  const t0 = Date.now();
  const sb = await startSandbox();
  console.log('started', Date.now() - t0);
  try {
    const ep = { protocol: 'http' as const, host: sb.cloud.host, url: sb.cloud.url };
    for (const role of ['ack-kms-sentinel-reencrypt', 'ack-kms-sentinel-trail-verify']) {
      const cred = sb.cloud.assumeRole(role, 'fc');
      const clients = createCloudClients({ region: 'cn-hangzhou', endpoints: { cs: ep } }, cred);
      const kc = new KubeConfig();
      kc.loadFromString(await clusterKubeconfig(clients, sb.info.cloud.clusterId));
      const core = kc.makeApiClient(CoreV1Api);
      try {
        const l = await core.listSecretForAllNamespaces({ limit: 1 });
        console.log(role, 'list ok', l.items.length);
      } catch (e) {
        console.log(role, 'error', (e as { code?: number }).code, String((e as Error).message).slice(0, 200));
      }
    }
  } finally {
    await sb.stop();
  }
})();

import { readFileSync } from 'node:fs';
import {
  ApiException,
  CoordinationV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCluster } from '../../shared/cluster/kube';
import { IDENTITY_ROLE, SECRETS_ROLE, STATE_ROLE } from '../../shared/cluster/rbac';
import { keyIdHash, parseApiServerMetrics } from '../../shared/cluster/sealing';
import { coreApi, kubeConfig, sandboxInfo } from '../helpers/sandbox';

const NS = 'rbac-check';

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

describe('the least-privileged kubeconfig', () => {
  const admin = () => coreApi(sandboxInfo().kubeconfig);
  const sentinel = () => coreApi(sandboxInfo().restrictedKubeconfig);

  beforeAll(async () => {
    await admin().createNamespace({ body: { metadata: { name: NS } } });
    await admin().createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'app' }, stringData: { k: 'v' } },
    });
    await admin().createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: 'other' }, data: { a: '1' } },
    });
  });

  it('is granted exactly the rules of the registry, and they are these', async () => {
    const rbac = kubeConfig(sandboxInfo().kubeconfig).makeApiClient(RbacAuthorizationV1Api);
    const rulesOf = async (name: string) => (await rbac.readClusterRole({ name })).rules;
    const granted = {
      cluster: await rulesOf(SECRETS_ROLE),
      state: await rulesOf(STATE_ROLE),
      identity: await rulesOf(IDENTITY_ROLE),
    };

    const rbacGroup = 'rbac.authorization.k8s.io';
    expect(granted).toEqual({
      cluster: [
        { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'patch'] },
        { apiGroups: [rbacGroup], resources: ['clusterroles', 'clusterrolebindings'], verbs: ['list'] },
        { nonResourceURLs: ['/metrics'], verbs: ['get'] },
      ],
      state: [
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] },
        { apiGroups: [rbacGroup], resources: ['roles', 'rolebindings'], verbs: ['list'] },
      ],
      identity: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list'] }],
    });
  });

  it('can do what the suite needs', async () => {
    const api = sentinel();
    const state = sandboxInfo().stateNamespace;
    expect(await status(api.listSecretForAllNamespaces({ limit: 10 }))).toBe(200);
    expect(await status(api.readNamespacedSecret({ namespace: NS, name: 'app' }))).toBe(200);
    expect(
      await status(
        api.patchNamespacedSecret(
          {
            namespace: NS,
            name: 'app',
            body: { metadata: { annotations: { 'encryption-key-rotation-time': 'now' } } },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      ),
    ).toBe(200);
    expect(
      await status(
        api.createNamespacedConfigMap({
          namespace: state,
          body: { metadata: { name: 'job-1' }, data: { p: '1' } },
        }),
      ),
    ).toBe(200);
    const cluster = openCluster(readFileSync(sandboxInfo().restrictedKubeconfig, 'utf8'));
    const metrics = await cluster.getRaw('/metrics');
    expect(metrics.status, 'get /metrics: the API servers’ sealing evidence').toBe(200);
    // The API servers' identity leases name exactly the API servers whose metrics answer.
    const identities = await cluster.apiServerIdentities();
    expect(identities).toHaveLength(1);
    expect(parseApiServerMetrics(metrics.body)?.apiServerIdHash).toBe(keyIdHash(identities?.[0] ?? ''));
    const cm = await api.readNamespacedConfigMap({ namespace: state, name: 'job-1' });
    cm.data = { p: '2' };
    expect(await status(api.replaceNamespacedConfigMap({ namespace: state, name: 'job-1', body: cm }))).toBe(
      200,
    );
  });

  it('is refused everything else', async () => {
    const api = sentinel();
    const state = sandboxInfo().stateNamespace;
    const forbidden = {
      'create a Secret': () =>
        api.createNamespacedSecret({
          namespace: NS,
          body: { metadata: { name: 'x' }, stringData: { a: 'b' } },
        }),
      'replace a Secret': () =>
        api.replaceNamespacedSecret({
          namespace: NS,
          name: 'app',
          body: { metadata: { name: 'app' }, stringData: { k: 'changed' } },
        }),
      'delete a Secret': () => api.deleteNamespacedSecret({ namespace: NS, name: 'app' }),
      'read a ConfigMap elsewhere': () => api.readNamespacedConfigMap({ namespace: NS, name: 'other' }),
      'list ConfigMaps in the state namespace': () => api.listNamespacedConfigMap({ namespace: state }),
      'delete a state ConfigMap': () => api.deleteNamespacedConfigMap({ namespace: state, name: 'job-1' }),
      'list namespaces': () => api.listNamespace(),
      'list pods': () => api.listPodForAllNamespaces(),
      'list leases outside kube-system': async () => {
        const kc = kubeConfig(sandboxInfo().restrictedKubeconfig);
        await kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: 'default' });
      },
      'get another non-resource URL than /metrics': async () => {
        const cluster = openCluster(readFileSync(sandboxInfo().restrictedKubeconfig, 'utf8'));
        const res = await cluster.getRaw('/metrics/slis');
        if (res.status !== 200) throw new ApiException(res.status, 'refused', res.body, {});
      },
    };
    for (const [what, call] of Object.entries(forbidden)) {
      expect(await status(call()), what).toBe(403);
    }
    const secret = await admin().readNamespacedSecret({ namespace: NS, name: 'app' });
    expect(Buffer.from(secret.data?.k ?? '', 'base64').toString()).toBe('v');
  });
});

import {
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import { normalizeError } from '../errors';
import { rbacManifest } from './rbac';

/**
 * The grant step's in-cluster half: server-side apply of the suite's manifests with a kubeconfig allowed to
 * write them (the deploying person's, never a function's): deploy/rbac.yaml rendered for the configured state
 * namespace, then whatever else the deployment ships (`extra`, e.g. deploy/apf.yaml's FlowSchema and
 * PriorityLevelConfiguration, for the lead to wire once that file exists). Applying again changes nothing.
 */
export async function applySuiteManifests(
  kc: KubeConfig,
  stateNamespace: string,
  extra: KubernetesObject[] = [],
  dryRun = false,
): Promise<string[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const applied: string[] = [];
  for (const object of [...(rbacManifest(stateNamespace) as KubernetesObject[]), ...extra]) {
    const what = `${object.kind} ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata?.name}`;
    try {
      await api.patch(
        object,
        undefined,
        dryRun ? 'All' : undefined,
        'ack-kms-sentinel',
        true,
        PatchStrategy.ServerSideApply,
      );
    } catch (err) {
      throw normalizeError(err, { service: 'kubernetes', operation: `apply ${what}` });
    }
    applied.push(what);
  }
  return applied;
}

import type {
  RbacAuthorizationV1Api,
  V1PolicyRule,
  V1RoleRef,
  RbacV1Subject as V1Subject,
} from '@kubernetes/client-node';
import { SENTINEL_USER } from './rbac';
import { STATE_CONFIGMAP } from './state';

/**
 * Who can write the suite's state ConfigMap besides the suite: such a subject can mark a key version complete
 * or hand a job a forged checkpoint. Read from the RBAC objects (list only): the bindings in the state
 * namespace and the cluster-wide ones, each resolved to its role's rules. Kubernetes' own bindings
 * (`kubernetes.io/bootstrapping: rbac-defaults`: cluster-admin for system:masters, the controllers) are
 * left out: they are the control plane, not a tenant.
 */
export interface StateWriter {
  subject: string;
  via: string;
}

const WRITE_VERBS = new Set(['*', 'create', 'update', 'patch', 'delete', 'deletecollection']);

const writesStateConfigMap = (r: V1PolicyRule): boolean =>
  (r.apiGroups ?? []).some((g) => g === '' || g === '*') &&
  (r.resources ?? []).some((x) => x === 'configmaps' || x === '*') &&
  r.verbs.some((v) => WRITE_VERBS.has(v)) &&
  (!r.resourceNames?.length || r.resourceNames.includes(STATE_CONFIGMAP));

const describeSubject = (s: V1Subject): string =>
  `${s.kind} ${s.namespace ? `${s.namespace}/` : ''}${s.name}`;

interface Binding {
  kind: 'RoleBinding' | 'ClusterRoleBinding';
  name: string;
  labels?: Record<string, string>;
  roleRef: V1RoleRef;
  subjects?: V1Subject[];
}

export async function stateWriters(
  rbac: RbacAuthorizationV1Api,
  namespace: string,
  suite = SENTINEL_USER,
): Promise<StateWriter[]> {
  const [roles, clusterRoles, bindings, clusterBindings] = await Promise.all([
    rbac.listNamespacedRole({ namespace }),
    rbac.listClusterRole(),
    rbac.listNamespacedRoleBinding({ namespace }),
    rbac.listClusterRoleBinding(),
  ]);
  // An aggregated ClusterRole (admin, edit) holds the rules of the roles its selectors match; read them too,
  // rather than wait for the controller that copies them in.
  const selected = (selectors: Array<{ matchLabels?: Record<string, string> }>) =>
    clusterRoles.items.filter((r) =>
      selectors.some((sel) =>
        Object.entries(sel.matchLabels ?? {}).every(([k, v]) => r.metadata?.labels?.[k] === v),
      ),
    );
  const rulesOf = (ref: V1RoleRef): V1PolicyRule[] => {
    if (ref.kind === 'Role') return roles.items.find((r) => r.metadata?.name === ref.name)?.rules ?? [];
    const role = clusterRoles.items.find((r) => r.metadata?.name === ref.name);
    const aggregated = selected(role?.aggregationRule?.clusterRoleSelectors ?? []);
    return [...(role?.rules ?? []), ...aggregated.flatMap((r) => r.rules ?? [])];
  };
  const all: Binding[] = [
    ...bindings.items.map((b) => ({ ...b, kind: 'RoleBinding' as const })),
    ...clusterBindings.items.map((b) => ({ ...b, kind: 'ClusterRoleBinding' as const })),
  ].map((b) => ({
    kind: b.kind,
    name: b.metadata?.name ?? '',
    ...(b.metadata?.labels ? { labels: b.metadata.labels } : {}),
    roleRef: b.roleRef,
    ...(b.subjects ? { subjects: b.subjects } : {}),
  }));
  const writers: StateWriter[] = [];
  for (const b of all) {
    if (b.labels?.['kubernetes.io/bootstrapping'] === 'rbac-defaults') continue;
    if (b.labels?.['app.kubernetes.io/name'] === 'ack-kms-sentinel') continue; // deploy/rbac.yaml's own
    if (!rulesOf(b.roleRef).some(writesStateConfigMap)) continue;
    for (const subject of b.subjects ?? []) {
      if (subject.kind === 'User' && subject.name === suite) continue;
      writers.push({
        subject: describeSubject(subject),
        via: `${b.kind} ${b.name} → ${b.roleRef.kind} ${b.roleRef.name}`,
      });
    }
  }
  return writers;
}

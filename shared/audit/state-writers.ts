import type {
  RbacAuthorizationV1Api,
  V1PolicyRule,
  V1RoleRef,
  RbacV1Subject as V1Subject,
} from '@kubernetes/client-node';
import { SENTINEL_USER, STATE_ROLE } from '../cluster/rbac';
import { STATE_CONFIGMAP } from '../jobs/store';

/**
 * Who can write the suite's state ConfigMap besides the suite: such a subject can mark a key version complete
 * or hand a job a forged checkpoint. Read from the RBAC objects (list only): the bindings in the state
 * namespace and the cluster-wide ones, each resolved to its role's rules. The control plane's own identities
 * (`system:` users and groups such as system:masters, service accounts of kube-system) are left out: they
 * are not tenants. Nothing is left out by label, which anyone who may bind can set.
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

const isControlPlane = (subject: V1Subject): boolean =>
  ((subject.kind === 'User' || subject.kind === 'Group') && subject.name.startsWith('system:')) ||
  (subject.kind === 'ServiceAccount' && subject.namespace === 'kube-system');

const describeSubject = (subject: V1Subject): string =>
  `${subject.kind} ${subject.namespace ? `${subject.namespace}/` : ''}${subject.name}`;

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
  // Aggregation nests (admin aggregates edit, which aggregates system:aggregate-to-edit): follow it down.
  const clusterRoleRules = (name: string, seen = new Set<string>()): V1PolicyRule[] => {
    if (seen.has(name)) return [];
    seen.add(name);
    const role = clusterRoles.items.find((r) => r.metadata?.name === name);
    const aggregated = selected(role?.aggregationRule?.clusterRoleSelectors ?? []);
    return [
      ...(role?.rules ?? []),
      ...aggregated.flatMap((r) => clusterRoleRules(r.metadata?.name ?? '', seen)),
    ];
  };
  const rulesOf = (ref: V1RoleRef): V1PolicyRule[] =>
    ref.kind === 'Role'
      ? (roles.items.find((r) => r.metadata?.name === ref.name)?.rules ?? [])
      : clusterRoleRules(ref.name);
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
    // The suite's own role (deploy/rbac.yaml), recognised by what it is, not by a label anyone who binds can
    // copy: whoever holds it was granted the suite's identity (ACK names the bindings GrantPermissions writes,
    // and DescribeUserPermission lists who holds it).
    if (b.kind === 'RoleBinding' && b.roleRef.kind === 'ClusterRole' && b.roleRef.name === STATE_ROLE)
      continue;
    if (!rulesOf(b.roleRef).some(writesStateConfigMap)) continue;
    for (const subject of b.subjects ?? []) {
      if (subject.kind === 'User' && subject.name === suite) continue;
      if (isControlPlane(subject)) continue;
      writers.push({
        subject: describeSubject(subject),
        via: `${b.kind} ${b.name} → ${b.roleRef.kind} ${b.roleRef.name}`,
      });
    }
  }
  return writers;
}

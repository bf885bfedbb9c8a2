import type {
  RbacAuthorizationV1Api,
  V1PolicyRule,
  V1RoleRef,
  RbacV1Subject as V1Subject,
} from '@kubernetes/client-node';
import { SENTINEL_USER, STATE_ROLE } from '../cluster/rbac';
import { STATE_CONFIGMAP } from '../jobs/store';

/**
 * Everyone who can write the suite's state ConfigMap: such a subject can mark a key version complete or hand a
 * job a forged checkpoint. Read from the RBAC objects (list only): the bindings in the state namespace and the
 * cluster-wide ones, each resolved to its role's rules. Every subject is counted, groups included
 * (`system:authenticated` is everyone with a credential), and classified by what vouches for it:
 * - `suite`: the suite's own identity (deploy/rbac.yaml), by whatever binding;
 * - `cluster-admin`: `system:masters`, or bound cluster-wide to ClusterRole `cluster-admin` (they can do
 *   anything anyway);
 * - `control-plane`: a `system:` user or a kube-system service account bound by one of Kubernetes' own
 *   `system:` ClusterRoleBindings (the controllers, e.g. root-ca-cert-publisher, which writes a ConfigMap in
 *   every namespace). Only a ClusterRoleBinding counts: creating one is already a cluster admin's power, where
 *   a namespace admin can create RoleBindings in the state namespace with any name or label.
 * Everyone else is `other`, and the audit fails on them. Nothing is trusted by label alone.
 */
export type WriterTrust = 'suite' | 'cluster-admin' | 'control-plane' | 'other';

export interface StateWriter {
  subject: string;
  via: string;
  trust: WriterTrust;
}

const WRITE_VERBS = new Set(['*', 'create', 'update', 'patch', 'delete', 'deletecollection']);

const writesStateConfigMap = (r: V1PolicyRule): boolean =>
  (r.apiGroups ?? []).some((g) => g === '' || g === '*') &&
  (r.resources ?? []).some((x) => x === 'configmaps' || x === '*') &&
  r.verbs.some((v) => WRITE_VERBS.has(v)) &&
  (!r.resourceNames?.length || r.resourceNames.includes(STATE_CONFIGMAP));

/** A control-plane identity: one user of the control plane's own, or one of its controllers' accounts. */
const isControlPlaneIdentity = (subject: V1Subject): boolean =>
  (subject.kind === 'User' && subject.name.startsWith('system:') && subject.name !== 'system:anonymous') ||
  (subject.kind === 'ServiceAccount' && subject.namespace === 'kube-system');

function trustOf(subject: V1Subject, b: Binding, suite: string): WriterTrust {
  if (subject.kind === 'Group' && subject.name === 'system:masters') return 'cluster-admin';
  if (
    b.kind === 'ClusterRoleBinding' &&
    b.roleRef.kind === 'ClusterRole' &&
    b.roleRef.name === 'cluster-admin'
  )
    return 'cluster-admin';
  if (subject.kind === 'User' && subject.name === suite) return 'suite';
  // The suite's own role (deploy/rbac.yaml), bound per namespace by ACK's GrantPermissions to the user id ACK
  // issues a function's RAM role: recognised by what it is, since ACK names those bindings itself. Only a User
  // (an identity ACK issued) counts as the suite; a group bound to the role is everyone in it.
  if (
    subject.kind === 'User' &&
    b.kind === 'RoleBinding' &&
    b.roleRef.kind === 'ClusterRole' &&
    b.roleRef.name === STATE_ROLE
  )
    return 'suite';
  if (b.kind === 'ClusterRoleBinding' && b.name.startsWith('system:') && isControlPlaneIdentity(subject))
    return 'control-plane';
  return 'other';
}

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
    if (!rulesOf(b.roleRef).some(writesStateConfigMap)) continue;
    for (const subject of b.subjects ?? [])
      writers.push({
        subject: describeSubject(subject),
        via: `${b.kind} ${b.name} → ${b.roleRef.kind} ${b.roleRef.name}`,
        trust: trustOf(subject, b, suite),
      });
  }
  return writers;
}

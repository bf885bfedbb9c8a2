/**
 * The Kubernetes permissions the suite needs in a target cluster, and nothing more: the one registry that
 * deploy/rbac.yaml is rendered from, the `grant` command binds, the sandbox applies and tests check against.
 * - Secrets, cluster-wide: `list` (paged sweep and audit coverage, metadata only), `get` (refetch on 409),
 *   `patch` (the annotation merge patch). Never `update`, `create` or `delete`: Secret data is never written.
 * - ConfigMaps, only in the suite's state namespace: `get`, `create`, `update` (job progress and checkpoint).
 * - RBAC, read-only: `list` on cluster roles and bindings, and on roles and bindings of the state namespace,
 *   so the audit can name every subject that could write the state ConfigMap (forge a job's progress).
 * - `get` on the non-resource URL `/metrics`: the API servers' own evidence of the seed they encrypt with
 *   (shared/cluster/sealing.ts). Without it the suite says "unproven", never "pass".
 * - `list` on leases in `kube-system` only: each API server's identity lease, so the evidence is read from
 *   every API server behind the cluster's address, not from those a few samples happened to reach.
 *
 * All three are ClusterRoles because ACK binds only ClusterRoles: CS GrantPermissions with `is_custom` names a
 * ClusterRole, cluster-wide (`role_type: cluster`, a ClusterRoleBinding) or in one namespace (`role_type:
 * namespace`, a RoleBinding to the ClusterRole, which grants its rules in that namespace alone). So the
 * manifest holds the roles and no binding: ACK writes the bindings for the identities it issues
 * (docs/cloud-facts.md#ack-rbac-grants).
 */
export type PolicyRule =
  | { apiGroups: string[]; resources: string[]; verbs: string[] }
  | { nonResourceURLs: string[]; verbs: string[] };

const RBAC_GROUP = 'rbac.authorization.k8s.io';
export const SECRET_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'patch'] },
  { apiGroups: [RBAC_GROUP], resources: ['clusterroles', 'clusterrolebindings'], verbs: ['list'] },
  { nonResourceURLs: ['/metrics'], verbs: ['get'] },
];
export const IDENTITY_NAMESPACE = 'kube-system';
export const IDENTITY_RULES: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list'] },
];
export const STATE_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] },
  { apiGroups: [RBAC_GROUP], resources: ['roles', 'rolebindings'], verbs: ['list'] },
];

export const SECRETS_ROLE = 'ack-kms-sentinel-secrets';
export const STATE_ROLE = 'ack-kms-sentinel-state';
export const IDENTITY_ROLE = 'ack-kms-sentinel-apiserver-identity';

/** One of the suite's ClusterRoles, and where it is bound: cluster-wide, or in one namespace only. */
export interface SuiteRole {
  name: string;
  rules: PolicyRule[];
  namespace?: string;
}

export function suiteRoles(stateNamespace: string): SuiteRole[] {
  return [
    { name: SECRETS_ROLE, rules: SECRET_RULES },
    { name: STATE_ROLE, rules: STATE_RULES, namespace: stateNamespace },
    { name: IDENTITY_ROLE, rules: IDENTITY_RULES, namespace: IDENTITY_NAMESPACE },
  ];
}

const RBAC_API = 'rbac.authorization.k8s.io/v1';
const LABELS = { 'app.kubernetes.io/name': 'ack-kms-sentinel' };

export function clusterRoleOf(role: SuiteRole): Record<string, unknown> {
  return {
    apiVersion: RBAC_API,
    kind: 'ClusterRole',
    metadata: { name: role.name, labels: LABELS },
    rules: role.rules,
  };
}

/**
 * What deploy/rbac.yaml holds: the state namespace (the suite may not create it) and the three ClusterRoles.
 */
export function rbacManifest(stateNamespace: string): Array<Record<string, unknown>> {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: stateNamespace } },
    ...suiteRoles(stateNamespace).map(clusterRoleOf),
  ];
}

export interface RbacSubject {
  kind: 'User' | 'Group';
  name: string;
}

/**
 * The binding of `subject` to `role` where the role applies: a ClusterRoleBinding, or a RoleBinding in the
 * role's namespace. ACK writes these itself for GrantPermissions; the sandbox writes them the same way.
 */
export function bindingOf(role: SuiteRole, subject: RbacSubject, name: string): Record<string, unknown> {
  const kind = role.namespace ? 'RoleBinding' : 'ClusterRoleBinding';
  return {
    apiVersion: RBAC_API,
    kind,
    metadata: { name, ...(role.namespace ? { namespace: role.namespace } : {}), labels: LABELS },
    roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: role.name },
    subjects: [{ ...subject, apiGroup: RBAC_GROUP }],
  };
}

/**
 * The sandbox's stand-in person with exactly the suite's rights (a static token, `restrictedKubeconfig`):
 * the CLI's tests act as it. Deployed functions never use it; ACK names their identities (`grant`).
 */
export const SENTINEL_USER = 'ack-kms-sentinel';

/**
 * The Kubernetes permissions the suite needs in a target cluster, and nothing more: the one registry that the
 * sandbox applies, the RBAC manifest is rendered from, and tests check against.
 * - Secrets, cluster-wide: `list` (paged sweep and audit coverage, metadata only), `get` (refetch on 409),
 *   `patch` (the annotation merge patch). Never `update`, `create` or `delete`: Secret data is never written.
 * - ConfigMaps, only in the suite's state namespace: `get`, `create`, `update` (job progress and checkpoint).
 * - RBAC, read-only: `list` on cluster roles and bindings, and on roles and bindings of the state namespace,
 *   so the audit can name every subject that could write the state ConfigMap (forge a job's progress).
 * - `get` on the non-resource URL `/metrics`: the API servers' own evidence of the seed they encrypt with
 *   (shared/cluster/sealing.ts). Without it the suite says "unproven", never "pass".
 * - `list` on leases in `kube-system` only: each API server's identity lease, so the evidence is read from
 *   every API server behind the cluster's address, not from those a few samples happened to reach.
 */
export const SENTINEL_USER = 'ack-kms-sentinel';

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

export interface RbacObjects {
  clusterRole: Record<string, unknown>;
  clusterRoleBinding: Record<string, unknown>;
  role: Record<string, unknown>;
  roleBinding: Record<string, unknown>;
  identityRole: Record<string, unknown>;
  identityRoleBinding: Record<string, unknown>;
}

const RBAC_API = 'rbac.authorization.k8s.io/v1';
const LABELS = { 'app.kubernetes.io/name': 'ack-kms-sentinel' };

/** A role (a ClusterRole without a namespace) and the binding of the suite's subject to it. */
function roleAndBinding(
  name: string,
  namespace: string | undefined,
  rules: PolicyRule[],
  subjects: unknown[],
) {
  const kind = namespace ? 'Role' : 'ClusterRole';
  const metadata = { name, ...(namespace ? { namespace } : {}), labels: LABELS };
  return [
    { apiVersion: RBAC_API, kind, metadata, rules },
    {
      apiVersion: RBAC_API,
      kind: `${kind}Binding`,
      metadata,
      roleRef: { apiGroup: RBAC_GROUP, kind, name },
      subjects,
    },
  ] as const;
}

export function rbacObjects(
  stateNamespace: string,
  subject = { kind: 'User', name: SENTINEL_USER },
): RbacObjects {
  const subjects = [{ ...subject, apiGroup: RBAC_GROUP }];
  const [clusterRole, clusterRoleBinding] = roleAndBinding(
    'ack-kms-sentinel-secrets',
    undefined,
    SECRET_RULES,
    subjects,
  );
  const [role, roleBinding] = roleAndBinding('ack-kms-sentinel-state', stateNamespace, STATE_RULES, subjects);
  const [identityRole, identityRoleBinding] = roleAndBinding(
    'ack-kms-sentinel-apiserver-identity',
    IDENTITY_NAMESPACE,
    IDENTITY_RULES,
    subjects,
  );
  return { clusterRole, clusterRoleBinding, role, roleBinding, identityRole, identityRoleBinding };
}

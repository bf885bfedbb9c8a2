import { PoisonError } from '../errors';
import { suiteRoles } from './rbac';

/**
 * ACK's own authorization of a RAM identity in a cluster (docs/cloud-facts.md#ack-rbac-grants): CS
 * `GrantPermissions` (`POST /permissions/users/{uid}`) replaces every grant the identity holds with the list
 * it is sent, and `DescribeUserPermission` (`GET` on the same path) reads them back. So the suite's grants are
 * added to what the identity holds (read, merge, write, read back), never written alone. ACK then writes the
 * ClusterRoleBinding or RoleBinding for `User <uid>`, the identity in the client certificate of every
 * kubeconfig `DescribeClusterUserKubeconfig` issues to that RAM user or role.
 */

/** One GrantPermissions entry, in the wire's words. */
export interface ClusterGrant {
  cluster: string;
  namespace: string;
  role_name: string;
  role_type: 'cluster' | 'namespace' | 'all-clusters';
  is_custom: boolean;
  is_ram_role: boolean;
}

/** One DescribeUserPermission record, in the wire's words. */
export interface PermissionRecord {
  resource_id?: string;
  resource_type?: string;
  role_name?: string;
  role_type?: string;
  is_owner?: number;
  is_ram_role?: number;
}

/** The functions that reach clusters: those whose RAM policy allows cs:DescribeClusterUserKubeconfig. */
export const KUBERNETES_FUNCTIONS = ['rotation-watch', 'reencrypt', 'audit'] as const;

/** s.yaml names each function's RAM role `<prefix><function>`; `ack-kms-sentinel-` unless deployed otherwise. */
export const DEFAULT_ROLE_PREFIX = 'ack-kms-sentinel-';

export const kubernetesRoles = (prefix = DEFAULT_ROLE_PREFIX): string[] =>
  KUBERNETES_FUNCTIONS.map((fn) => `${prefix}${fn}`);

/** The three roles under the default names. */
export const KUBERNETES_ROLES = kubernetesRoles();

/** The suite's grants in one cluster for a RAM role: its three ClusterRoles, each where it applies. */
export function suiteGrants(clusterId: string, stateNamespace: string): ClusterGrant[] {
  return suiteRoles(stateNamespace).map((role) => ({
    cluster: clusterId,
    namespace: role.namespace ?? '',
    role_name: role.name,
    role_type: role.namespace ? 'namespace' : 'cluster',
    is_custom: true,
    is_ram_role: true,
  }));
}

const PRESET_ROLES = new Set(['admin', 'admin-view', 'ops', 'dev', 'restricted']);

/**
 * A record read back as the entry that grants it again. Anything this cannot read is refused rather than
 * dropped: GrantPermissions would remove what it is not sent.
 */
export function grantOf(record: PermissionRecord): ClusterGrant {
  const id = record.resource_id ?? '';
  const custom = record.role_type === 'custom';
  const roleName = custom ? (record.role_name ?? '') : (record.role_type ?? '');
  if (!roleName || (!custom && !PRESET_ROLES.has(roleName)))
    throw new PoisonError(
      `DescribeUserPermission returned a grant of an unknown role (${JSON.stringify(record)}); nothing was changed, so it is not lost`,
      { code: 'UnknownPermission' },
    );
  const base = { role_name: roleName, is_custom: custom, is_ram_role: record.is_ram_role === 1 };
  switch (record.resource_type) {
    case 'cluster':
      return { ...base, cluster: id, namespace: '', role_type: 'cluster' };
    case 'namespace': {
      const slash = id.indexOf('/');
      if (slash <= 0)
        throw new PoisonError(
          `DescribeUserPermission: a namespace grant without {cluster}/{namespace}: ${id}`,
          {
            code: 'UnknownPermission',
          },
        );
      return { ...base, cluster: id.slice(0, slash), namespace: id.slice(slash + 1), role_type: 'namespace' };
    }
    case 'console':
    case 'all-clusters':
      return { ...base, cluster: '', namespace: '', role_type: 'all-clusters' };
    default:
      throw new PoisonError(
        `DescribeUserPermission returned a resource_type this version does not know (${record.resource_type}); nothing was changed`,
        { code: 'UnknownPermission' },
      );
  }
}

const keyOf = (g: ClusterGrant) => [g.role_type, g.cluster, g.namespace, g.role_name].join('\u0000');

/** What the identity holds plus what is wanted, each once; `added` is what it did not hold yet. */
export function mergeGrants(
  held: ClusterGrant[],
  wanted: ClusterGrant[],
): { grants: ClusterGrant[]; added: ClusterGrant[] } {
  const have = new Set(held.map(keyOf));
  const added = wanted.filter(
    (g, i) => !have.has(keyOf(g)) && wanted.findIndex((w) => keyOf(w) === keyOf(g)) === i,
  );
  return { grants: [...held, ...added], added };
}

/** The two CS calls, on the uid of a RAM user or role. */
export interface PermissionsApi {
  describe(uid: string): Promise<PermissionRecord[]>;
  grant(uid: string, grants: ClusterGrant[]): Promise<void>;
}

export interface GrantRow {
  role: string;
  uid: string;
  cluster: string;
  /** e.g. `ClusterRole ack-kms-sentinel-secrets` or `ClusterRole ack-kms-sentinel-state in ack-kms-sentinel`. */
  binding: string;
  change: 'added' | 'would-add' | 'present';
}

export interface RoleGrantResult {
  role: string;
  uid: string;
  rows: GrantRow[];
  /** Grants the identity held that are not the suite's, sent back unchanged. */
  kept: number;
}

const describeBinding = (g: ClusterGrant) =>
  `ClusterRole ${g.role_name}${g.role_type === 'namespace' ? ` in ${g.namespace}` : ''}`;

/**
 * Binds one RAM role to the suite's roles in `clusterIds`, keeping whatever else it holds; a dry run reads
 * only. Idempotent: a role that holds every grant is not written. The write is read back, and a grant that
 * did not take (or one that was lost) is an error, not a row.
 */
export async function grantRole(
  api: PermissionsApi,
  role: { name: string; uid: string },
  clusterIds: string[],
  stateNamespace: string,
  dryRun: boolean,
): Promise<RoleGrantResult> {
  const held = (await api.describe(role.uid)).map(grantOf);
  const wanted = clusterIds.flatMap((id) => suiteGrants(id, stateNamespace));
  const { grants, added } = mergeGrants(held, wanted);
  if (added.length > 0 && !dryRun) {
    await api.grant(role.uid, grants);
    const after = new Set((await api.describe(role.uid)).map(grantOf).map(keyOf));
    const missing = grants.filter((g) => !after.has(keyOf(g)));
    if (missing.length > 0)
      throw new PoisonError(
        `GrantPermissions for ${role.name} (${role.uid}) did not take: DescribeUserPermission lacks ${missing.map(describeBinding).join(', ')}`,
        { code: 'GrantNotApplied' },
      );
  }
  const isAdded = new Set(added.map(keyOf));
  const wantedKeys = new Set(wanted.map(keyOf));
  return {
    role: role.name,
    uid: role.uid,
    kept: held.filter((g) => !wantedKeys.has(keyOf(g))).length,
    rows: wanted.map((g) => ({
      role: role.name,
      uid: role.uid,
      cluster: g.cluster,
      binding: describeBinding(g),
      change: isAdded.has(keyOf(g)) ? (dryRun ? 'would-add' : 'added') : 'present',
    })),
  };
}

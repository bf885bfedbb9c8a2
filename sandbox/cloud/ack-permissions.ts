import type { ClusterGrant, PermissionRecord } from '../../shared/cluster/permissions';
import type { GrantedBinding } from '../controlplane/identities';
import { ApiError, type CallContext } from './api';
import type { CloudEmulator } from './emulator';

/**
 * CS GrantPermissions and DescribeUserPermission as documented (docs/cloud-facts.md#ack-rbac-grants):
 * `POST /permissions/users/{uid}` with a JSON array replaces every grant of that RAM user or role, and ACK
 * rewrites that uid's bindings in each cluster concerned; `GET` on the same path reads them back. Only a
 * person (a RAM user: the sandbox's operator, the clusters' creator) may call them; a RAM role is refused,
 * as ACK refuses a caller without RBAC admin rights on the clusters.
 */
const ROLE_TYPES = new Set(['cluster', 'namespace', 'all-clusters']);
const PRESETS = new Set(['admin', 'admin-view', 'ops', 'dev', 'restricted']);

/** A uid the account knows: a RAM role's id, or a RAM user's. */
function principalOf(ctx: CallContext, uid: string): { isRamRole: boolean } {
  const { emulator } = ctx;
  if ((emulator.state.ramRoles ?? []).some((r) => r.roleId === uid)) return { isRamRole: true };
  const user = [...emulator.credentials.values()].some(
    (c) => c.identity.type === 'ram-user' && c.identity.principalId === uid,
  );
  if (user) return { isRamRole: false };
  throw new ApiError(400, 'ErrorUserNotFound', `no RAM user or RAM role with id ${uid} in this account`);
}

function refuseRoles(ctx: CallContext): void {
  if (ctx.credential.identity.type !== 'ram-user')
    throw new ApiError(
      403,
      'ForbiddenGrantPermissions',
      'the caller may not read or change the RBAC permissions of other RAM users or roles',
    );
}

function entryOf(ctx: CallContext, raw: unknown, i: number, isRamRole: boolean): ClusterGrant {
  const at = `body[${i}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new ApiError(400, 'InvalidParameter', `${at} must be an object`);
  const e = raw as Record<string, unknown>;
  const text = (k: string) => (typeof e[k] === 'string' ? (e[k] as string) : '');
  const roleType = text('role_type');
  const roleName = text('role_name');
  const cluster = text('cluster');
  const namespace = text('namespace');
  const isCustom = e.is_custom === true;
  if (!ROLE_TYPES.has(roleType))
    throw new ApiError(400, 'InvalidParameter', `${at}.role_type must be cluster, namespace or all-clusters`);
  if (!roleName) throw new ApiError(400, 'InvalidParameter', `${at}.role_name is required`);
  if (!isCustom && !PRESETS.has(roleName))
    throw new ApiError(
      400,
      'InvalidParameter',
      `${at}.role_name ${roleName} is not a preset role; set is_custom`,
    );
  if (!isCustom && roleType === 'namespace' && ['admin', 'admin-view', 'ops'].includes(roleName))
    throw new ApiError(400, 'InvalidParameter', `${at}: ${roleName} cannot be granted in a namespace`);
  if (roleType === 'namespace' && !namespace)
    throw new ApiError(400, 'InvalidParameter', `${at}.namespace is required for role_type namespace`);
  if (roleType !== 'all-clusters' && !ctx.emulator.state.clusters.some((c) => c.clusterId === cluster))
    throw new ApiError(400, 'ErrorClusterNotFound', `${at}.cluster ${cluster || '(empty)'} not found`);
  if (e.is_ram_role !== undefined && e.is_ram_role !== isRamRole)
    throw new ApiError(400, 'InvalidParameter', `${at}.is_ram_role does not match the uid's kind`);
  return {
    cluster: roleType === 'all-clusters' ? '' : cluster,
    namespace: roleType === 'namespace' ? namespace : '',
    role_name: roleName,
    role_type: roleType as ClusterGrant['role_type'],
    is_custom: isCustom,
    is_ram_role: isRamRole,
  };
}

/** The ClusterRole a grant binds: the custom one it names, or the preset's (`admin` is cluster-admin). */
const clusterRoleOf = (g: ClusterGrant) =>
  g.is_custom ? g.role_name : g.role_name === 'admin' ? 'cluster-admin' : `cs:${g.role_name}`;

function bindingsIn(clusterId: string, grants: ClusterGrant[]): GrantedBinding[] {
  return grants
    .filter((g) => g.role_type === 'all-clusters' || g.cluster === clusterId)
    .map((g) => ({ clusterRole: clusterRoleOf(g), ...(g.namespace ? { namespace: g.namespace } : {}) }));
}

/** ACK's side of a grant: every cluster the uid held or now holds a grant in gets its bindings rewritten. */
export async function applyGrants(
  emulator: CloudEmulator,
  uid: string,
  before: ClusterGrant[],
): Promise<void> {
  const after = emulator.state.permissions?.[uid] ?? [];
  const everywhere = [...before, ...after].some((g) => g.role_type === 'all-clusters');
  const touched = everywhere
    ? emulator.state.clusters.map((c) => c.clusterId)
    : [...new Set([...before, ...after].map((g) => g.cluster))];
  for (const clusterId of touched) {
    await emulator.clusterAccess.get(clusterId)?.applyGrants(uid, bindingsIn(clusterId, after));
  }
}

export async function grantPermissions(ctx: CallContext, uid: string): Promise<undefined> {
  refuseRoles(ctx);
  const { isRamRole } = principalOf(ctx, uid);
  let body: unknown;
  try {
    body = JSON.parse(ctx.req.body.toString('utf8') || 'null');
  } catch {
    throw new ApiError(400, 'InvalidParameter', 'the request body is not JSON');
  }
  if (!Array.isArray(body))
    throw new ApiError(400, 'InvalidParameter', 'the request body must be a JSON array');
  const grants = body.map((raw, i) => entryOf(ctx, raw, i, isRamRole));
  const state = ctx.emulator.state;
  state.permissions ??= {};
  const before = state.permissions[uid] ?? [];
  state.permissions[uid] = grants;
  await applyGrants(ctx.emulator, uid, before);
  return undefined;
}

export function describeUserPermission(ctx: CallContext, uid: string): PermissionRecord[] {
  refuseRoles(ctx);
  principalOf(ctx, uid);
  return (ctx.emulator.state.permissions?.[uid] ?? []).map((g) => ({
    resource_id:
      g.role_type === 'all-clusters'
        ? 'all-clusters'
        : g.role_type === 'namespace'
          ? `${g.cluster}/${g.namespace}`
          : g.cluster,
    resource_type: g.role_type === 'all-clusters' ? 'console' : g.role_type,
    role_name: g.is_custom ? g.role_name : '',
    role_type: g.is_custom ? 'custom' : g.role_name,
    is_owner: 0,
    is_ram_role: g.is_ram_role ? 1 : 0,
  }));
}

/** What an operator's GrantPermissions call does, for the sandbox's own set-up (no request, no trail). */
export async function setGrants(emulator: CloudEmulator, uid: string, grants: ClusterGrant[]): Promise<void> {
  emulator.state.permissions ??= {};
  const before = emulator.state.permissions[uid] ?? [];
  emulator.state.permissions[uid] = grants;
  await applyGrants(emulator, uid, before);
}

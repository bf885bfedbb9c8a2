import { describeUserPermission, grantPermissions } from './ack-permissions';
import { ApiError, type CallContext } from './api';
import type { ClusterState } from './state';

/**
 * ACK / CS 2015-12-15 (ROA): cluster listing and detail (with `meta_data` carrying the Secret-encryption key,
 * as Terraform reads it), the user kubeconfig, UpdateKMSEncryption with its 409 within 5 minutes of the
 * last change (docs/cloud-facts.md#cs-secret-encryption), and the RBAC grants of RAM identities
 * (ack-permissions.ts). A RAM role's kubeconfig is issued to the role's id, as ACK does, where the sandbox
 * wired the cluster (`clusterAccess`); a RAM user (the sandbox's operator) gets the cluster's configured one.
 */
const KMS_CHANGE_COOLDOWN_MS = 5 * 60_000;

export interface CsRoute {
  action: string;
  write: boolean;
  clusterId?: string;
  uid?: string;
}

export function csRoute(method: string, path: string): CsRoute | undefined {
  if (method === 'GET' && path === '/api/v1/clusters') return { action: 'DescribeClustersV1', write: false };
  let m = /^\/clusters\/([^/]+)$/.exec(path);
  if (m && method === 'GET') return { action: 'DescribeClusterDetail', write: false, clusterId: m[1] };
  m = /^\/k8s\/([^/]+)\/user_config$/.exec(path);
  if (m && method === 'GET')
    return { action: 'DescribeClusterUserKubeconfig', write: false, clusterId: m[1] };
  m = /^\/clusters\/([^/]+)\/kms$/.exec(path);
  if (m && method === 'PUT') return { action: 'UpdateKMSEncryption', write: true, clusterId: m[1] };
  m = /^\/permissions\/users\/([^/]+)$/.exec(path);
  const uid = m ? decodeURIComponent(m[1] ?? '') : undefined;
  if (uid && method === 'GET') return { action: 'DescribeUserPermission', write: false, uid };
  if (uid && method === 'POST') return { action: 'GrantPermissions', write: true, uid };
  return undefined;
}

function find(ctx: CallContext, id: string | undefined): ClusterState {
  const cluster = ctx.emulator.state.clusters.find((c) => c.clusterId === id);
  if (!cluster) throw new ApiError(404, 'ErrorClusterNotFound', `cluster ${id} not found`);
  return cluster;
}

function summary(c: ClusterState) {
  return {
    cluster_id: c.clusterId,
    name: c.name,
    region_id: c.regionId,
    cluster_type: c.clusterType,
    profile: c.profile,
    cluster_spec: c.clusterSpec,
    state: c.state,
    current_version: c.currentVersion,
    created: c.created,
    updated: c.lastKmsChange ?? c.created,
    tags: c.tags,
    deletion_protection: false,
    meta_data: JSON.stringify({
      Capabilities: {
        ...(c.encryptionKeyId ? { EncryptionKMSKeyId: c.encryptionKeyId } : {}),
        DisableEncryption: c.disableEncryption,
      },
      KubernetesVersion: c.currentVersion,
    }),
  };
}

/** The caller's uid as ACK sees a RAM role: its role id (an assumed role's principal is `<roleId>:<session>`). */
function issuedKubeconfig(ctx: CallContext, cluster: ClusterState): string {
  const { identity } = ctx.credential;
  const access = ctx.emulator.clusterAccess.get(cluster.clusterId);
  const roleId = identity.type === 'assumed-role' ? identity.principalId?.split(':')[0] : undefined;
  return access && roleId ? access.kubeconfigFor(roleId) : cluster.kubeconfig;
}

export function csAction(ctx: CallContext, route: CsRoute): unknown {
  const q = ctx.params;
  switch (route.action) {
    case 'DescribeClustersV1': {
      const pageNumber = Number(q.page_number ?? '1');
      const pageSize = Number(q.page_size ?? '10');
      if (
        !Number.isInteger(pageNumber) ||
        pageNumber < 1 ||
        !Number.isInteger(pageSize) ||
        pageSize < 1 ||
        pageSize > 100
      ) {
        throw new ApiError(400, 'InvalidParameter', 'page_number or page_size is invalid');
      }
      const matches = ctx.emulator.state.clusters.filter(
        (c) =>
          (!q.cluster_type || c.clusterType === q.cluster_type) &&
          (!q.profile || c.profile === q.profile) &&
          (!q.cluster_spec || c.clusterSpec === q.cluster_spec) &&
          (!q.region_id || c.regionId === q.region_id) &&
          (!q.name || c.name.includes(q.name)) &&
          (!q.cluster_id || c.clusterId === q.cluster_id),
      );
      return {
        clusters: matches.slice((pageNumber - 1) * pageSize, pageNumber * pageSize).map(summary),
        page_info: { page_number: pageNumber, page_size: pageSize, total_count: matches.length },
      };
    }
    case 'DescribeClusterDetail':
      return { ...summary(find(ctx, route.clusterId)), vpc_id: 'vpc-sandbox', master_url: '{}' };
    case 'DescribeClusterUserKubeconfig': {
      const cluster = find(ctx, route.clusterId);
      const minutes = q.TemporaryDurationMinutes ? Number(q.TemporaryDurationMinutes) : 4320;
      if (!Number.isInteger(minutes) || minutes < 15 || minutes > 4320) {
        throw new ApiError(400, 'InvalidParameter', 'TemporaryDurationMinutes must be between 15 and 4320');
      }
      return {
        config: issuedKubeconfig(ctx, cluster),
        expiration: new Date(ctx.emulator.now() + minutes * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      };
    }
    case 'UpdateKMSEncryption': {
      const cluster = find(ctx, route.clusterId);
      let body: { disable_encryption?: unknown; kms_key_id?: unknown };
      try {
        body = JSON.parse(ctx.req.body.toString('utf8') || '{}') as typeof body;
      } catch {
        throw new ApiError(400, 'InvalidParameter', 'the request body is not JSON');
      }
      if (typeof body.disable_encryption !== 'boolean')
        throw new ApiError(400, 'InvalidParameter', 'disable_encryption is required');
      const now = ctx.emulator.now();
      if (cluster.lastKmsChange && now - Date.parse(cluster.lastKmsChange) < KMS_CHANGE_COOLDOWN_MS) {
        throw new ApiError(
          409,
          'ErrUpdateKMSEncryptionTooFrequently',
          'Secret encryption was changed less than 5 minutes ago; try again later',
        );
      }
      if (!body.disable_encryption) {
        if (typeof body.kms_key_id !== 'string' || !body.kms_key_id)
          throw new ApiError(400, 'InvalidParameter', 'kms_key_id is required');
        const key = ctx.emulator.state.keys.find((k) => k.keyId === body.kms_key_id);
        if (!key) throw new ApiError(400, 'KmsKeyNotFound', `KMS key ${body.kms_key_id} not found`);
        if (ctx.emulator.state.managedRoleAuthorized === false)
          throw new ApiError(
            403,
            'MissingAuth.AliyuncsManagedSecurityRole',
            'the account has not authorized the AliyunCSManagedSecurityRole system role',
          );
        if (key.keyState !== 'Enabled')
          throw new ApiError(400, 'KmsKeyNotEnabled', `KMS key ${key.keyId} is ${key.keyState}`);
        cluster.encryptionKeyId = key.keyId;
      }
      cluster.disableEncryption = body.disable_encryption;
      cluster.lastKmsChange = new Date(now).toISOString();
      // The control plane restarts with the new configuration: Updating, then Running again.
      ctx.emulator.applyEncryptionChange(cluster);
      return undefined;
    }
    case 'GrantPermissions':
      return grantPermissions(ctx, route.uid ?? '');
    case 'DescribeUserPermission':
      return describeUserPermission(ctx, route.uid ?? '');
    default:
      throw new ApiError(
        404,
        'InvalidAction.NotFound',
        'Specified api is not found, please check your url and method.',
      );
  }
}

import type { CloudClients } from '../cloud/clients';
import type { SentinelConfig } from '../config';

/**
 * The target clusters and the KMS key each encrypts its Secrets with. The key lives in
 * `meta_data.Capabilities.EncryptionKMSKeyId` (with `DisableEncryption`), which the CS SDK's models drop, so
 * this reads the raw answers (docs/cloud-facts.md#cs-secret-encryption). An explicit mapping in configuration wins.
 */
export interface TargetCluster {
  clusterId: string;
  name: string;
  regionId: string;
  /** The Secret-encryption key, when encryption is on. */
  keyId?: string;
  encryptionEnabled: boolean;
}

interface RawCluster {
  cluster_id?: string;
  name?: string;
  region_id?: string;
  meta_data?: string;
  tags?: Array<{ key?: string; value?: string }>;
}

/** The Secret-encryption key and whether encryption is off, from `meta_data` (one reading for every caller). */
export function capabilities(raw: { meta_data?: string }): { keyId?: string; disabled: boolean } {
  try {
    const caps = (
      JSON.parse(raw.meta_data ?? '{}') as {
        Capabilities?: { EncryptionKMSKeyId?: unknown; DisableEncryption?: unknown };
      }
    ).Capabilities;
    const keyId =
      typeof caps?.EncryptionKMSKeyId === 'string' && caps.EncryptionKMSKeyId
        ? caps.EncryptionKMSKeyId
        : undefined;
    // Terraform treats a missing DisableEncryption as true: encryption is on only when a key is named and not disabled.
    const disabled =
      caps?.DisableEncryption === undefined
        ? !keyId
        : caps.DisableEncryption === true || caps.DisableEncryption === 'true';
    return { ...(keyId ? { keyId } : {}), disabled };
  } catch {
    return { disabled: true };
  }
}

function target(raw: RawCluster, explicitKey?: string): TargetCluster {
  const caps = capabilities(raw);
  const keyId = explicitKey ?? caps.keyId;
  return {
    clusterId: raw.cluster_id ?? '',
    name: raw.name ?? raw.cluster_id ?? '',
    regionId: raw.region_id ?? '',
    ...(keyId ? { keyId } : {}),
    // The mapping names the key only: whether encryption is on is CS's to say.
    encryptionEnabled: !caps.disabled && keyId !== undefined,
  };
}

export async function discoverClusters(
  clients: Pick<CloudClients, 'csRoa'>,
  config: Pick<SentinelConfig, 'clusters' | 'clusterKeys'>,
): Promise<TargetCluster[]> {
  if (config.clusters.mode === 'explicit') {
    const out: TargetCluster[] = [];
    for (const id of config.clusters.clusterIds) {
      const raw = (await clients.csRoa(
        'DescribeClusterDetail',
        'GET',
        `/clusters/${encodeURIComponent(id)}`,
      )) as RawCluster;
      out.push(target(raw, config.clusterKeys[id]));
    }
    return out;
  }
  const { regionId, profile, clusterSpec, tags } = config.clusters;
  const out: TargetCluster[] = [];
  for (let page = 1; page <= 100; page++) {
    const body = (await clients.csRoa('DescribeClustersV1', 'GET', '/api/v1/clusters', {
      cluster_type: 'ManagedKubernetes',
      region_id: regionId,
      page_number: String(page),
      page_size: '50',
      ...(profile ? { profile } : {}),
      ...(clusterSpec ? { cluster_spec: clusterSpec } : {}),
    })) as { clusters?: RawCluster[]; page_info?: { total_count?: number } };
    const clusters = body.clusters ?? [];
    for (const raw of clusters) {
      const matchesTags = Object.entries(tags).every(([k, v]) =>
        raw.tags?.some((t) => t.key === k && t.value === v),
      );
      if (matchesTags) out.push(target(raw, config.clusterKeys[raw.cluster_id ?? '']));
    }
    const total = body.page_info?.total_count;
    if (clusters.length < 50 || (total !== undefined && page * 50 >= total)) break;
  }
  return out;
}

import type { CloudClients } from '../cloud/clients';
import { capabilities } from '../cluster/discovery';
import { normalizeError } from '../errors';
import { type KeyInfo, keyInfoOf } from '../kms/keys';

/**
 * What the vendor document asks a person to check before turning Secret encryption on, checked: each item
 * pass / fail / warn with its evidence and remedy (worded as the audit words its checks), or `manual` where
 * no API can tell (network rules, a RAM Deny). Any `fail` stops `enable`.
 */
export type PreflightStatus = 'pass' | 'fail' | 'warn' | 'manual';

export interface PreflightCheck {
  id: string;
  title: string;
  status: PreflightStatus;
  evidence: string;
  remedy?: string;
}

/** DescribeClusterDetail's fields the checks read (docs/cloud-facts.md#cs-secret-encryption). */
export interface ClusterDetail {
  clusterId: string;
  regionId: string;
  clusterType: string;
  clusterSpec: string;
  profile: string;
  /** Kubernetes version, e.g. `1.36.3-aliyun.1`. */
  currentVersion: string;
  state: string;
  updated?: string;
  keyId?: string;
  encryptionEnabled: boolean;
}

/** CS answers 409 to a second UpdateKMSEncryption within 5 minutes of the last. */
export const KMS_CHANGE_COOLDOWN_MS = 5 * 60_000;

export async function clusterDetail(
  clients: Pick<CloudClients, 'csRoa'>,
  clusterId: string,
): Promise<ClusterDetail> {
  const raw = (await clients.csRoa(
    'DescribeClusterDetail',
    'GET',
    `/clusters/${encodeURIComponent(clusterId)}`,
  )) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const { keyId, disabled } = capabilities({ meta_data: str(raw.meta_data) });
  return {
    clusterId,
    regionId: str(raw.region_id),
    clusterType: str(raw.cluster_type),
    clusterSpec: str(raw.cluster_spec),
    profile: str(raw.profile),
    currentVersion: str(raw.current_version),
    state: str(raw.state),
    ...(str(raw.updated) ? { updated: str(raw.updated) } : {}),
    ...(keyId ? { keyId } : {}),
    encryptionEnabled: !disabled && keyId !== undefined,
  };
}

/** Secret encryption exists on ACK Pro (managed, Serverless and Edge): ManagedKubernetes with an `ack.pro.*` spec. */
export function clusterTypeCheck(c: ClusterDetail): PreflightCheck[] {
  const pro = c.clusterType === 'ManagedKubernetes' && c.clusterSpec.startsWith('ack.pro');
  const [major = 0, minor = 0] = (/^v?(\d+)\.(\d+)/.exec(c.currentVersion) ?? []).slice(1).map(Number);
  const kmsV2 = major > 1 || (major === 1 && minor >= 29);
  return [
    {
      id: 'cluster-type',
      title: 'The cluster supports Secret encryption (ACK Pro, ACK Edge Pro)',
      status: pro ? 'pass' : 'fail',
      evidence: `${c.clusterType} ${c.clusterSpec} (profile ${c.profile || 'Default'})`,
      ...(pro
        ? {}
        : { remedy: 'Migrate the cluster to ACK Pro: Secret encryption is not offered on ACK Basic.' }),
    },
    {
      id: 'cluster-version',
      title: 'Kubernetes 1.29 or later (KMS v2, whose re-encryption the suite can prove)',
      status: kmsV2 ? 'pass' : 'warn',
      evidence: `Kubernetes ${c.currentVersion || 'version unknown'}`,
      ...(kmsV2
        ? {}
        : {
            remedy:
              'Upgrade the cluster: before 1.29 the API server uses KMS v1 (one KMS call per Secret write) and re-encryption stays unproven.',
          }),
    },
  ];
}

export function clusterStateCheck(c: ClusterDetail, now: number): PreflightCheck[] {
  const running = c.state === 'running';
  const updatedAgo = c.updated ? now - Date.parse(c.updated) : Number.POSITIVE_INFINITY;
  return [
    {
      id: 'cluster-state',
      title: 'The cluster is running',
      status: running ? 'pass' : 'fail',
      evidence: `state ${c.state || 'unknown'}`,
      ...(running
        ? {}
        : { remedy: 'Wait until the cluster is Running (an update or upgrade is in progress).' }),
    },
    {
      id: 'recent-change',
      title: 'No Secret-encryption change in the last 5 minutes',
      // CS reports when the cluster was last updated, not what changed: a recent update may be anything.
      status: updatedAgo >= KMS_CHANGE_COOLDOWN_MS ? 'pass' : 'warn',
      evidence: c.updated ? `the cluster was last updated at ${c.updated}` : 'no update time reported',
      ...(updatedAgo >= KMS_CHANGE_COOLDOWN_MS
        ? {}
        : {
            remedy:
              'If that update changed Secret encryption, CS refuses another change for 5 minutes (HTTP 409) and the switch says so: run the command again later.',
          }),
    },
  ];
}

/**
 * The key: it exists, is Enabled, is a symmetric key for Encrypt, lives in the cluster's region, is protected.
 * `protection.required`: an unprotected key fails unless the request turns protection on (`requested`).
 */
export async function keyChecks(
  clients: Pick<CloudClients, 'kmsRpc'>,
  keyId: string,
  c: ClusterDetail,
  protection: { required: boolean; requested: boolean } = { required: false, requested: false },
): Promise<{ checks: PreflightCheck[]; key?: KeyInfo }> {
  let key: KeyInfo;
  let meta: Record<string, unknown>;
  try {
    const body = await clients.kmsRpc('DescribeKey', { KeyId: keyId });
    key = keyInfoOf(body, keyId);
    meta = (body.KeyMetadata ?? {}) as Record<string, unknown>;
  } catch (err) {
    return {
      checks: [
        {
          id: 'key-exists',
          title: 'The KMS key exists and can be described',
          status: 'fail',
          evidence: `DescribeKey ${keyId}: ${normalizeError(err).message}`,
          remedy: 'Create the key in KMS in the cluster region, or name an existing one (key id or alias).',
        },
      ],
    };
  }
  const region = /^acs:kms:([^:]+):/.exec(key.arn)?.[1];
  const symmetric =
    String(meta.KeySpec ?? '').startsWith('Aliyun_AES') && meta.KeyUsage === 'ENCRYPT/DECRYPT';
  const checks: PreflightCheck[] = [
    {
      id: 'key-state',
      title: 'The key is Enabled',
      status: key.keyState === 'Enabled' ? 'pass' : 'fail',
      evidence: `KeyState ${key.keyState}`,
      ...(key.keyState === 'Enabled' ? {} : { remedy: 'Enable the key (KMS console → the key → Enable).' }),
    },
    {
      id: 'key-spec',
      title: 'The key is symmetric and usable for Encrypt',
      status: symmetric ? 'pass' : 'fail',
      evidence: `KeySpec ${String(meta.KeySpec ?? '?')}, KeyUsage ${String(meta.KeyUsage ?? '?')}`,
      ...(symmetric ? {} : { remedy: 'Use an Aliyun_AES_256 key with usage ENCRYPT/DECRYPT.' }),
    },
    {
      id: 'key-region',
      title: "The key is in the cluster's region",
      status: region === c.regionId ? 'pass' : 'fail',
      evidence: `key in ${region ?? 'an unknown region'}, cluster in ${c.regionId || 'an unknown region'}`,
      ...(region === c.regionId ? {} : { remedy: `Create or choose a key in ${c.regionId}.` }),
    },
    protectionCheck(key, protection),
  ];
  return { checks, key };
}

function protectionCheck(key: KeyInfo, o: { required: boolean; requested: boolean }): PreflightCheck {
  const on = key.deletionProtection === 'Enabled';
  const status = on || (o.required && o.requested) ? 'pass' : o.required ? 'fail' : 'warn';
  return {
    id: 'deletion-protection',
    title: o.required
      ? 'Deletion protection is on, or turned on by this request'
      : 'Deletion protection is on',
    status,
    evidence: `DeletionProtection ${key.deletionProtection ?? 'Disabled'}${!on && o.requested ? ' (this request turns it on)' : ''}: deleting the key would make the API server unavailable`,
    ...(status === 'pass'
      ? {}
      : {
          remedy: o.required
            ? 'Ask again with "protectKey": true, or turn deletion protection on first (KMS SetDeletionProtection).'
            : '--protect-key turns it on (KMS SetDeletionProtection).',
        }),
  };
}

/** What no API shows: said once, so the person running `enable` has seen it. */
export const MANUAL_CHECKS: PreflightCheck[] = [
  {
    id: 'network',
    title: 'The control plane can reach KMS (100.64.0.0/10)',
    status: 'manual',
    evidence: 'security group outbound and VPC network ACL rules are not readable by this tool',
    remedy:
      "Allow 100.64.0.0/10 in the security group's outbound rules and the VPC network ACL's inbound and outbound rules; otherwise the control plane becomes unavailable.",
  },
  {
    id: 'managed-role',
    title: 'AliyunCSManagedSecurityRole is authorized',
    status: 'manual',
    evidence: 'checked by the switch itself: CS refuses it with MissingAuth.AliyuncsManagedSecurityRole',
    remedy: 'RAM console → Cloud Resource Access Authorization → authorize AliyunCSManagedSecurityRole.',
  },
  {
    id: 'rbac-admin',
    title: 'The caller has RBAC administrator or O&M rights on the cluster',
    status: 'manual',
    evidence: 'CS refuses the switch with ForbiddenUpdateKMSState otherwise',
    remedy: 'ACK console → Authorizations: grant the RAM identity the administrator or O&M role.',
  },
  {
    id: 'deny-later-changes',
    title: 'Nobody can turn it off again by mistake',
    status: 'manual',
    evidence: 'RAM policies are not read by this tool',
    remedy:
      'Attach a RAM policy with Effect Deny on cs:UpdateKMSEncryption to the users and roles that should not change it; never disable or delete the key.',
  },
];

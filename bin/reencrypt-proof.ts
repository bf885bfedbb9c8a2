import type { KubeConfig } from '@kubernetes/client-node';
import { discoverClusters } from '../shared/cluster/discovery';
import { apiServerIdentities, getRaw } from '../shared/cluster/kube';
import {
  proofSettings,
  readSealingEvidence,
  type SealingEvidence,
  seedPending,
} from '../shared/cluster/sealing';
import { SentinelError } from '../shared/errors';
import { describeKey, type KeyInfo } from '../shared/kms/keys';
import { FORCED } from '../shared/reencrypt';
import { cloudFor } from './cloud';
import { UsageError } from './output';

/** What the CLI's sweep writes with its marks and trusts in them, from the API servers' evidence. */
export interface CliProof {
  evidence: SealingEvidence;
  /** The key as KMS describes it (with `--cluster-id`). */
  key?: KeyInfo;
  /** The key's primary version (with `--cluster-id`). */
  keyVersion?: string;
  sealedUnder?: string;
  requireProof: boolean;
  /** The key's last rotation (with `--cluster-id`). */
  rotatedAt?: Date;
}

/**
 * With `--cluster-id` (and Alibaba Cloud credentials) the CLI knows the cluster's key and when it rotated,
 * reads the API servers' `/metrics`, and refuses a sweep that would change nothing (case c) unless `--force`:
 * then its marks say `forced`, and no later job trusts them. Without `--cluster-id` nothing is proven.
 */
export async function cliProof(
  flags: { clusterId?: string; config?: string; force?: boolean; apiServers?: string },
  kc: KubeConfig,
): Promise<CliProof> {
  if (!flags.clusterId) throw new UsageError('--cluster-id is required to prove a re-encryption');
  const { config, clients } = await cloudFor({
    clusterId: flags.clusterId,
    ...(flags.config ? { config: flags.config } : {}),
  });
  const [cluster] = await discoverClusters(clients, config);
  if (!cluster?.encryptionEnabled || !cluster.keyId)
    throw new UsageError(`cluster ${flags.clusterId}: not found, or its Secret encryption is off`);
  const key = await describeKey(clients, cluster.keyId);
  const stated = flags.apiServers === undefined ? undefined : Number(flags.apiServers);
  if (stated !== undefined && !(Number.isInteger(stated) && stated >= 1 && stated <= 64))
    throw new UsageError(`--api-servers must be a whole number from 1 to 64 (got "${flags.apiServers}")`);
  const evidence = await readSealingEvidence(
    { getRaw: (path) => getRaw(kc, path), apiServerIdentities: () => apiServerIdentities(kc) },
    key,
    proofSettings({ ...config.reencrypt, ...(stated ? { apiServers: stated } : {}) }),
  );
  if (evidence.verdict === 'not-effective' && !flags.force)
    throw new SentinelError(
      'permanent',
      seedPending(evidence)
        ? `not effective yet: ${evidence.reason}; run this again in a minute`
        : `not effective: ${evidence.reason} (--force sweeps anyway)`,
      { code: 'NotEffective' },
    );
  return {
    evidence,
    key,
    keyVersion: key.primaryKeyVersion,
    ...(key.lastRotationDate ? { rotatedAt: new Date(key.lastRotationDate) } : {}),
    ...(evidence.token
      ? { sealedUnder: evidence.token }
      : evidence.verdict === 'not-effective'
        ? { sealedUnder: FORCED }
        : {}),
    requireProof: evidence.verdict === 'effective',
  };
}

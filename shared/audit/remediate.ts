import type { CloudClients } from '../cloud/clients';
import type { Fix } from '../config/fixes';
import { normalizeError } from '../errors';
import { describeKey } from '../kms/keys';
import type { ClusterAudit } from './checks';

/**
 * Opt-in remediation (`audit --fix`, `SENTINEL_AUDIT_REMEDIATE`): on the keys in use whose audit check warned,
 * turn deletion protection on (KMS SetDeletionProtection) and set an automatic rotation policy (KMS
 * UpdateRotationPolicy). Never by default; each action, done or refused, is recorded in the report and
 * notified. The two KMS write actions live in an optional RAM policy (deploy/ram/optional/).
 */
export interface Remediation {
  keyId: string;
  fix: Fix;
  outcome: 'done' | 'failed';
  detail: string;
  /** The clusters whose audit found the key lacking. */
  clusters: string[];
}

/** The audit check each fix answers. */
const CHECK_OF: Record<Fix, string> = {
  'deletion-protection': 'deletion-protection',
  'rotation-policy': 'rotation',
};

export async function remediate(
  clients: Pick<CloudClients, 'kmsRpc'>,
  audits: readonly ClusterAudit[],
  fixes: readonly Fix[],
  rotationIntervalDays: number,
): Promise<Remediation[]> {
  const done: Remediation[] = [];
  for (const fix of fixes) {
    const lacking = new Map<string, string[]>();
    for (const a of audits) {
      if (!a.keyId || a.checks.find((c) => c.id === CHECK_OF[fix])?.status !== 'warn') continue;
      lacking.set(a.keyId, [...(lacking.get(a.keyId) ?? []), a.clusterId]);
    }
    for (const [keyId, clusters] of lacking) {
      try {
        const detail = await apply(clients, fix, keyId, rotationIntervalDays);
        done.push({ keyId, fix, outcome: 'done', detail, clusters });
      } catch (err) {
        done.push({ keyId, fix, outcome: 'failed', detail: normalizeError(err).message, clusters });
      }
    }
  }
  return done;
}

async function apply(
  clients: Pick<CloudClients, 'kmsRpc'>,
  fix: Fix,
  keyId: string,
  days: number,
): Promise<string> {
  if (fix === 'deletion-protection') {
    const key = await describeKey(clients, keyId);
    await clients.kmsRpc('SetDeletionProtection', {
      ProtectedResourceArn: key.arn,
      EnableDeletionProtection: 'true',
      DeletionProtectionDescription: 'Secret encryption of ACK clusters (ack-kms-sentinel audit --fix)',
    });
    return 'deletion protection turned on';
  }
  await clients.kmsRpc('UpdateRotationPolicy', {
    KeyId: keyId,
    EnableAutomaticRotation: 'true',
    RotationInterval: `${days * 86_400}s`,
  });
  return `automatic rotation every ${days} days`;
}

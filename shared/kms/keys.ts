import type { CloudClients } from '../cloud/clients';
import { SentinelError } from '../errors';

/**
 * A KMS key as the suite needs it. Read through the generic call: the 1.2.0 SDK's model drops
 * `DeletionProtection` (docs/cloud-facts.md#kms-api).
 */
export interface KeyInfo {
  keyId: string;
  arn: string;
  keyState: string;
  primaryKeyVersion: string;
  automaticRotation: string;
  rotationInterval?: string;
  lastRotationDate?: string;
  nextRotationDate?: string;
  deletionProtection?: string;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export async function describeKey(clients: Pick<CloudClients, 'kmsRpc'>, keyId: string): Promise<KeyInfo> {
  return keyInfoOf(await clients.kmsRpc('DescribeKey', { KeyId: keyId }), keyId);
}

/** DescribeKey's answer as a KeyInfo. */
export function keyInfoOf(body: Record<string, unknown>, keyId: string): KeyInfo {
  const m = (body.KeyMetadata ?? {}) as Record<string, unknown>;
  const primary = str(m.PrimaryKeyVersion);
  if (!str(m.KeyId) || !primary) {
    // A bad answer from the cloud, not bad input: retried, never dropped as poison.
    throw new SentinelError(
      'retryable',
      `DescribeKey ${keyId}: the answer has no KeyId or PrimaryKeyVersion`,
      {
        code: 'MalformedResponse',
      },
    );
  }
  return {
    keyId: str(m.KeyId) ?? keyId,
    arn: str(m.Arn) ?? '',
    keyState: str(m.KeyState) ?? 'Unknown',
    primaryKeyVersion: primary,
    automaticRotation: str(m.AutomaticRotation) ?? 'Disabled',
    ...(str(m.RotationInterval) ? { rotationInterval: str(m.RotationInterval) } : {}),
    ...(str(m.LastRotationDate) ? { lastRotationDate: str(m.LastRotationDate) } : {}),
    ...(str(m.NextRotationDate) ? { nextRotationDate: str(m.NextRotationDate) } : {}),
    ...(str(m.DeletionProtection) ? { deletionProtection: str(m.DeletionProtection) } : {}),
  };
}

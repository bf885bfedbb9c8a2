import type { SweepVerifier, VerificationResult } from '../reencrypt/verify';
import { readSecretEvidence, summarize } from './evidence';

/**
 * Verifies a sweep from etcd: every stored Secret in the selection is encrypted by the KMS v2 provider under
 * a key id that names the target key version (`<keyId>/<keyVersionId>`), none is plaintext.
 */
export function etcdVerifier(etcdUrl: string): SweepVerifier {
  return {
    async verify({ targetKeyVersionId, selection }): Promise<VerificationResult> {
      const stored = (await readSecretEvidence(etcdUrl)).filter(
        (s) =>
          (!selection?.namespaces?.length || selection.namespaces.includes(s.namespace)) &&
          !selection?.excludeNamespaces?.includes(s.namespace),
      );
      const summary = summarize(stored);
      const stale = stored.filter(
        (s) => s.storage !== 'kms-v2' || !s.keyId?.endsWith(`/${targetKeyVersionId}`),
      );
      const verified = stale.length === 0;
      return {
        verified,
        method: 'etcd',
        summary: verified
          ? `all ${stored.length} Secrets in etcd are encrypted under key version ${targetKeyVersionId}`
          : `${stale.length} of ${stored.length} Secrets in etcd are not under key version ${targetKeyVersionId}`,
        details: {
          byKeyId: summary.byKeyId,
          plaintext: summary.plaintext,
          notCurrent: stale.slice(0, 20).map((s) => `${s.namespace}/${s.name}`),
        },
      };
    },
  };
}

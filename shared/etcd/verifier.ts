import type { SweepVerifier, VerificationResult } from '../reencrypt/verify';
import { readSecretEvidence, summarize } from './evidence';

/**
 * Verifies a sweep from etcd: every stored Secret in the selection is encrypted by the KMS v2 provider with a
 * seed sealed under the target key version (read from the version annotation the plugin stored, or from a
 * `<keyId>/<keyVersionId>` key id), none is plaintext.
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
      const stale = stored.filter((s) => s.storage !== 'kms-v2' || s.sealedByVersion !== targetKeyVersionId);
      const verified = stale.length === 0;
      return {
        verified,
        method: 'etcd',
        summary: verified
          ? `all ${stored.length} Secrets in etcd are encrypted under key version ${targetKeyVersionId}`
          : `${stale.length} of ${stored.length} Secrets in etcd are not under key version ${targetKeyVersionId}`,
        details: {
          byKeyId: summary.byKeyId,
          bySealingVersion: summary.bySealingVersion,
          plaintext: summary.plaintext,
          notCurrent: stale.slice(0, 20).map((s) => `${s.namespace}/${s.name}`),
        },
      };
    },
  };
}

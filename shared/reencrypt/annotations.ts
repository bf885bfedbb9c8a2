/** The vendor document's annotation: when the Secret was rewritten (RFC 3339, UTC). */
export const ROTATION_TIME_ANNOTATION = 'encryption-key-rotation-time';

/** The suite's own annotation: the KMS key version the Secret was rewritten for. Reruns skip what carries it. */
export const KEY_VERSION_ANNOTATION = 'ack-kms-sentinel.io/key-version';

/**
 * The merge patch of the `annotate` strategy: `metadata.annotations` only. It never carries `data`,
 * `stringData`, `type` or `immutable`, so immutable Secrets accept it and no Secret's data can change.
 */
export function annotationPatch(
  keyVersionId: string,
  at: Date,
): { metadata: { annotations: Record<string, string> } } {
  return {
    metadata: {
      annotations: {
        [ROTATION_TIME_ANNOTATION]: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        [KEY_VERSION_ANNOTATION]: keyVersionId,
      },
    },
  };
}

/**
 * The `stale-only` strategy's patch: nothing but a resourceVersion precondition. A KMS v2 API server stores
 * such a no-op again only when the stored object is stale, i.e. under another key id (docs/cloud-facts.md#kms-v2-internals).
 */
export const stalePatch = (resourceVersion: string) => ({ metadata: { resourceVersion } });

export const isCurrent = (annotations: Record<string, string> | undefined, keyVersionId: string): boolean =>
  annotations?.[KEY_VERSION_ANNOTATION] === keyVersionId;

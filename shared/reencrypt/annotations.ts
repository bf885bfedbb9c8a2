// The Secret store keeps the annotations under this prefix (and the vendor's rotation time) and drops the rest:
// the marks must be named under it.
import { ROTATION_TIME_ANNOTATION, SUITE_ANNOTATION_PREFIX } from '../cluster/secret-store';

/** The vendor document's annotation: when the Secret was rewritten (RFC 3339, UTC). */
export { ROTATION_TIME_ANNOTATION };

/** The suite's own annotation: the KMS key version the Secret was rewritten for. Reruns skip what carries it. */
export const KEY_VERSION_ANNOTATION = `${SUITE_ANNOTATION_PREFIX}key-version` as const;

/**
 * What the rewrite was sealed under, as the API servers proved it (`shared/cluster/sealing.ts`): the evidence
 * token, or `forced` for a rewrite made while they proved it changed nothing. Absent when nothing was proven.
 * A mark of the key version is trusted, where the API servers' evidence is readable, only with a token: so
 * a rewrite made before the control plane re-sealed is done again.
 */
export const SEALED_UNDER_ANNOTATION = `${SUITE_ANNOTATION_PREFIX}sealed-under` as const;
export const FORCED = 'forced';

/**
 * The merge patch of the `annotate` strategy: `metadata.annotations` only. It never carries `data`,
 * `stringData`, `type` or `immutable`, so immutable Secrets accept it and no Secret's data can change. The
 * evidence annotation is always set or removed (`null`), so an older proof never outlives its rewrite.
 */
export function annotationPatch(
  keyVersionId: string,
  at: Date,
  sealedUnder?: string,
): { metadata: { annotations: Record<string, string | null> } } {
  return {
    metadata: {
      annotations: {
        [ROTATION_TIME_ANNOTATION]: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        [KEY_VERSION_ANNOTATION]: keyVersionId,
        [SEALED_UNDER_ANNOTATION]: sealedUnder ?? null,
      },
    },
  };
}

/**
 * The `stale-only` strategy's patch: nothing but a resourceVersion precondition. A KMS v2 API server stores
 * such a no-op again only when the stored object is stale, i.e. under another key id (docs/cloud-facts.md#kms-v2-internals).
 */
export const stalePatch = (resourceVersion: string) => ({ metadata: { resourceVersion } });

/** The suite's marks on a Secret (the only annotations the sweep reads). */
export type Marks = Partial<
  Record<
    typeof KEY_VERSION_ANNOTATION | typeof SEALED_UNDER_ANNOTATION | typeof ROTATION_TIME_ANNOTATION,
    string
  >
>;

/** A mark written under the API servers' proof (not forced, not unproven). */
export const isProven = (marks: Marks | undefined): boolean => {
  const sealed = marks?.[SEALED_UNDER_ANNOTATION];
  return sealed !== undefined && sealed !== FORCED;
};

/**
 * A mark written at or after `since` (when encryption was last seen turned on: a Secret updated while it was
 * off kept its marks but is stored in plaintext). The annotation has whole seconds, so `since` is taken to its
 * second: the suite writes no mark while encryption is off, and others' writes keep the older time.
 */
export const markedSince = (marks: Marks | undefined, since: Date | undefined): boolean => {
  if (!since) return true;
  const at = Date.parse(marks?.[ROTATION_TIME_ANNOTATION] ?? '');
  return Number.isFinite(at) && at >= Math.floor(since.getTime() / 1000) * 1000;
};

/**
 * Whether a Secret is done for `keyVersionId`: marked for it, (when proof is required) under proof, and (when
 * encryption was turned on again) since then.
 */
export const isCurrent = (
  marks: Marks | undefined,
  keyVersionId: string,
  requireProof = false,
  since?: Date,
): boolean =>
  marks?.[KEY_VERSION_ANNOTATION] === keyVersionId &&
  (!requireProof || isProven(marks)) &&
  markedSince(marks, since);

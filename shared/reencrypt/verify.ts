import type { Selection, SweepReport } from './sweep';

/**
 * After a sweep, something other than the sweep's own counters confirms that the Secrets are stored under
 * the target key version: in the sandbox, etcd itself (`shared/etcd/verifier.ts`, for the sandbox and self-managed control planes); in the cloud,
 * ActionTrail's record of the control plane encrypting with the new version.
 */
export interface VerificationResult {
  verified: boolean;
  /** `etcd`, `actiontrail`, ... */
  method: string;
  /** One line a person reads in a report. */
  summary: string;
  details: Record<string, unknown>;
}

export interface SweepVerifier {
  verify(input: {
    targetKeyVersionId: string;
    selection?: Selection;
    report: SweepReport;
  }): Promise<VerificationResult>;
}

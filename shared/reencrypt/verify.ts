import type { Selection, SweepReport } from './sweep';

/**
 * After a sweep, something other than the sweep's own counters confirms that the Secrets are stored under
 * the target key version: in the sandbox, etcd itself (`sandbox/etcd/verifier.ts`); in the cloud,
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

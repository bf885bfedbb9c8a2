import type { Selection, SweepReport } from './sweep';

/**
 * A check of a finished sweep by something other than its own counters: what the stored Secrets are sealed
 * under. The one verifier reads etcd itself (`shared/etcd/verifier.ts`: the CLI's `--verify-etcd`, for the
 * sandbox and self-managed control planes, whose etcd one can reach). On ACK etcd is out of reach, so the
 * functions prove a rewrite with the API servers' own `/metrics` before and after (`shared/cluster/sealing.ts`)
 * and verify with the census of marks, not with a verifier.
 */
export interface VerificationResult {
  verified: boolean;
  method: 'etcd';
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

import { normalizeError } from '../errors';
import type { Logger } from '../log';
import type { ClusterState, JobState, StateStore } from './state';

/**
 * A job's record in its cluster's state ConfigMap, in the shape of Powertools' idempotency persistence
 * layer: named transitions (progress, complete, fail) instead of raw saves. Each transition reads the state
 * as stored now and writes it back with optimistic concurrency (the ConfigMap's resourceVersion); a conflict
 * with another writer is read again and retried. Progress is advice for a resume (the marks on Secrets are the
 * truth), so a progress save that still fails is logged and the sweep goes on, as the migrator's
 * `progress.go` does; completion and failure are thrown, since the caller must know.
 */
export interface JobRef {
  jobId: string;
  keyId: string;
  keyVersionId: string;
  attempt: number;
}

export type Phase = JobState['phase'];
type SweepCheckpoint = NonNullable<JobState['checkpoint']>;

export interface JobStore {
  /** The cluster's state as stored now. */
  get(): Promise<ClusterState>;
  progress(phase: Phase, invocation: number, checkpoint?: SweepCheckpoint): Promise<void>;
  complete(invocation: number, report: Record<string, unknown>, proof: 'proven' | 'unproven'): Promise<void>;
  /** Ends the attempt without sweeping: the API servers proved a rewrite now would change nothing. */
  awaitNewSeed(invocation: number, report: Record<string, unknown>): Promise<void>;
  /** Ends the attempt without its checkpoint; `revokeCompletion` also drops a completion claimed for this version. */
  fail(invocation: number, reason: string, options?: { revokeCompletion?: boolean }): Promise<void>;
}

const CONFLICT_RETRIES = 3;

export function jobStore(
  state: StateStore,
  job: JobRef,
  options: { log: Logger; now?: () => number },
): JobStore {
  const now = options.now ?? Date.now;
  const record = (
    current: ClusterState,
    phase: Phase,
    invocation: number,
    extra: Partial<JobState> = {},
  ): JobState => ({
    jobId: job.jobId,
    keyId: job.keyId,
    keyVersionId: job.keyVersionId,
    phase,
    attempt: job.attempt,
    invocation,
    ...(current.job?.jobId === job.jobId && current.job.startedAt
      ? { startedAt: current.job.startedAt }
      : {}),
    updatedAt: new Date(now()).toISOString(),
    ...extra,
  });
  const update = async (what: string, next: (current: ClusterState) => ClusterState): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const current = await state.load();
      try {
        await state.save(next(current));
        return;
      } catch (err) {
        const e = normalizeError(err);
        if (e.statusCode !== 409 || attempt >= CONFLICT_RETRIES) throw e;
        options.log.info('state ConfigMap changed under us: read again', { what, attempt });
      }
    }
  };
  return {
    get: () => state.load(),
    async progress(phase, invocation, checkpoint) {
      try {
        await update('progress', (s) => ({
          ...s,
          job: record(s, phase, invocation, checkpoint ? { checkpoint } : {}),
        }));
      } catch (err) {
        options.log.warn('could not save progress; the sweep goes on', {
          phase,
          error: normalizeError(err).toJSON(),
        });
      }
    },
    complete: (invocation, report, proof) =>
      update('complete', (s) => ({
        completedKeyVersion: job.keyVersionId,
        completedAt: new Date(now()).toISOString(),
        completedProof: proof,
        job: record(s, 'completed', invocation, { report }),
      })),
    awaitNewSeed: (invocation, report) =>
      update('await new seed', (s) => ({
        ...s,
        job: record(s, 'waiting-for-new-seed', invocation, { report }),
      })),
    fail: (invocation, reason, { revokeCompletion = false } = {}) =>
      update('fail', (s) => ({
        ...(s.completedKeyVersion && !(revokeCompletion && s.completedKeyVersion === job.keyVersionId)
          ? {
              completedKeyVersion: s.completedKeyVersion,
              ...(s.completedAt ? { completedAt: s.completedAt } : {}),
              ...(s.completedProof ? { completedProof: s.completedProof } : {}),
            }
          : {}),
        job: record(s, 'failed', invocation, { report: { reason } }),
      })),
  };
}

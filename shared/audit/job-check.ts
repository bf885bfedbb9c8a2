import { normalizeError } from '../errors';
import { type LoadedState, statusOf } from '../jobs/store';
import type { Check } from './checks';

/**
 * The cluster's last re-encryption job as the job store derives it: a job that stopped saving progress reads
 * as stale here as it does in `GET /v1/jobs/{id}` and to the starter, and a state the suite cannot read is
 * said, not hidden.
 */
export async function jobCheck(
  read: () => Promise<LoadedState>,
  now: number,
  staleAfterMs: number,
): Promise<Check> {
  const title = 'The last re-encryption job is not stuck';
  let state: LoadedState;
  try {
    state = await read();
  } catch (err) {
    return {
      id: 'job',
      title,
      status: 'warn',
      evidence: `the state ConfigMap could not be read: ${normalizeError(err).message}`,
      remedy:
        "The audit's identity needs get on configmaps in the suite's state namespace (deploy/rbac.yaml).",
    };
  }
  if (state.unreadable)
    return {
      id: 'job',
      title,
      status: 'warn',
      evidence: `${state.unreadable}; it reads as empty, so no job is vouched for`,
      remedy: 'See docs/runbook.md, "Resetting state": the next job writes a new state.',
    };
  const job = state.job;
  const status = job ? statusOf(state, job.jobId, '', now, staleAfterMs) : undefined;
  if (!job || !status) return { id: 'job', title, status: 'pass', evidence: 'no job recorded yet' };
  const which = `${job.jobId} (key version ${job.keyVersionId}, attempt ${status.attempt})`;
  if (status.stale)
    return {
      id: 'job',
      title,
      status: 'fail',
      evidence: `${which} is ${job.phase} by its record but saved no progress since ${job.updatedAt}: it died`,
      remedy:
        'The next rotation-watch tick starts it again from its checkpoint; if ticks do not run, see docs/runbook.md.',
    };
  if (job.phase === 'failed')
    return {
      id: 'job',
      title,
      status: 'warn',
      evidence: `${which} failed: ${status.lastError ?? 'no reason recorded'}`,
    };
  return { id: 'job', title, status: 'pass', evidence: `${which}: ${job.phase}, updated ${job.updatedAt}` };
}

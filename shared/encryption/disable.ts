import type { CloudClients } from '../cloud/clients';
import { normalizeError } from '../errors';
import { type EnableDeps, type EnableStep, recordEncryption, StepFailed, waitRunning } from './enable';
import { clusterDetail } from './preflight';

/**
 * `disable`: Secret encryption off, as the vendor document warns: Secrets already written stay sealed under the
 * KMS key (the API server keeps the provider to read them) until each is written again, so the key must stay
 * Enabled and undeleted; new writes are stored in plaintext. It runs only with an explicit confirmation
 * (`--confirm-disable`), never from a timer or the webhook.
 */
export const DISABLE_WARNING =
  'Turning Secret encryption off stores every Secret written from now on in plaintext in etcd. Secrets already written stay encrypted with the KMS key until they are written again: do not disable or delete the key.';

export interface DisableReport {
  clusterId: string;
  outcome: 'disabled' | 'already-disabled' | 'not-confirmed' | 'failed';
  warning: string;
  /** The key the Secrets written before stay sealed under. */
  keyId?: string;
  steps: EnableStep[];
}

export async function disableEncryption(
  deps: Pick<EnableDeps, 'waits' | 'onStep' | 'encryptionState' | 'now'> & {
    clients: Pick<CloudClients, 'csRoa'>;
  },
  req: { clusterId: string; confirmed: boolean },
): Promise<DisableReport> {
  const report: DisableReport = {
    clusterId: req.clusterId,
    outcome: 'failed',
    warning: DISABLE_WARNING,
    steps: [],
  };
  const record = (entry: EnableStep) => {
    report.steps.push(entry);
    deps.onStep?.(entry);
  };
  if (!req.confirmed) {
    report.outcome = 'not-confirmed';
    return report;
  }
  try {
    const detail = await clusterDetail(deps.clients, req.clusterId);
    if (detail.keyId) report.keyId = detail.keyId;
    if (!detail.encryptionEnabled) {
      report.outcome = 'already-disabled';
      return report;
    }
    await recordEncryption(deps, 'off', (deps.now ?? Date.now)(), record);
    try {
      await deps.clients.csRoa(
        'UpdateKMSEncryption',
        'PUT',
        `/clusters/${encodeURIComponent(req.clusterId)}/kms`,
        {},
        { disable_encryption: true },
      );
      record({ step: 'switch', status: 'done', detail: 'UpdateKMSEncryption: encryption off' });
    } catch (err) {
      record({
        step: 'switch',
        status: 'failed',
        detail: `UpdateKMSEncryption refused: ${normalizeError(err).message}`,
      });
      throw new StepFailed();
    }
    await waitRunning(deps, req.clusterId, record, false);
    report.outcome = 'disabled';
  } catch (err) {
    if (!(err instanceof StepFailed))
      record({ step: 'switch', status: 'failed', detail: normalizeError(err).message });
    report.outcome = 'failed';
  }
  return report;
}

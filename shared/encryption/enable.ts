import { setTimeout as sleep } from 'node:timers/promises';
import type { CloudClients } from '../cloud/clients';
import type { Cluster } from '../cluster/kube';
import { type ProofSettings, readSealingEvidence, type SealingEvidence } from '../cluster/sealing';
import { ConfigError, normalizeError } from '../errors';
import { jobIdFor } from '../jobs/payload';
import { firstContinuation, nothingKept, runJob } from '../jobs/run';
import { type ClusterStore, clusterStoreOf } from '../jobs/store';
import type { KeyInfo } from '../kms/keys';
import { createLogger, type Logger } from '../log';
import { DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE } from '../reencrypt/defaults';
import type { SweepProgress } from '../reencrypt/sweep';
import { findManagedRoleEvents } from '../trail/evidence';
import {
  type ClusterDetail,
  clusterDetail,
  clusterStateCheck,
  clusterTypeCheck,
  keyChecks,
  MANUAL_CHECKS,
  type PreflightCheck,
} from './preflight';

/**
 * `enable`: the vendor document's procedure as one command. Pre-flight checks → (optionally) deletion
 * protection on the key → UpdateKMSEncryption → wait until the cluster is Running again → the managed role's
 * Encrypt in ActionTrail, and the API servers' own evidence of a new seed → a sweep, so the Secrets written
 * before (plaintext in etcd until rewritten) are encrypted → a census that every Secret was rewritten. Every
 * step is idempotent: running the command again after a failure resumes (a cluster already encrypted with
 * the key skips the switch; the sweep skips Secrets already marked), and a second run on a finished cluster
 * is a no-op report.
 */
/** `switched`: stopped after UpdateKMSEncryption (`until: 'switch'`): the regular job does the rest. */
export type EnableOutcome =
  | 'enabled'
  | 'switched'
  | 'already-enabled'
  | 'dry-run'
  | 'checks-failed'
  | 'failed';

export interface EnableStep {
  step: 'preflight' | 'protect-key' | 'state' | 'switch' | 'running' | 'evidence' | 'sweep' | 'verify';
  status: 'done' | 'skipped' | 'failed';
  detail: string;
  ms?: number;
}

export interface EnableReport {
  clusterId: string;
  keyId: string;
  keyVersionId?: string;
  outcome: EnableOutcome;
  checks: PreflightCheck[];
  steps: EnableStep[];
  sweep?: { total: number; rewritten: number; alreadyCurrent: number; failed: number; gone: number };
  census?: { total: number; done: number };
  /** The API servers' verdict after the switch (`effective`: a new seed under the key). */
  proof?: SealingEvidence['verdict'];
  /** How to go on after a failure. */
  resume?: string;
}

export interface EnableRequest {
  clusterId: string;
  keyId: string;
  dryRun?: boolean;
  protectKey?: boolean;
  /**
   * A key without deletion protection fails the pre-flight unless the request turns it on (`protectKey`): the
   * webhook's path, whose caller holds only the webhook secret and must not choose a key someone can delete.
   * Without it (the CLI, run with the person's own RAM rights) the missing protection is a warning.
   */
  requireKeyProtection?: boolean;
  /**
   * `switch`: stop once UpdateKMSEncryption is accepted (the webhook's path: rotation-watch's next tick finds
   * the cluster encrypted with no version completed and starts the regular re-encryption job).
   */
  until?: 'switch';
}

export interface EnableDeps {
  clients: Pick<CloudClients, 'csRoa' | 'kmsRpc' | 'actionTrailRpc'>;
  /**
   * The cluster's Kubernetes clients (from DescribeClusterUserKubeconfig, or a kubeconfig given); not needed
   * when the request stops at the switch.
   */
  openCluster?(): Promise<Cluster>;
  /** The proof settings (`SENTINEL_REENCRYPT_PROOF`, `SENTINEL_API_SERVERS`). */
  proof?: ProofSettings;
  /**
   * The suite's record, in the cluster's state, of encryption going off and on: off just before a switch (the
   * completion is dropped; Secrets written while off are plaintext), on once the cluster runs with it.
   */
  encryptionState?: EncryptionState;
  /** Where the re-encryption job's warnings go (stderr by default). */
  log?: Logger;
  onStep?(step: EnableStep): void;
  onProgress?(progress: SweepProgress): void;
  accountId?: string;
  /** How long to wait for Running and for ActionTrail, and how often to look. */
  waits?: { runningMs?: number; evidenceMs?: number; pollMs?: number };
  now?: () => number;
}

export class StepFailed extends Error {}

/** Where the suite records encryption going off and on (the cluster's state, through the job store). */
export interface EncryptionState {
  off(at: number): Promise<void>;
  on(at: number): Promise<void>;
}

/** The cluster's state through the job store, opened for each record and closed after. */
export const encryptionStateIn = (
  open: () => Promise<Cluster>,
  config: { stateNamespace: string; reencrypt: { staleAfterMs: number } },
  log: Logger,
): EncryptionState => {
  const withStore = async (use: (store: ClusterStore) => Promise<void>) => {
    const cluster = await open();
    try {
      await use(clusterStoreOf(cluster.core, config, log));
    } finally {
      cluster.close();
    }
  };
  return {
    off: (at) => withStore((store) => store.recordEncryptionOff(at)),
    on: (at) => withStore((store) => store.recordEncryptionOn(at)),
  };
};

/**
 * Records the switch in the cluster's state, best effort: a cluster whose API server is restarting (or where
 * the suite is not deployed) is recorded by rotation-watch's next tick instead (it sees CS's state).
 */
export async function recordEncryption(
  deps: Pick<EnableDeps, 'encryptionState'>,
  to: 'off' | 'on',
  at: number,
  record: (step: EnableStep) => void,
): Promise<void> {
  if (!deps.encryptionState) return;
  try {
    await deps.encryptionState[to](at);
    record({
      step: 'state',
      status: 'done',
      detail:
        to === 'off'
          ? "the suite's state: encryption off, no completion stands"
          : `the suite's state: encryption on since ${new Date(at).toISOString()}, earlier marks not trusted`,
    });
  } catch (err) {
    record({
      step: 'state',
      status: 'skipped',
      detail: `the suite's state not written (${normalizeError(err).message}); rotation-watch's next tick records it`,
    });
  }
}

export async function enableEncryption(deps: EnableDeps, req: EnableRequest): Promise<EnableReport> {
  const report: EnableReport = {
    clusterId: req.clusterId,
    keyId: req.keyId,
    outcome: 'failed',
    checks: [],
    steps: [],
  };
  /** The step under way: an unexpected error is recorded against it, not against the checks. */
  let stage: EnableStep['step'] = 'preflight';
  const record = (step: EnableStep) => {
    report.steps.push(step);
    deps.onStep?.(step);
  };
  try {
    const { detail, key, already } = await preflightStep(deps, req, report, record);
    if (!key || report.checks.some((c) => c.status === 'fail')) {
      report.outcome = 'checks-failed';
      return report;
    }
    report.keyId = key.keyId;
    report.keyVersionId = key.primaryKeyVersion;
    stage = 'protect-key';
    if (req.protectKey && key.deletionProtection !== 'Enabled')
      await protectKey(deps, key, record, req.dryRun);
    if (req.dryRun) {
      report.outcome = 'dry-run';
      return report;
    }
    stage = 'switch';
    const switchedAt = (deps.now ?? Date.now)();
    if (already) record({ step: 'switch', status: 'skipped', detail: `already encrypted with ${key.keyId}` });
    else {
      await recordEncryption(deps, 'off', switchedAt, record);
      await switchOn(deps, detail, key, record);
    }
    if (req.until === 'switch') {
      report.outcome = already ? 'already-enabled' : 'switched';
      return report;
    }
    stage = 'running';
    await waitRunning(deps, req.clusterId, record);
    if (!already) await recordEncryption(deps, 'on', switchedAt, record);
    stage = 'evidence';
    if (!deps.openCluster)
      throw new ConfigError('enable goes on past the switch only with the cluster to sweep (openCluster)');
    const cluster = await deps.openCluster();
    try {
      const evidence = await evidenceStep(deps, cluster, key, already ? undefined : switchedAt, record);
      report.proof = evidence.verdict;
      stage = 'sweep';
      // A mark left from an earlier time with encryption on says nothing about a Secret written while it was
      // off: only marks written under this seed's evidence count (or, with nothing proven, none after a switch).
      await sweepAndVerify(deps, cluster, key, evidence, { report, record, sinceEnabled: !already });
    } finally {
      cluster.close();
    }
    const rewrote = (report.sweep?.rewritten ?? 0) > 0;
    report.outcome = already && !rewrote ? 'already-enabled' : 'enabled';
  } catch (err) {
    report.outcome = 'failed';
    if (!(err instanceof StepFailed))
      record({ step: stage, status: 'failed', detail: normalizeError(err).message });
    report.resume = `ack-kms-sentinel enable --cluster-id ${req.clusterId} --key-id ${req.keyId} (every step is idempotent: finished steps are skipped)`;
  }
  return report;
}

async function preflightStep(
  deps: EnableDeps,
  req: EnableRequest,
  report: EnableReport,
  record: (step: EnableStep) => void,
): Promise<{ detail: ClusterDetail; key?: KeyInfo; already: boolean }> {
  const t = Date.now();
  const detail = await clusterDetail(deps.clients, req.clusterId);
  const { checks: keyed, key } = await keyChecks(deps.clients, req.keyId, detail, {
    required: req.requireKeyProtection === true,
    requested: req.protectKey === true,
  });
  const already = detail.encryptionEnabled && key !== undefined && detail.keyId === key.keyId;
  const checks = [
    ...clusterTypeCheck(detail),
    // Already on with this key: nothing will be switched, so the switch's own conditions do not apply (a run
    // that stopped while the cluster was Updating goes on to wait for Running).
    ...clusterStateCheck(detail, (deps.now ?? Date.now)()).filter(
      (c) => !already || (c.id !== 'recent-change' && c.id !== 'cluster-state'),
    ),
    ...keyed,
    ...MANUAL_CHECKS,
  ];
  if (detail.encryptionEnabled && key && detail.keyId !== key.keyId)
    checks.push({
      id: 'other-key',
      title: 'Secret encryption is not on with another key',
      status: 'fail',
      evidence: `the cluster encrypts with ${detail.keyId}`,
      remedy: 'Changing the key of an encrypted cluster is not what enable does: rotate the key instead.',
    });
  report.checks = checks;
  const failed = checks.filter((c) => c.status === 'fail');
  record({
    step: 'preflight',
    status: failed.length ? 'failed' : 'done',
    detail: failed.length ? `failed: ${failed.map((c) => c.id).join(', ')}` : `${checks.length} checks`,
    ms: Date.now() - t,
  });
  return { detail, ...(key ? { key } : {}), already };
}

async function protectKey(
  deps: EnableDeps,
  key: KeyInfo,
  record: (step: EnableStep) => void,
  dryRun = false,
): Promise<void> {
  if (dryRun) {
    record({
      step: 'protect-key',
      status: 'skipped',
      detail: `would turn deletion protection on for ${key.keyId}`,
    });
    return;
  }
  try {
    await deps.clients.kmsRpc('SetDeletionProtection', {
      ProtectedResourceArn: key.arn,
      EnableDeletionProtection: 'true',
      DeletionProtectionDescription: 'Secret encryption of ACK clusters (ack-kms-sentinel enable)',
    });
    record({ step: 'protect-key', status: 'done', detail: `deletion protection on for ${key.keyId}` });
  } catch (err) {
    record({ step: 'protect-key', status: 'failed', detail: normalizeError(err).message });
    throw new StepFailed();
  }
}

async function switchOn(
  deps: EnableDeps,
  detail: ClusterDetail,
  key: KeyInfo,
  record: (step: EnableStep) => void,
): Promise<void> {
  try {
    await deps.clients.csRoa(
      'UpdateKMSEncryption',
      'PUT',
      `/clusters/${encodeURIComponent(detail.clusterId)}/kms`,
      {},
      { disable_encryption: false, kms_key_id: key.keyId },
    );
    record({ step: 'switch', status: 'done', detail: `UpdateKMSEncryption with ${key.keyId}` });
  } catch (err) {
    const e = normalizeError(err);
    const why =
      e.code === 'MissingAuth.AliyuncsManagedSecurityRole'
        ? 'the account has not authorized AliyunCSManagedSecurityRole (RAM console → Cloud Resource Access Authorization), which the control plane calls KMS as'
        : e.code === 'ForbiddenUpdateKMSState'
          ? 'the caller lacks RBAC administrator or O&M rights on the cluster'
          : e.statusCode === 409
            ? 'Secret encryption was changed less than 5 minutes ago'
            : e.message;
    record({ step: 'switch', status: 'failed', detail: `UpdateKMSEncryption refused: ${why}` });
    throw new StepFailed();
  }
}

export async function poll<T>(
  deps: Pick<EnableDeps, 'waits'>,
  limitMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const pollMs = deps.waits?.pollMs ?? 5_000;
  const until = Date.now() + limitMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined || Date.now() >= until) return got;
    await sleep(pollMs);
  }
}

export async function waitRunning(
  deps: Pick<EnableDeps, 'waits'> & { clients: Pick<CloudClients, 'csRoa'> },
  clusterId: string,
  record: (step: EnableStep) => void,
  encrypted = true,
): Promise<void> {
  const t = Date.now();
  const limit = deps.waits?.runningMs ?? 20 * 60_000;
  const want = encrypted ? 'on' : 'off';
  const running = await poll(deps, limit, async () => {
    const d = await clusterDetail(deps.clients, clusterId);
    return d.state === 'running' && d.encryptionEnabled === encrypted ? d : undefined;
  });
  if (!running) {
    record({
      step: 'running',
      status: 'failed',
      detail: `the cluster was not Running with encryption ${want} within ${limit / 60_000} min`,
    });
    throw new StepFailed();
  }
  record({
    step: 'running',
    status: 'done',
    detail: `Updating → Running, encryption ${want}`,
    ms: Date.now() - t,
  });
}

/** The vendor's check (the managed role's Encrypt since the switch) and the API servers' own evidence. */
async function evidenceStep(
  deps: EnableDeps,
  cluster: Cluster,
  key: KeyInfo,
  since: number | undefined,
  record: (step: EnableStep) => void,
): Promise<SealingEvidence> {
  const t = Date.now();
  const from = new Date((since ?? Date.now() - 7 * 86_400_000) - 60_000);
  const events = await poll(deps, deps.waits?.evidenceMs ?? 10 * 60_000, async () => {
    const found = await findManagedRoleEvents(deps.clients, {
      keyId: key.keyId,
      since: from,
      eventNames: ['Encrypt', 'GenerateDataKey'],
      maxPages: 1,
      ...(deps.accountId ? { accountId: deps.accountId } : {}),
    });
    return found.length > 0 ? found : undefined;
  });
  const evidence = await readSealingEvidence(cluster, key, deps.proof);
  const trail = events?.length
    ? `ActionTrail: ${events.length} Encrypt by aliyuncsmanagedsecurityrole`
    : 'ActionTrail: no Encrypt by aliyuncsmanagedsecurityrole yet (it can lag by minutes)';
  const proven = evidence.verdict === 'effective';
  record({
    step: 'evidence',
    status: proven || events?.length ? 'done' : 'failed',
    detail: `${trail}; API servers: ${evidence.verdict} (${evidence.reason})`,
    ms: Date.now() - t,
  });
  if (evidence.verdict === 'not-effective') throw new StepFailed();
  return evidence;
}

/**
 * The Secrets written before (plaintext in etcd until rewritten) are swept and counted by the re-encryption
 * job's engine (`shared/jobs/run.ts`), with nothing kept between runs: a rerun skips what is marked.
 */
async function sweepAndVerify(
  deps: EnableDeps,
  cluster: Cluster,
  key: KeyInfo,
  evidence: SealingEvidence,
  o: { report: EnableReport; record: (step: EnableStep) => void; sinceEnabled: boolean },
): Promise<void> {
  const { report, record, sinceEnabled } = o;
  const t = Date.now();
  const now = deps.now ?? Date.now;
  // The evidence step has just read the API servers: the engine starts from that reading, not a second one.
  let read: SealingEvidence | undefined = evidence;
  const evidenceNow = async () => {
    const e = read ?? (await readSealingEvidence(cluster, key, deps.proof));
    read = undefined;
    return e;
  };
  const run = await runJob(
    {
      jobId: jobIdFor(report.clusterId, key.keyId, key.primaryKeyVersion),
      clusterId: report.clusterId,
      keyVersionId: key.primaryKeyVersion,
      strategy: 'annotate',
      pageSize: DEFAULT_PAGE_SIZE,
      concurrency: DEFAULT_CONCURRENCY,
      sinceEnabled,
    },
    {
      secrets: cluster.secrets,
      evidence: evidenceNow,
      key,
      store: nothingKept(),
      budget: {},
      log: deps.log ?? createLogger({ level: 'warn', sink: (line) => process.stderr.write(`${line}\n`) }),
      now,
      adoption: { delayMs: 0, timeoutMs: deps.waits?.evidenceMs ?? 10 * 60_000 },
      ...(deps.onProgress ? { onProgress: deps.onProgress } : {}),
    },
    firstContinuation(key.primaryKeyVersion, new Date(now()), 'sweeping'),
  );
  const swept = run.report;
  if (swept) {
    const { total, rewritten, alreadyCurrent, failed: failures, gone } = swept;
    report.sweep = { total, rewritten, alreadyCurrent, failed: failures, gone };
  }
  const failed = swept?.failed ?? 0;
  record({
    step: 'sweep',
    status: run.status === 'completed' && failed === 0 ? 'done' : 'failed',
    detail: swept
      ? `${swept.rewritten} rewritten, ${swept.alreadyCurrent} already done, ${failed} failed`
      : run.status,
    ms: Date.now() - t,
  });
  if (run.status !== 'completed' || failed > 0 || !run.census) throw new StepFailed();
  report.census = run.census;
  const ok = run.census.done >= run.census.total;
  record({
    step: 'verify',
    status: ok ? 'done' : 'failed',
    detail: `${run.census.done} of ${run.census.total} Secrets rewritten under the key`,
  });
  if (!ok) throw new StepFailed();
}

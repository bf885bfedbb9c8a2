import type { CoreV1Api } from '@kubernetes/client-node';
import { z } from 'zod';
import { isApiException } from '../cluster/k8s';
import { FIELD_MANAGER } from '../cluster/secret-store';
import { normalizeError } from '../errors';
import type { Logger } from '../log';
import type { JobStatus } from './answers';
import {
  JOB_PHASES,
  type JobPhase,
  type SweepCheckpoint,
  sweepCheckpointSchema,
  sweepCountersSchema,
} from './payload';

/**
 * The job store: the only reader and writer of a cluster's state ConfigMap, in the shape of Powertools'
 * idempotency persistence layer. Claims, their rollback, forgetting a completion and every transition of a
 * job (progress, complete, fail, await a new seed) are named operations here; each reads the state as stored
 * now and writes it back with optimistic concurrency (the ConfigMap's resourceVersion). A job's status is
 * derived from its record (a job that stopped saving progress reads as stale everywhere), never stored.
 *
 * Where the state lives is an adapter with two methods (`StateAdapter`), like kube-storage-version-migrator's
 * progress tracker: the ConfigMap in the cluster, or memory in tests.
 */
export const STATE_CONFIGMAP = 'ack-kms-sentinel-state';

/** What a job's record says it came to: its counters, why it ended, what the API servers showed. */
const jobReportSchema = z.object({
  ...sweepCountersSchema.partial().shape,
  reason: z.string().optional(),
  proof: z.enum(['proven', 'unproven']).optional(),
  /** The marks the job trusted: those written since encryption was last turned on. */
  marksSince: z.string().optional(),
  durationMs: z.number().optional(),
  failures: z
    .array(z.object({ namespace: z.string(), name: z.string(), code: z.string(), reason: z.string() }))
    .optional(),
  /** What the API servers showed (`SealingEvidence`, shared/cluster/sealing.ts). */
  evidence: z
    .object({
      verdict: z.enum(['effective', 'not-effective', 'unproven']),
      reason: z.string(),
      apiServers: z.array(
        z.object({
          apiServerIdHash: z.string(),
          startedAt: z.string(),
          currentKeyIdHash: z.string().optional(),
          state: z.enum(['new-key-id', 'restarted', 'reloaded', 'stale-seed', 'seed-pending', 'other-key']),
        }),
      ),
      constantKeyId: z.boolean().optional(),
      token: z.string().optional(),
    })
    .optional(),
});

const jobRecordSchema = z.object({
  jobId: z.string(),
  keyId: z.string(),
  keyVersionId: z.string(),
  phase: z.enum(JOB_PHASES),
  attempt: z.number().int().min(1).optional(),
  invocation: z.number().int().min(1),
  /** When this attempt was claimed. */
  startedAt: z.string().optional(),
  updatedAt: z.string(),
  checkpoint: sweepCheckpointSchema.optional(),
  report: jobReportSchema.optional(),
});

export const clusterStateSchema = z.object({
  completedKeyVersion: z.string().optional(),
  completedAt: z.string().optional(),
  /**
   * What the completion rests on: `proven` by the API servers' evidence, or `unproven` (rewritten, nothing proven).
   * Absent for a completion written before the suite read that evidence: treated as unproven.
   */
  completedProof: z.enum(['proven', 'unproven']).optional(),
  /**
   * Encryption was seen turned off then (a CS state, an UpdateKMSEncryption event, the CLI's disable, or just
   * before a switch on): Secrets written since are plaintext, so no completion stands until it is on again.
   */
  encryptionOffSince: z.string().optional(),
  /**
   * When encryption was (last seen) turned on again: a mark written before it says nothing of how the Secret
   * is stored now (GET-modify-PUT, `kubectl apply`, Helm keep annotations), so jobs trust only later marks.
   */
  marksSince: z.string().optional(),
  job: jobRecordSchema.optional(),
});

export type ClusterState = z.output<typeof clusterStateSchema>;
export type JobRecord = z.output<typeof jobRecordSchema>;
export type JobReport = z.output<typeof jobReportSchema>;

/** A state as read: `unreadable` says why a stored state could not be used (it then reads as empty). */
export type LoadedState = ClusterState & { unreadable?: string };

/** Where the state lives: load it (remembering the version read) and save it over that version. */
export interface StateAdapter {
  load(): Promise<LoadedState>;
  /** Fails with a 409 when the state changed since the last `load`. */
  save(state: ClusterState): Promise<void>;
}

export function configMapState(core: CoreV1Api, namespace: string, name = STATE_CONFIGMAP): StateAdapter {
  let resourceVersion: string | undefined;
  return {
    async load() {
      try {
        const cm = await core.readNamespacedConfigMap({ namespace, name });
        resourceVersion = cm.metadata?.resourceVersion;
        return parseState(cm.data?.state);
      } catch (err) {
        if (isApiException(err) && err.code === 404) {
          resourceVersion = undefined;
          return {};
        }
        throw normalizeError(err, { service: 'kubernetes', operation: 'read state ConfigMap' });
      }
    },
    async save(state) {
      const body = {
        metadata: {
          name,
          namespace,
          labels: { 'app.kubernetes.io/name': 'ack-kms-sentinel' },
          ...(resourceVersion ? { resourceVersion } : {}),
        },
        data: { state: JSON.stringify(clusterStateSchema.parse(state)) },
      };
      try {
        const saved = resourceVersion
          ? await core.replaceNamespacedConfigMap({ namespace, name, body, fieldManager: FIELD_MANAGER })
          : await core.createNamespacedConfigMap({ namespace, body, fieldManager: FIELD_MANAGER });
        resourceVersion = saved.metadata?.resourceVersion;
      } catch (err) {
        throw normalizeError(err, { service: 'kubernetes', operation: 'save state ConfigMap' });
      }
    },
  };
}

/**
 * A state written by another version, by hand, or cut short reads as empty with the reason (the marks on
 * Secrets skip done work, so starting over is safe), rather than failing every invocation on it; the store
 * logs the reason and status answers carry it.
 */
export function parseState(raw: string | undefined): LoadedState {
  if (!raw) return {};
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { unreadable: 'the state ConfigMap does not hold JSON' };
  }
  const parsed = clusterStateSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return { unreadable: `the state ConfigMap's ${issue?.path.join('.') || 'state'}: ${issue?.message}` };
}

/** The phases in which a job is under way: it must keep saving progress, or it is presumed dead. */
const UNDER_WAY: readonly JobPhase[] = ['queued', 'waiting-for-adoption', 'sweeping', 'verifying'];

/** A job under way that saved nothing for `staleAfterMs`: its invocation died (FC gave up, or a timeout). */
export const isStale = (job: JobRecord, now: number, staleAfterMs: number): boolean =>
  UNDER_WAY.includes(job.phase) && now - Date.parse(job.updatedAt) >= staleAfterMs;

/** A job is under way when it is in a running phase and not stale. */
export const isUnderWay = (job: JobRecord, now: number, staleAfterMs: number): boolean =>
  UNDER_WAY.includes(job.phase) && !isStale(job, now, staleAfterMs);

export interface JobRef {
  jobId: string;
  keyId: string;
  keyVersionId: string;
  attempt: number;
}

/** One job's transitions. Progress is advice for a resume, so a save that keeps failing is logged, not thrown. */
export interface JobStore {
  /** The cluster's state as stored now. */
  get(): Promise<ClusterState>;
  progress(phase: JobPhase, invocation: number, checkpoint?: SweepCheckpoint): Promise<void>;
  complete(invocation: number, report: JobReport, proof: 'proven' | 'unproven'): Promise<void>;
  /** Ends the attempt without sweeping: the API servers proved a rewrite now would change nothing. */
  awaitNewSeed(invocation: number, report: JobReport): Promise<void>;
  /** Ends the attempt without its checkpoint; `revokeCompletion` also drops a completion claimed for this version. */
  fail(invocation: number, reason: string, options?: { revokeCompletion?: boolean }): Promise<void>;
}

export interface StoreOptions {
  log: Logger;
  now?: () => number;
  /** No progress for this long and a job under way reads as stale (`SENTINEL_REENCRYPT_STALE_AFTER`). */
  staleAfterMs?: number;
}

const CONFLICT_RETRIES = 3;

/** Reads the state as stored now, applies `next`, saves; a conflict with another writer is read again. */
async function update(
  adapter: StateAdapter,
  log: Logger,
  what: string,
  next: (current: ClusterState) => ClusterState,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const { unreadable: _u, ...current } = await adapter.load();
    const changed = next(current);
    // `next` answers the state itself when nothing is to change: no write.
    if (changed === current) return;
    try {
      await adapter.save(changed);
      return;
    } catch (err) {
      const e = normalizeError(err);
      if (e.statusCode !== 409 || attempt >= CONFLICT_RETRIES) throw e;
      log.info('state ConfigMap changed under us: read again', { what, attempt });
    }
  }
}

/** The completion kept by a write that ends a job (unless revoked). */
/** The cluster's state without its completion (what every transition keeps: the job, the encryption records). */
const withoutCompletion = (state: ClusterState): ClusterState => {
  const { completedKeyVersion: _v, completedAt: _a, completedProof: _p, ...rest } = state;
  return rest;
};

/**
 * A transition of this attempt, unless a newer attempt of the job was claimed since: an invocation the starter
 * presumed dead (stale) that still runs must not overwrite the record (or the completion) of the one after it.
 */
const attemptUpdate =
  (adapter: StateAdapter, log: Logger, job: JobRef) =>
  (what: string, next: (state: ClusterState) => ClusterState) =>
    update(adapter, log, what, (state) => {
      if (state.job?.jobId !== job.jobId || (state.job.attempt ?? 1) <= job.attempt) return next(state);
      log.warn('a newer attempt of this job was started: this one writes nothing more', {
        attempt: job.attempt,
        newer: state.job.attempt,
        what,
      });
      return state;
    });

export function jobStore(adapter: StateAdapter, job: JobRef, options: StoreOptions): JobStore {
  const now = options.now ?? Date.now;
  const { log } = options;
  const record = (
    current: ClusterState,
    phase: JobPhase,
    invocation: number,
    extra: Partial<JobRecord> = {},
  ): JobRecord => ({
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
  const own = attemptUpdate(adapter, log, job);
  return {
    get: () => load(adapter, log),
    async progress(phase, invocation, checkpoint) {
      try {
        await own('progress', (state) => ({
          ...state,
          job: record(state, phase, invocation, checkpoint ? { checkpoint } : {}),
        }));
      } catch (err) {
        log.warn('could not save progress; the sweep goes on', {
          phase,
          error: normalizeError(err).toJSON(),
        });
      }
    },
    complete: (invocation, report, proof) =>
      own('complete', (state) => {
        // Encryption went off, or on again, while the job ran: its marks no longer vouch for anything.
        const moved = state.encryptionOffSince !== undefined || state.marksSince !== report.marksSince;
        if (moved)
          return {
            ...state,
            job: record(state, 'failed', invocation, {
              report: { ...report, reason: 'Secret encryption was turned off or on again while the job ran' },
            }),
          };
        return {
          ...withoutCompletion(state),
          completedKeyVersion: job.keyVersionId,
          completedAt: new Date(now()).toISOString(),
          completedProof: proof,
          job: record(state, 'completed', invocation, { report }),
        };
      }),
    awaitNewSeed: (invocation, report) =>
      own('await new seed', (state) => ({
        ...state,
        job: record(state, 'waiting-for-new-seed', invocation, { report }),
      })),
    fail: (invocation, reason, { revokeCompletion = false } = {}) =>
      own('fail', (state) => ({
        ...(revokeCompletion && state.completedKeyVersion === job.keyVersionId
          ? withoutCompletion(state)
          : state),
        job: record(state, 'failed', invocation, { report: { reason } }),
      })),
  };
}

/** Loads the state, logging once why a stored state could not be used. */
async function load(adapter: StateAdapter, log: Logger): Promise<LoadedState> {
  const state = await adapter.load();
  if (state.unreadable)
    log.warn('the stored state is unreadable: it reads as empty', { reason: state.unreadable });
  return state;
}

/** A new attempt of a job, claimed before its first invocation is started. */
export interface Claim extends JobRef {
  /** Epoch ms. */
  at: number;
}

/** A cluster's state as a whole: its jobs' claims, their status, and the completion. */
export interface ClusterStore {
  read(): Promise<LoadedState>;
  /**
   * Claims the job as a new attempt over the state read by `read` (a concurrent starter's write conflicts:
   * `already-started`); a dead attempt's checkpoint is kept, so the next one resumes from it.
   */
  claim(claim: Claim): Promise<'claimed' | 'already-started'>;
  /** Nothing was started after a claim: it is marked failed, so the next tick starts the job again at once. */
  release(claim: Claim, reason: string): Promise<void>;
  /** Encryption is off (or about to be): the completion is dropped, and stays dropped until it is on again. */
  recordEncryptionOff(at: number): Promise<void>;
  /** Encryption is on again since `at`: marks written before it are not trusted; a completion is dropped. */
  recordEncryptionOn(at: number): Promise<void>;
  /** The job's status derived from its record, or undefined when the state holds another job. */
  status(jobId: string, clusterId: string): Promise<JobStatus | undefined>;
}

/** Encryption going off and on, as the cluster's state records it (see `clusterStateSchema`). */
const encryptionRecords = (
  adapter: StateAdapter,
  log: Logger,
): Pick<ClusterStore, 'recordEncryptionOff' | 'recordEncryptionOn'> => ({
  recordEncryptionOff: (at) =>
    update(adapter, log, 'encryption off', (state) => {
      if (state.encryptionOffSince && !state.completedKeyVersion) return state;
      return {
        ...withoutCompletion(state),
        encryptionOffSince: state.encryptionOffSince ?? new Date(at).toISOString(),
      };
    }),
  recordEncryptionOn: (at) =>
    update(adapter, log, 'encryption on', (state) => {
      // Never earlier than the boundary already recorded, nor than the off it ends.
      const since = [new Date(at).toISOString(), state.marksSince ?? '', state.encryptionOffSince ?? '']
        .sort()
        .at(-1) as string;
      if (!state.encryptionOffSince && state.marksSince === since) return state;
      const { encryptionOffSince: _o, ...rest } = withoutCompletion(state);
      return { ...rest, marksSince: since };
    }),
});

export function clusterStore(adapter: StateAdapter, options: StoreOptions): ClusterStore {
  const now = options.now ?? Date.now;
  const { log } = options;
  let read: ClusterState | undefined;
  return {
    async read() {
      const state = await load(adapter, log);
      const { unreadable: _u, ...kept } = state;
      read = kept;
      return state;
    },
    async claim(c) {
      const base = read ?? (await this.read());
      const { at: when, ...ref } = c;
      const prior = base.job?.jobId === c.jobId ? base.job : undefined;
      const at = new Date(when).toISOString();
      const job: JobRecord = {
        ...ref,
        phase: 'queued',
        invocation: 1,
        startedAt: at,
        updatedAt: at,
        ...(prior?.checkpoint ? { checkpoint: prior.checkpoint } : {}),
      };
      try {
        await adapter.save({ ...base, job });
        read = { ...base, job };
        return 'claimed';
      } catch (err) {
        if (normalizeError(err).statusCode === 409) return 'already-started';
        throw err;
      }
    },
    async release(c, reason) {
      try {
        await update(adapter, log, 'release claim', (state) =>
          state.job?.jobId === c.jobId && state.job.phase === 'queued'
            ? {
                ...state,
                job: {
                  ...state.job,
                  phase: 'failed',
                  updatedAt: new Date(now()).toISOString(),
                  report: { reason },
                },
              }
            : state,
        );
      } catch (err) {
        // The claim then reads as stale after SENTINEL_REENCRYPT_STALE_AFTER, and is started again.
        log.error('could not release the claim of a job that was not started', {
          jobId: c.jobId,
          error: normalizeError(err).toJSON(),
        });
      }
    },
    ...encryptionRecords(adapter, log),
    async status(jobId, clusterId) {
      return statusOf(await load(adapter, log), jobId, clusterId, now(), options.staleAfterMs);
    },
  };
}

/** A cluster's store in its state ConfigMap, with the staleness the starter applies. */
export const clusterStoreOf = (
  core: CoreV1Api,
  config: { stateNamespace: string; reencrypt: { staleAfterMs: number } },
  log: Logger,
  now?: () => number,
): ClusterStore =>
  clusterStore(configMapState(core, config.stateNamespace), {
    log,
    staleAfterMs: config.reencrypt.staleAfterMs,
    ...(now ? { now } : {}),
  });

const COUNTERS = ['total', 'rewritten', 'alreadyCurrent', 'gone', 'failed'] as const;

/** The counters of the last checkpoint, or of the final report once the job is done. */
function countersOf(job: JobRecord): Pick<JobStatus, 'counters'> {
  if (job.checkpoint) return { counters: job.checkpoint.counters };
  const r = job.report ?? {};
  const counters = Object.fromEntries(COUNTERS.map((k) => [k, r[k]]));
  const parsed = sweepCountersSchema.safeParse(counters);
  return parsed.success ? { counters: parsed.data } : {};
}

function percentOf(job: JobRecord): Pick<JobStatus, 'percent'> {
  if (job.phase === 'completed') return { percent: 100 };
  const expected = job.checkpoint?.expected;
  if (!job.checkpoint || !expected) return {};
  return { percent: Math.min(99, Math.floor((job.checkpoint.counters.total * 100) / expected)) };
}

/**
 * A completed job's proof, or why its completion no longer stands (encryption was turned off since: the next
 * tick that finds it on again starts the job's next attempt, under the same id).
 */
function completedNote(
  state: LoadedState,
  keyVersionId: string,
  reason: string | undefined,
): Pick<JobStatus, 'proof' | 'note'> {
  if (state.completedKeyVersion !== keyVersionId)
    return {
      note: state.encryptionOffSince
        ? `its completion was revoked: Secret encryption has been off since ${state.encryptionOffSince}; the job starts again once it is on`
        : 'its completion was revoked; the next rotation-watch tick starts the job again',
    };
  return { proof: state.completedProof ?? 'unproven', ...(reason ? { note: reason } : {}) };
}

/** A job's status from its cluster's state: the one record every invocation of the job updates. */
export function statusOf(
  state: LoadedState,
  jobId: string,
  clusterId: string,
  now: number,
  staleAfterMs = Number.POSITIVE_INFINITY,
): JobStatus | undefined {
  const job = state.job;
  if (job?.jobId !== jobId) return undefined;
  const reason = job.report?.reason;
  const stale = isStale(job, now, staleAfterMs);
  return {
    jobId,
    clusterId,
    phase: job.phase,
    stale,
    attempt: job.attempt ?? 1,
    invocation: job.invocation,
    ...countersOf(job),
    ...percentOf(job),
    ...(job.startedAt ? { startedAt: job.startedAt } : {}),
    updatedAt: job.updatedAt,
    ...(job.phase === 'completed' && state.completedAt ? { completedAt: state.completedAt } : {}),
    ...(job.phase === 'completed' ? completedNote(state, job.keyVersionId, reason) : {}),
    ...(job.phase === 'failed' && reason ? { lastError: reason } : {}),
    ...(stale
      ? {
          lastError: `no progress since ${job.updatedAt}: the job's invocation died; the next rotation-watch tick starts it again from its checkpoint`,
        }
      : {}),
  };
}

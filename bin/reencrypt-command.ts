import type { KubeConfig } from '@kubernetes/client-node';
import { apiServerIdentities, loadKubeConfig } from '../shared/cluster/kube';
import { unproven } from '../shared/cluster/sealing';
import { httpSecretStore } from '../shared/cluster/secret-store';
import { ConfigError, normalizeError, SentinelError } from '../shared/errors';
import type { EtcdSpaceOptions } from '../shared/etcd/space';
import type { Continuation } from '../shared/jobs/payload';
import { firstContinuation, nothingKept, type RunResult, runJob } from '../shared/jobs/run';
import type { JobStore } from '../shared/jobs/store';
import { type Logger, redactString } from '../shared/log';
import type { Selection } from '../shared/reencrypt';
import { STRATEGIES, type Strategy } from '../shared/reencrypt/defaults';
import type { Estimate } from '../shared/reencrypt/estimate';
import type { SecretStore } from '../shared/reencrypt/secrets-api';
import type { VerificationResult } from '../shared/reencrypt/verify';
import { EXIT } from './exit-codes';
import { type Output, UsageError } from './output';
import type { CliProof } from './reencrypt-proof';

export interface ReencryptFlags {
  kubeconfig?: string;
  context?: string;
  namespace: string[];
  excludeNamespace: string[];
  selector?: string;
  concurrency: string;
  pageSize: string;
  strategy: string;
  keyVersion?: string;
  dryRun?: boolean;
  /** With --dry-run: sizes in the estimate, read from whole Secrets (their data reaches this machine). */
  readSecretSizes?: boolean;
  json?: boolean;
  /** `--no-progress` (commander's negation: false). */
  progress?: boolean;
  checkpoint?: string;
  timeBudget?: string;
  verifyEtcd?: string;
  clusterId?: string;
  config?: string;
  force?: boolean;
  apiServers?: string;
  polite?: boolean;
  etcdQuota?: string;
  etcdQuotaShare?: string;
  /** false with --no-etcd-guard. */
  etcdGuard?: boolean;
}

function intFlag(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number between ${min} and ${max} (got "${value}")`);
  }
  return Number(value);
}

function durationFlag(name: string, value: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(value);
  if (!m) throw new UsageError(`--${name} must be a duration such as 90s, 10m or 1h (got "${value}")`);
  return (
    Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[m[2] as 'ms' | 's' | 'm' | 'h']
  );
}

/** `ack-kms-sentinel reencrypt`: the practical replacement of the vendor one-liner. */
const isStrategy = (s: string): s is Strategy => (STRATEGIES as readonly string[]).includes(s);

/** The flags that need no cluster, checked before anything is read. */
function checkFlags(flags: ReencryptFlags) {
  const strategy = flags.strategy;
  if (!isStrategy(strategy)) {
    throw new UsageError(`--strategy must be "annotate" or "stale-only" (got "${strategy}")`);
  }
  const concurrency = intFlag('concurrency', flags.concurrency, 1, 256);
  const pageSize = intFlag('page-size', flags.pageSize, 1, 5000);
  if (flags.readSecretSizes && !flags.dryRun)
    throw new UsageError('--read-secret-sizes goes with --dry-run: it sizes the estimate');
  if (strategy === 'annotate' && !flags.keyVersion && !flags.clusterId) {
    throw new UsageError(
      '--key-version is required with --strategy annotate: the KMS key version the Secrets are rewritten for ' +
        '(DescribeKey → PrimaryKeyVersion), e.g. --key-version 2ab1a983-7072-4bbc-a582-584b5bd8e9d1, ' +
        "or --cluster-id to read it from the cluster's key",
    );
  }
  return {
    strategy,
    concurrency,
    pageSize,
    polite: flags.polite === true,
    etcdSpace: etcdSpaceOf(flags),
  } as const;
}

/** The etcd space guard's flags: off, or etcd's quota (2 GiB, etcd's default, unless given) and the share. */
function etcdSpaceOf(flags: ReencryptFlags): EtcdSpaceOptions | false {
  if (flags.etcdGuard === false) return false;
  const share = Number(flags.etcdQuotaShare ?? '0.8');
  if (!(share > 0 && share <= 1))
    throw new UsageError(
      `--etcd-quota-share must be a fraction above 0 and at most 1 (got "${flags.etcdQuotaShare}")`,
    );
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(flags.etcdQuota ?? '2Gi');
  const quotaBytes = m ? Number(m[1]) * 1024 ** ['', 'Ki', 'Mi', 'Gi'].indexOf(m[2] ?? '') : 0;
  if (quotaBytes < 1024 * 1024)
    throw new UsageError(
      `--etcd-quota must be etcd's --quota-backend-bytes, e.g. 8Gi (got "${flags.etcdQuota}")`,
    );
  return { quotaBytes, share };
}

/** What the sweep may claim: proven from the API servers with --cluster-id (the cloud clients load only then). */
async function proofFor(
  flags: ReencryptFlags,
  kc: KubeConfig,
  out: Output,
): Promise<CliProof & { keyVersion: string }> {
  const proof: CliProof = flags.clusterId
    ? await (await import('./reencrypt-proof.js')).cliProof(flags, kc)
    : { evidence: unproven('no --cluster-id: the key and its rotation are not known'), requireProof: false };
  if (flags.keyVersion && proof.keyVersion && flags.keyVersion !== proof.keyVersion)
    throw new UsageError(
      `--key-version ${flags.keyVersion} is not the key's primary version (${proof.keyVersion})`,
    );
  out.note(`proof: ${proof.evidence.verdict}: ${proof.evidence.reason}`);
  return {
    ...proof,
    keyVersion: flags.keyVersion ?? proof.keyVersion ?? `stale-only-${new Date().toISOString()}`,
  };
}

/** Where the sweep is: a resumed checkpoint file's continuation, or a new one. */
async function startingPoint(
  flags: ReencryptFlags,
  keyVersion: string,
  ctx: Pick<SweepContext, 'cluster' | 'strategy'>,
): Promise<{ from: Continuation; store: JobStore }> {
  const fresh = firstContinuation(keyVersion, new Date(), 'sweeping');
  if (!flags.checkpoint || flags.dryRun) return { from: fresh, store: nothingKept() };
  // The file's schema loads only with --checkpoint: a sweep's start is part of its time.
  const { checkpointFile } = await import('./checkpoint-file.js');
  const cluster = ctx.cluster ?? flags.clusterId ?? flags.context ?? 'kubeconfig';
  return checkpointFile(flags.checkpoint, fresh, { cluster, strategy: ctx.strategy });
}

/** SIGINT and SIGTERM stop taking new work: the writes in flight finish, then the checkpoint is saved. */
function interruptible(out: Output): { signal: AbortSignal; release(): void } {
  const abort = new AbortController();
  const onSignal = () => {
    out.note('interrupted: finishing the writes in flight, then saving the checkpoint…');
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: abort.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

const selectionOf = (flags: ReencryptFlags): Selection => ({
  ...(flags.namespace.length ? { namespaces: flags.namespace } : {}),
  ...(flags.excludeNamespace.length ? { excludeNamespaces: flags.excludeNamespace } : {}),
  ...(flags.selector ? { labelSelector: flags.selector } : {}),
});

/** The engine's warnings, as the CLI's notes on stderr. */
const notesOf = (out: Output): Logger => {
  const note = (msg: string) => out.note(msg);
  const log: Logger = { debug: () => {}, info: () => {}, warn: note, error: note, child: () => log };
  return log;
};

/**
 * `ack-kms-sentinel reencrypt`: the practical replacement of the vendor one-liner, run by the job's engine
 * (`shared/jobs/run.ts`) with a checkpoint file (or nothing) as its store and the time budget and Ctrl-C as
 * its budget.
 */
export async function reencryptCommand(flags: ReencryptFlags, out: Output): Promise<number> {
  const checked = checkFlags(flags);
  const kc = loadKubeConfig({
    ...(flags.kubeconfig ? { path: flags.kubeconfig } : {}),
    ...(flags.context ? { context: flags.context } : {}),
  });
  const secrets = httpSecretStore(kc);
  try {
    const proof = await proofFor(flags, kc, out);
    return await sweepCommand(flags, out, {
      ...checked,
      cluster: flags.clusterId ?? kc.getCurrentCluster()?.server,
      secrets,
      proof,
      estimate: (o) =>
        estimateOf(kc, secrets, {
          ...o,
          proof,
          pageSize: checked.pageSize,
          readSizes: flags.readSecretSizes === true,
        }),
    });
  } finally {
    kc.close();
    secrets.close();
  }
}

export interface SweepContext {
  strategy: Strategy;
  polite?: boolean;
  etcdSpace?: EtcdSpaceOptions | false;
  /** What a checkpoint file is bound to: the cluster's id, or the API server the kubeconfig points at. */
  cluster?: string | undefined;
  concurrency: number;
  pageSize: number;
  secrets: SecretStore;
  proof: CliProof & { keyVersion: string };
  /** The dry run's estimate (it lists the Secrets again: metadata, or with --read-secret-sizes their sizes). */
  estimate(o: {
    keyVersion: string;
    selection: Selection;
    deadline?: number;
    signal: AbortSignal;
  }): Promise<Estimate>;
}

/** The sweep of `reencrypt` on an open cluster: the engine, the report, the exit code. */
export async function sweepCommand(flags: ReencryptFlags, out: Output, ctx: SweepContext): Promise<number> {
  const { proof } = ctx;
  const { keyVersion } = proof;
  const budgetMs = flags.timeBudget ? durationFlag('time-budget', flags.timeBudget) : undefined;
  const { from, store } = await startingPoint(flags, keyVersion, ctx);
  const selection = selectionOf(flags);
  const stop = interruptible(out);
  out.start({
    strategy: ctx.strategy,
    keyVersion,
    dryRun: flags.dryRun === true,
    resumed: from.sweep !== undefined,
  });
  const deadline = budgetMs === undefined ? undefined : Date.now() + budgetMs;
  let run: RunResult;
  try {
    run = await runJob(
      {
        jobId: `cli-${keyVersion}`,
        clusterId: flags.clusterId ?? flags.context ?? 'kubeconfig',
        keyVersionId: keyVersion,
        strategy: ctx.strategy,
        selection,
        pageSize: ctx.pageSize,
        concurrency: ctx.concurrency,
        ...(ctx.polite ? { polite: true } : {}),
        ...(ctx.etcdSpace === undefined ? {} : { etcdSpace: ctx.etcdSpace }),
        dryRun: flags.dryRun === true,
        force: flags.force === true,
      },
      {
        secrets: ctx.secrets,
        evidence: async () => proof.evidence,
        ...(proof.key ? { key: proof.key } : {}),
        store,
        budget: { ...(deadline === undefined ? {} : { deadline }), signal: stop.signal },
        log: notesOf(out),
        now: Date.now,
        adoption: { delayMs: 0, timeoutMs: budgetMs ?? 10 * 60_000 },
        // The progress bar's total: the server's count from the first page (`remainingItemCount`), kept in a
        // checkpoint; the API server gives none with selectors.
        onProgress: (p) => out.progress(p, p.expected),
      },
      from,
    );
    if (flags.dryRun && run.report) {
      run.report.estimate = await ctx.estimate({
        keyVersion,
        selection,
        ...(deadline === undefined ? {} : { deadline }),
        signal: stop.signal,
      });
      noteGrowth(run.report, out);
    }
  } finally {
    stop.release();
  }
  return finishRun(flags, out, run, selection, keyVersion);
}

/**
 * etcd grows by what is rewritten until the next compaction: the dry run says whether that fits the quota. The
 * growth is the estimate's bytes to rewrite, known only when the estimate read the Secrets' sizes
 * (--read-secret-sizes); metadata alone says the size now and the quota, and that the growth is not known.
 */
function noteGrowth(report: NonNullable<RunResult['report']>, out: Output): void {
  const space = report.etcdSpace;
  if (!space || !report.estimate) return;
  const growth = report.estimate.bytesToRewrite;
  if (growth !== undefined) space.expectedGrowthBytes = growth;
  if (space.sizeBytes === undefined) return;
  const MiB = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  const quota = `quota ${MiB(space.quotaBytes)}`;
  if (growth === undefined) {
    out.note(
      `etcd: ${MiB(space.sizeBytes)} now, ${quota}; the growth until the next compaction is the bytes rewritten, unknown without --read-secret-sizes (which reads Secret data)`,
    );
    return;
  }
  const after = space.sizeBytes + growth;
  out.note(
    `etcd: ${MiB(space.sizeBytes)} now, ~${MiB(growth)} more until the next compaction, ${quota}` +
      (after >= space.quotaBytes * space.share
        ? `: past ${Math.round(space.share * 100)}% of it, the sweep will pause for compactions`
        : ''),
  );
}

/** The dry run's estimate: Secrets and bytes to rewrite, KMS calls, duration, blast radius. */
async function estimateOf(
  kc: KubeConfig,
  secrets: SecretStore,
  o: {
    keyVersion: string;
    proof: CliProof;
    pageSize: number;
    selection: Selection;
    deadline?: number;
    signal: AbortSignal;
    readSizes: boolean;
  },
): Promise<Estimate> {
  const apiServers = (await apiServerIdentities(kc).catch(() => undefined))?.length;
  const { estimateSweep } = await import('../shared/reencrypt/estimate.js');
  return estimateSweep(secrets, {
    targetKeyVersionId: o.keyVersion,
    requireProof: o.proof.evidence.verdict === 'effective',
    pageSize: o.pageSize,
    selection: o.selection,
    ...(o.proof.rotatedAt ? { rotatedAt: o.proof.rotatedAt } : {}),
    ...(apiServers ? { apiServers } : {}),
    ...(o.deadline === undefined ? {} : { deadline: o.deadline }),
    signal: o.signal,
    readSizes: o.readSizes,
  });
}

/** The report, the optional etcd verification, and the exit code. */
async function finishRun(
  flags: ReencryptFlags,
  out: Output,
  run: RunResult,
  selection: Selection,
  keyVersion: string,
): Promise<number> {
  const report = run.report;
  if (!report) {
    // A run resumed past its sweep (its checkpoint saved while verifying): the census is its whole report.
    if (run.status === 'completed' && run.census) {
      out.note(`complete: ${run.census.done} of ${run.census.total} Secrets carry the mark of ${keyVersion}`);
      return EXIT.done;
    }
    if (run.status === 'stopped') {
      out.note(RESUME);
      return EXIT.resumable;
    }
    throw new SentinelError('permanent', `the sweep ended as ${run.status}`, { code: 'NotSwept' });
  }
  if (run.status === 'completed' && run.proof === 'unproven')
    out.note(`rewritten, not proven: ${run.evidence?.reason ?? 'no evidence read'}`);
  if (run.status === 'unconfirmed')
    out.note(
      `not confirmed: Secrets lack the mark of ${keyVersion} though the sweep reported done; run again to sweep from the start`,
    );
  let verification: VerificationResult | undefined;
  if (flags.verifyEtcd && run.status === 'completed') {
    const { etcdVerifier } = await import('../shared/etcd/verifier.js');
    verification = await etcdVerifier(flags.verifyEtcd).verify({
      targetKeyVersionId: keyVersion,
      selection,
      report,
    });
  }
  if (run.status === 'stopped') out.note(RESUME);
  out.finish(report, verification);
  return exitOf(flags, run, report, verification);
}

const RESUME =
  'stopped before the end: run the same command again to resume (from --checkpoint, or from the marks already written)';

/** The exit code of a run (bin/exit-codes.ts): a stopped run is resumed, an unproven one was asked to prove. */
function exitOf(
  flags: ReencryptFlags,
  run: RunResult,
  report: { failed: number },
  verification?: VerificationResult,
): number {
  if (verification && !verification.verified) return EXIT.failed;
  if (run.status === 'stopped') return EXIT.resumable;
  if (report.failed > 0) return EXIT.failed;
  if (run.status === 'dry-run') return EXIT.done;
  if (run.status !== 'completed') return EXIT.failed;
  // Without --cluster-id nothing was to be proven, and --force asked to sweep without proof (the notes say so);
  // otherwise "rewritten, not proven" is its own code.
  return flags.clusterId && !flags.force && run.proof === 'unproven' ? EXIT.unproven : EXIT.done;
}

/** Any command's error as its exit code and a message fit to print (redacted). */
export function describeError(err: unknown): { code: number; message: string } {
  if (err instanceof UsageError) return { code: EXIT.usage, message: redactString(err.message) };
  const e = normalizeError(err);
  if (e instanceof ConfigError || e.kind === 'config' || e.kind === 'poison')
    return { code: EXIT.usage, message: redactString(e.message) };
  return { code: EXIT.failed, message: redactString(e.message) };
}

import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { apiServerIdentities, loadKubeConfig } from '../shared/cluster/kube';
import { unproven } from '../shared/cluster/sealing';
import { ConfigError, normalizeError } from '../shared/errors';
import { redactString } from '../shared/log';
import { type SweepCheckpoint, type SweepProgress, type SweepReport, sweep } from '../shared/reencrypt';
import { STRATEGIES, type Strategy } from '../shared/reencrypt/defaults';
import { httpSecretStore } from '../shared/reencrypt/http-store';
import type { VerificationResult } from '../shared/reencrypt/verify';
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
  json?: boolean;
  checkpoint?: string;
  timeBudget?: string;
  verifyEtcd?: string;
  clusterId?: string;
  config?: string;
  force?: boolean;
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

// What only some flags use loads only with them (the schemas, the etcd client, the estimate): a sweep's start
// is part of its time, and on a small set a large part.
async function readCheckpoint(file: string, keyVersion: string): Promise<SweepCheckpoint | undefined> {
  if (!existsSync(file)) return undefined;
  const { sweepCheckpointSchema } = await import('../shared/jobs/payload.js');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--checkpoint ${file} is not JSON: ${(err as Error).message}`);
  }
  const result = sweepCheckpointSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new UsageError(`--checkpoint ${file}: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  if (result.data.targetKeyVersionId !== keyVersion) {
    throw new UsageError(
      `--checkpoint ${file} belongs to key version ${result.data.targetKeyVersionId}, not ${keyVersion}; remove it to start over`,
    );
  }
  return result.data;
}

function writeAtomically(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
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
  if (strategy === 'annotate' && !flags.keyVersion && !flags.clusterId) {
    throw new UsageError(
      '--key-version is required with --strategy annotate: the KMS key version the Secrets are rewritten for ' +
        '(DescribeKey → PrimaryKeyVersion), e.g. --key-version 2ab1a983-7072-4bbc-a582-584b5bd8e9d1, ' +
        "or --cluster-id to read it from the cluster's key",
    );
  }
  return { strategy, concurrency, pageSize } as const;
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

/** `ack-kms-sentinel reencrypt`: the practical replacement of the vendor one-liner. */
export async function reencryptCommand(flags: ReencryptFlags, out: Output): Promise<number> {
  const { strategy, concurrency, pageSize } = checkFlags(flags);
  const kc = loadKubeConfig({
    ...(flags.kubeconfig ? { path: flags.kubeconfig } : {}),
    ...(flags.context ? { context: flags.context } : {}),
  });
  const proof = await proofFor(flags, kc, out);
  const { keyVersion } = proof;
  const budgetMs = flags.timeBudget ? durationFlag('time-budget', flags.timeBudget) : undefined;
  const checkpoint = flags.checkpoint ? await readCheckpoint(flags.checkpoint, keyVersion) : undefined;

  const store = httpSecretStore(kc);
  const selection = {
    ...(flags.namespace.length ? { namespaces: flags.namespace } : {}),
    ...(flags.excludeNamespace.length ? { excludeNamespaces: flags.excludeNamespace } : {}),
    ...(flags.selector ? { labelSelector: flags.selector } : {}),
  };

  const abort = new AbortController();
  const onSignal = () => {
    out.note('interrupted: finishing the writes in flight, then saving the checkpoint…');
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  out.start({
    strategy,
    keyVersion,
    dryRun: flags.dryRun === true,
    resumed: checkpoint !== undefined,
  });

  const deadline = budgetMs === undefined ? undefined : Date.now() + budgetMs;
  let report: SweepReport;
  try {
    report = await sweep({
      store,
      targetKeyVersionId: keyVersion,
      strategy,
      selection,
      pageSize,
      concurrency,
      ...(checkpoint ? { checkpoint } : {}),
      ...(deadline === undefined ? {} : { deadline }),
      signal: abort.signal,
      dryRun: flags.dryRun === true,
      ...(proof.sealedUnder ? { sealedUnder: proof.sealedUnder } : {}),
      requireProof: proof.requireProof,
      // The progress bar's total: the server's count from the first page (`remainingItemCount`), kept in a
      // checkpoint; the API server gives none with selectors.
      onProgress: (p: SweepProgress) => out.progress(p, p.expected),
      onCheckpoint: (c) => {
        if (flags.checkpoint && !flags.dryRun) writeAtomically(flags.checkpoint, c);
      },
    });
    if (flags.dryRun) {
      const apiServers = (await apiServerIdentities(kc).catch(() => undefined))?.length;
      const { estimateSweep } = await import('../shared/reencrypt/estimate.js');
      report.estimate = await estimateSweep(store, {
        targetKeyVersionId: keyVersion,
        requireProof: proof.requireProof,
        pageSize,
        selection,
        ...(proof.rotatedAt ? { rotatedAt: proof.rotatedAt } : {}),
        ...(apiServers ? { apiServers } : {}),
        ...(deadline === undefined ? {} : { deadline }),
        signal: abort.signal,
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    kc.close();
    store.close();
  }

  if (flags.checkpoint && !flags.dryRun) {
    // Done: nothing to resume. A rerun lists again and skips what carries the key version annotation.
    if (report.checkpoint) writeAtomically(flags.checkpoint, report.checkpoint);
    else rmSync(flags.checkpoint, { force: true });
  }
  let verification: VerificationResult | undefined;
  if (flags.verifyEtcd && report.complete && !flags.dryRun) {
    const { etcdVerifier } = await import('../shared/etcd/verifier.js');
    verification = await etcdVerifier(flags.verifyEtcd).verify({
      targetKeyVersionId: keyVersion,
      selection,
      report,
    });
  }
  out.finish(report, verification);
  if (verification && !verification.verified) return 1;
  return report.complete && report.failed === 0 ? 0 : 1;
}

export function describeError(err: unknown): { code: number; message: string } {
  if (err instanceof UsageError) return { code: 2, message: err.message };
  const e = normalizeError(err);
  if (e instanceof ConfigError || e.kind === 'config' || e.kind === 'poison')
    return { code: 2, message: redactString(e.message) };
  return { code: 1, message: redactString(e.message) };
}

import { readFileSync } from 'node:fs';
import { openCluster } from '../shared/cluster/kube';
import { proofSettings } from '../shared/cluster/sealing';
import { clusterKubeconfig } from '../shared/cluster/user-kubeconfig';
import {
  type EnableReport,
  type EnableStep,
  enableEncryption,
  encryptionStateIn,
} from '../shared/encryption/enable';
import { readSecretEvidence, summarize } from '../shared/etcd/evidence';
import { createLogger } from '../shared/log';
import { cloudFor } from './cloud';
import { EXIT } from './exit-codes';
import { printJson, say as sayOn } from './output';

export interface EnableFlags {
  clusterId: string;
  keyId: string;
  kubeconfig?: string;
  config?: string;
  dryRun?: boolean;
  protectKey?: boolean;
  json?: boolean;
  verifyEtcd?: string;
}

const MARK = { done: '✓', skipped: '–', failed: '✗' } as const;
const CHECK = { pass: '✓', warn: '!', fail: '✗', manual: '?' } as const;

/**
 * `ack-kms-sentinel enable --cluster-id <id> --key-id <key>`: the whole procedure (shared/encryption/enable.ts)
 * with its steps on stderr as they happen and, with `--json`, the report as the last line of stdout. With
 * `--verify-etcd` (the sandbox, self-managed control planes) etcd itself is read afterwards: how many Secrets
 * are still plaintext. Exit 0 when enabled (or already, or a dry run whose checks pass), 1 otherwise (a failed
 * check, a refused switch, plaintext left in etcd), 2 for usage or configuration errors.
 */
/** The job store's own lines are not the command's output: its steps say what happened. */
const quietLog = createLogger({ level: 'error', sink: (line) => sayOn(process.stderr, line) });

export async function enableCommand(flags: EnableFlags): Promise<number> {
  const { config, clients } = await cloudFor(flags);
  const say = (line: string) => sayOn(process.stderr, line);
  const started = Date.now();
  const open = async () =>
    openCluster(
      flags.kubeconfig
        ? readFileSync(flags.kubeconfig, 'utf8')
        : await clusterKubeconfig(clients, flags.clusterId, 60),
    );
  const report: EnableReport & {
    etcd?: { secrets: number; plaintext: number; byKeyVersion: Record<string, number> };
  } = await enableEncryption(
    {
      clients,
      openCluster: open,
      encryptionState: encryptionStateIn(open, config, quietLog),
      ...(config.accountId ? { accountId: config.accountId } : {}),
      proof: proofSettings(config.reencrypt),
      onStep: (step: EnableStep) =>
        say(`${MARK[step.status]} ${step.step}: ${step.detail}${step.ms ? ` (${step.ms} ms)` : ''}`),
    },
    {
      clusterId: flags.clusterId,
      keyId: flags.keyId,
      dryRun: flags.dryRun === true,
      protectKey: flags.protectKey === true,
    },
  );
  for (const c of report.checks)
    say(
      `  ${CHECK[c.status]} ${c.title}: ${c.evidence}${c.status !== 'pass' && c.remedy ? `\n      → ${c.remedy}` : ''}`,
    );
  if (flags.verifyEtcd && ['enabled', 'already-enabled'].includes(report.outcome)) {
    const summary = summarize(await readSecretEvidence(flags.verifyEtcd));
    report.etcd = { secrets: summary.total, plaintext: summary.plaintext, byKeyVersion: summary.byKeyId };
    say(`etcd: ${summary.plaintext} of ${summary.total} Secrets still plaintext`);
    if (summary.plaintext > 0) report.outcome = 'failed';
  }
  say(
    `${report.outcome} in ${((Date.now() - started) / 1000).toFixed(1)} s${report.resume ? `; to resume: ${report.resume}` : ''}`,
  );
  if (flags.json) printJson(process.stdout, report);
  return ['enabled', 'already-enabled', 'dry-run'].includes(report.outcome) ? EXIT.done : EXIT.failed;
}

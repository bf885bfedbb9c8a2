import { readFileSync } from 'node:fs';
import { createCloudClients } from '../shared/cloud/clients';
import { credentialsFromDefaultChain } from '../shared/cloud/credentials';
import { discoverClusters } from '../shared/cluster/discovery';
import { openCluster } from '../shared/cluster/kube';
import { withCluster } from '../shared/cluster/user-kubeconfig';
import { loadConfig, readConfigFile } from '../shared/config';
import type { ClusterStatus } from '../shared/jobs/answers';
import { clusterStatus, type StatusDeps } from '../shared/jobs/status';
import { createLogger } from '../shared/log';
import { EXIT } from './exit-codes';
import { type Palette, palette, printable, printJson, UsageError } from './output';

/**
 * `ack-kms-sentinel status [--cluster-id … | --all] [--json]`: where each cluster stands (shared/jobs/status.ts),
 * one screen for a cluster, a table for several. Exit 0 when all is well, 1 when something needs a person,
 * 4 when the work is done but the API servers cannot prove it, 2 for usage or configuration errors.
 */
export interface StatusFlags {
  clusterId: string[];
  all?: boolean;
  kubeconfig?: string;
  json?: boolean;
  config?: string;
}

/** Reads the clusters one after another: each is a few calls, and a fleet's API servers are not ours to rush. */
export async function statusCommand(flags: StatusFlags): Promise<number> {
  if (!flags.all && flags.clusterId.length === 0)
    throw new UsageError('name the clusters: --cluster-id <id> (repeatable), or --all');
  if (flags.all && flags.clusterId.length) throw new UsageError('--all and --cluster-id exclude each other');
  if (flags.kubeconfig && flags.clusterId.length !== 1)
    throw new UsageError('--kubeconfig reaches one cluster: give exactly one --cluster-id');
  const config = loadConfig(settingsFor(flags));
  const clients = createCloudClients(config, await credentialsFromDefaultChain());
  const log = createLogger({ level: 'error', sink: () => {} });
  const kubeconfig = flags.kubeconfig ? readFileSync(flags.kubeconfig, 'utf8') : undefined;
  const deps: StatusDeps = {
    clients,
    log,
    withCluster: async (clusterId, use) => {
      if (!kubeconfig) return withCluster(clients, clusterId, 15, use);
      const cluster = openCluster(kubeconfig);
      try {
        return await use(cluster);
      } finally {
        cluster.close();
      }
    },
  };
  const statuses: ClusterStatus[] = [];
  for (const cluster of await discoverClusters(clients, config))
    statuses.push(await clusterStatus(cluster, deps, config));
  if (flags.json)
    printJson(process.stdout, flags.clusterId.length === 1 ? statuses[0] : { clusters: statuses });
  else if (flags.clusterId.length === 1 && statuses[0]) screen(statuses[0], palette(process.stdout));
  else table(statuses, palette(process.stdout));
  if (statuses.some((s) => s.verdict === 'attention')) return EXIT.failed;
  return statuses.some((s) => s.verdict === 'unproven') ? EXIT.unproven : EXIT.done;
}

/** Discovery settings describe the clusters to find; named clusters (--cluster-id) need none, and win. */
const DISCOVERY = ['SENTINEL_CLUSTER_PROFILE', 'SENTINEL_CLUSTER_SPEC', 'SENTINEL_CLUSTER_TAGS'];

/** The settings: the --config file under the environment, the named clusters over both. */
function settingsFor(flags: StatusFlags): Record<string, string | undefined> {
  const settings = { ...(flags.config ? readConfigFile(flags.config) : {}), ...process.env };
  if (!flags.clusterId.length) return settings;
  for (const name of DISCOVERY) delete settings[name];
  return { ...settings, SENTINEL_CLUSTER_IDS: flags.clusterId.join(',') };
}

const out = (line: string) => process.stdout.write(`${line}\n`);

const paintVerdict = (v: ClusterStatus['verdict'], c: Palette): string =>
  ({ ok: c.green('OK'), unproven: c.yellow('UNPROVEN'), attention: c.red('NEEDS ATTENTION') })[v];

/** "3m ago", "2h ago": how old the last job's record is. */
const ago = (seconds: number): string =>
  seconds < 120
    ? `${seconds}s ago`
    : seconds < 7200
      ? `${Math.round(seconds / 60)}m ago`
      : seconds < 172_800
        ? `${Math.round(seconds / 3600)}h ago`
        : `${Math.round(seconds / 86_400)}d ago`;

const keyLine = (k: NonNullable<ClusterStatus['key']>): string =>
  `${k.keyState}, primary version ${k.primaryKeyVersion}${k.lastRotationDate ? ` (since ${k.lastRotationDate})` : ''}; automatic rotation ${k.automaticRotation}${k.rotationInterval ? ` every ${k.rotationInterval}` : ''}${k.nextRotationDate ? `, next ${k.nextRotationDate}` : ''}; deletion protection ${k.deletionProtection ?? 'unknown'}`;

const jobLine = (j: NonNullable<ClusterStatus['job']>): string =>
  `${j.jobId}: ${j.phase}${j.stale ? ' (STALE)' : ''}, attempt ${j.attempt}${j.percent !== undefined ? `, ${j.percent}%` : ''}${j.counters ? `, ${j.counters.total} visited, ${j.counters.rewritten} rewritten, ${j.counters.failed} failed` : ''}; for version ${j.keyVersionId}; updated ${ago(j.ageSeconds)}`;

const coverageLine = (c: NonNullable<ClusterStatus['coverage']>): string =>
  `${c.marked} of ${c.secrets} Secrets (${c.percent}%) carry the mark of ${c.keyVersionId} (${c.proven} under proof)`;

/** One cluster: a screen of name/value rows, then what needs a person. */
function screen(s: ClusterStatus, c: Palette): void {
  const rows: Array<[string, string]> = [
    ['cluster', `${s.clusterId}${s.name ? ` (${s.name})` : ''}`],
    ['encryption', s.encryption.enabled ? `on, key ${s.encryption.keyId ?? '?'}` : 'OFF'],
    ...(s.key ? [['key', keyLine(s.key)] as [string, string]] : []),
    ...(s.apiServers
      ? [['API servers', `${s.apiServers.verdict}: ${s.apiServers.reason}`] as [string, string]]
      : []),
    ['last job', s.job ? jobLine(s.job) : 'none recorded'],
    [
      'completed',
      s.completed
        ? `version ${s.completed.keyVersionId}${s.completed.at ? ` at ${s.completed.at}` : ''}, ${s.completed.proof}`
        : 'never',
    ],
    ...(s.coverage ? [['coverage', coverageLine(s.coverage)] as [string, string]] : []),
  ];
  const width = Math.max(...rows.map(([k]) => k.length), 'verdict'.length);
  out(`${'verdict'.padEnd(width)}  ${paintVerdict(s.verdict, c)}`);
  for (const [k, v] of rows) out(`${k.padEnd(width)}  ${printable(v)}`);
  for (const r of s.reasons) out(`  ${s.verdict === 'attention' ? '!' : '?'} ${printable(r)}`);
}

/** Several clusters: one row each, then each one's reasons. */
function table(statuses: ClusterStatus[], c: Palette): void {
  const header = ['CLUSTER', 'ENCRYPTION', 'KEY VERSION', 'API SERVERS', 'LAST JOB', 'COVERAGE', 'VERDICT'];
  const rows = statuses.map((s) => [
    s.clusterId,
    s.encryption.enabled ? 'on' : 'OFF',
    s.key?.primaryKeyVersion ?? '-',
    s.apiServers?.verdict ?? '-',
    s.job ? `${s.job.phase}${s.job.stale ? ' (stale)' : ''} ${ago(s.job.ageSeconds)}` : '-',
    s.coverage ? `${s.coverage.percent}%` : '-',
    s.verdict,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => printable(r[i] ?? '').length)));
  const line = (cells: string[], paint = (_v: string, text: string) => text) =>
    cells
      .map((cell, i) => {
        const text = printable(cell).padEnd(widths[i] ?? 0);
        return i === cells.length - 1 ? paint(cell, text.trimEnd()) : text;
      })
      .join('  ');
  out(line(header));
  for (const r of rows) out(line(r, (v) => paintVerdict(v as ClusterStatus['verdict'], c)));
  for (const s of statuses) for (const r of s.reasons) out(`${printable(s.clusterId)}: ${printable(r)}`);
  if (statuses.length === 0) out('no clusters: check SENTINEL_CLUSTER_IDS or the region');
}

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { type Sandbox, type SandboxOptions, startSandbox } from '../sandbox/index';
import { ensureBinaries } from '../sandbox/k8s-bins';
import { applyFlowControl, flowControlNames } from '../shared/cluster/flow-control';
import { KubeHttp } from '../shared/cluster/kube-http';
import { SENTINEL_USER } from '../shared/cluster/rbac';
import { functionJobAt, type JobFigures } from './function-job';
import { type Measurement, measure } from './measure';
import { type Percentiles, Probe } from './probe';
import { prepareTools, type Tools, markdownTable as table } from './tools';

/**
 * `npm run bench -- --neighbours`: what a sweep costs the API server's other clients, and etcd.
 *
 * 1. Neighbours: a probe (a ServiceAccount, as a controller is: APF puts it in `workload-low`) GETs a ConfigMap
 *    and LISTs ten, in turn, every 50 ms, beside each contender; its p50/p99 during each, and idle just before.
 *    Every contender but the in-tree migrator (it runs in kube-controller-manager, as its own identity) runs as
 *    the suite's identity, so APF classifies them alike; then deploy/apf.yaml is applied and ours run again.
 * 2. The etcd space guard: etcd with a small quota and compactions every few seconds, filled to ~65% with
 *    Helm-sized Secrets; the one-liner, our sweep with the guard off, and ours with it, each on a fresh cluster.
 * 3. Growth: 5k / 20k / 50k small Secrets and 5k Helm-sized, one cluster; the function's job at 50,000.
 */
const MiB = 1024 * 1024;
const node = process.execPath;

type Log = (line: string) => void;

interface NeighbourRow {
  contender: string;
  wallMs: number;
  perSecond: number;
  idle: Percentiles;
  during: Percentiles;
  priorityLevel?: string;
  concurrency?: { max: number; final: number };
}

interface GuardRow {
  contender: string;
  exitCode: number | null;
  alarm: boolean;
  sizeBeforeMiB: number;
  sizeAfterMiB: number;
  pauses?: number;
  wallMs: number;
}

interface GrowthRow {
  set: string;
  secrets: number;
  wallMs: number;
  perSecond: number;
  peakRssMiB: number;
  etcdGrowthMiB: number;
}

export interface NeighboursResult {
  markdown: string;
  summary: Record<string, unknown>;
}

/** `--part=neighbours|guard|growth`: one part alone, while tuning (the tables of a full run come from one run). */
const part = process.argv.find((a) => a.startsWith('--part='))?.slice('--part='.length);
const runs = (name: string) => part === undefined || part === name;

export async function runNeighboursBench(log: Log, quick: boolean): Promise<NeighboursResult> {
  const binaries = ensureBinaries();
  const tools = prepareTools(log, false);
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const loadBefore = load();
  const neighbours = runs('neighbours') ? await neighboursTable(log, tools, binaries.kubectl, quick) : [];
  const guard = runs('guard') ? await guardDemo(log, tools, binaries.kubectl, quick) : [];
  const { growth, job } = runs('growth')
    ? await growthTable(log, tools, quick)
    : { growth: [], job: undefined };
  const loadAfter = load();
  const row = (name: string) => neighbours.find((r) => r.contender === name);
  const ceiling = row(CEILING);
  const ours = row(OURS);
  const polite = row(POLITE);
  const idleP99 = median(neighbours.map((r) => r.idle.p99Ms));
  const summary = {
    secrets: quick ? 1000 : 5000,
    guardQuotaMiB: quick ? 64 : 128,
    guardCompactionSeconds: quick ? 5 : 10,
    ceilingRate: ceiling?.perSecond,
    defaultRate: ours?.perSecond,
    politeRate: polite?.perSecond,
    probeP99IdleMs: idleP99,
    probeP99DefaultMs: ours?.during.p99Ms,
    probeP99PoliteMs: polite?.during.p99Ms,
    probeP99OneLinerMs: row(ONE_LINER)?.during.p99Ms,
    probeP99MigratorMs: row(MIGRATOR)?.during.p99Ms,
    probeP99DefaultApfMs: row(OURS_APF)?.during.p99Ms,
    probeP99PoliteApfMs: row(POLITE_APF)?.during.p99Ms,
    etcdAlarmOneLiner: guard.find((g) => g.contender.startsWith('vendor'))?.alarm,
    etcdAlarmGuardOff: guard.find((g) => g.contender.includes('guard off'))?.alarm,
    etcdAlarmOurs: guard.find((g) => g.contender.includes('guard on'))?.alarm,
    politeTargetMet:
      polite && ceiling
        ? polite.during.p99Ms <= 2 * polite.idle.p99Ms && polite.perSecond >= ceiling.perSecond / 2
        : undefined,
    neighbours,
    guard,
    growth,
    functionJob: job,
    loadAverage: { before: loadBefore, after: loadAfter },
  };
  return { markdown: render(summary, neighbours, guard, growth, job), summary };
}

const CEILING = 'saturating writer (ceiling)';
const OURS = 'ack-kms-sentinel reencrypt (default)';
const POLITE = 'ack-kms-sentinel reencrypt --polite';
const ONE_LINER = 'vendor one-liner (kubectl)';
const MIGRATOR = 'in-tree storage version migrator';
const OURS_APF = 'ack-kms-sentinel reencrypt (default), deploy/apf.yaml applied';
const POLITE_APF = 'ack-kms-sentinel reencrypt --polite, deploy/apf.yaml applied';

/** The one-liner of the vendor document, as the suite's identity (or another kubeconfig). */
const oneLiner = (kubectl: string, kubeconfig: string) =>
  measure(
    'bash',
    [
      '-c',
      `set -o pipefail; "$KUBECTL" get secrets --all-namespaces -o json | "$KUBECTL" annotate --overwrite -f - encryption-key-rotation-time="$(date -u +'%Y-%m-%dT%H:%M:%S.%N%z')" > /dev/null`,
    ],
    { ...process.env, KUBECTL: kubectl, KUBECONFIG: kubeconfig },
  );

const ourSweep = (cli: string, kubeconfig: string, keyVersion: string, extra: string[] = []) =>
  measure(node, [
    cli,
    'reencrypt',
    '--kubeconfig',
    kubeconfig,
    '--key-version',
    keyVersion,
    '--json',
    ...extra,
  ]);

async function neighboursTable(log: Log, tools: Tools, kubectl: string, quick: boolean) {
  const count = quick ? 1000 : 5000;
  const sandbox = await startSandbox({
    ...(tools.kcm
      ? {
          apiServerArgs: [
            '--feature-gates=StorageVersionMigrator=true',
            '--runtime-config=storagemigration.k8s.io/v1beta1=true',
          ],
        }
      : {}),
  });
  const { info } = sandbox;
  const rk = info.restrictedKubeconfig;
  const admin = new KubeHttp(kubeConfigOf(info.kubeconfig));
  const probe = new Probe(await probeTarget(sandbox));
  const rows: NeighbourRow[] = [];
  try {
    log(`neighbours: seeding ${count} small Secrets`);
    await seed(sandbox, 'nb', count, 64);
    probe.start();
    const idleMs = quick ? 4000 : 8000;
    const run = async (contender: string, go: () => Promise<Measurement>) => {
      const i0 = performance.now();
      await sleep(idleMs);
      const idle = probe.window(i0, performance.now());
      log(`neighbours: ${contender}…`);
      const t0 = performance.now();
      const m = await go();
      const during = probe.window(t0, performance.now());
      if (m.exitCode !== 0) throw new Error(`${contender} failed (${m.exitCode}): ${m.stderr.slice(-800)}`);
      const report = lastJson(m.stdout);
      const fc = findKey(report, 'flowControl') as
        | { flowSchemaUid: string; priorityLevelUid: string }
        | undefined;
      const names = fc ? await flowControlNames(admin, fc) : undefined;
      const concurrency = findKey(report, 'concurrency') as NeighbourRow['concurrency'];
      const row: NeighbourRow = {
        contender,
        wallMs: Math.round(m.wallMs),
        perSecond: Math.round((count * 1000) / m.wallMs),
        idle,
        during,
        ...(names?.priorityLevel ? { priorityLevel: names.priorityLevel } : {}),
        ...(concurrency?.max ? { concurrency } : {}),
      };
      rows.push(row);
      log(
        `neighbours: ${contender}: ${row.perSecond}/s; probe p99 ${idle.p99Ms} ms idle, ${during.p99Ms} ms during (${names?.priorityLevel ?? 'level not reported'})`,
      );
    };
    await run(CEILING, () => measure(node, [tools.saturate, rk, '64']));
    await run(OURS, () => ourSweep(tools.cli, rk, 'nb-default'));
    await run(POLITE, () => ourSweep(tools.cli, rk, 'nb-polite', ['--polite']));
    await run(ONE_LINER, () => oneLiner(kubectl, rk));
    if (tools.kcm) {
      const kcm = tools.kcm;
      await rotateAndAdopt(info.control);
      await run(MIGRATOR, () => migrator(tools.migrate, kcm, info.kubeconfig, info.caFile));
    } else log('neighbours: no kube-controller-manager built: the in-tree migrator is left out');
    await applyFlowControl(admin, [SENTINEL_USER]);
    await run(OURS_APF, () => ourSweep(tools.cli, rk, 'nb-default-apf'));
    await run(POLITE_APF, () => ourSweep(tools.cli, rk, 'nb-polite-apf', ['--polite']));
  } finally {
    probe.stop();
    admin.close();
    await sandbox.stop();
  }
  return rows;
}

/** The migrator's driver (bench/migrate.ts): its own exit code and output; the rate from its wall time. */
async function migrator(
  driver: string,
  kcm: string,
  kubeconfig: string,
  caFile: string,
): Promise<Measurement> {
  return measure(node, [driver, kcm, kubeconfig, caFile]);
}

async function guardDemo(log: Log, tools: Tools, kubectl: string, quick: boolean): Promise<GuardRow[]> {
  const quotaBytes = (quick ? 64 : 128) * MiB;
  const share = 0.75;
  const scenarios: Array<{ contender: string; go: (rk: string) => Promise<Measurement> }> = [
    { contender: ONE_LINER, go: (rk) => oneLiner(kubectl, rk) },
    {
      contender: 'ack-kms-sentinel reencrypt, guard off (--no-etcd-guard)',
      go: (rk) => ourSweep(tools.cli, rk, 'space-off', ['--no-etcd-guard']),
    },
    {
      contender: `ack-kms-sentinel reencrypt, guard on (--etcd-quota ${quotaBytes / MiB}Mi --etcd-quota-share ${share})`,
      go: (rk) =>
        ourSweep(tools.cli, rk, 'space-on', [
          '--etcd-quota',
          `${quotaBytes / MiB}Mi`,
          '--etcd-quota-share',
          `${share}`,
        ]),
    },
  ];
  const rows: GuardRow[] = [];
  for (const s of scenarios) {
    const options: SandboxOptions = { etcdQuotaBytes: quotaBytes, compactionIntervalSeconds: quick ? 5 : 10 };
    const sandbox = await startSandbox(options);
    try {
      const before = await fillTo(sandbox, quotaBytes * 0.65, log);
      log(`etcd guard: ${s.contender} at ${(before / MiB).toFixed(0)} MiB of ${quotaBytes / MiB} MiB…`);
      const m = await s.go(sandbox.info.restrictedKubeconfig);
      const alarm = (await etcdAlarms(sandbox.info.etcd)).includes('NOSPACE');
      const after = await etcdDbSize(sandbox.info.etcd);
      const pauses = findKey(lastJson(m.stdout), 'etcdSpace') as { pauses?: number } | undefined;
      rows.push({
        contender: s.contender,
        exitCode: m.exitCode,
        alarm,
        sizeBeforeMiB: round1(before / MiB),
        sizeAfterMiB: round1(after / MiB),
        ...(pauses?.pauses === undefined ? {} : { pauses: pauses.pauses }),
        wallMs: Math.round(m.wallMs),
      });
      log(
        `etcd guard: ${s.contender}: exit ${m.exitCode}, NOSPACE ${alarm}, ${(after / MiB).toFixed(1)} MiB`,
      );
    } finally {
      await sandbox.stop();
    }
  }
  return rows;
}

async function growthTable(log: Log, tools: Tools, quick: boolean) {
  const steps = quick ? [1000, 3000] : [5000, 20000, 50000];
  const helm = quick ? 500 : 5000;
  // A quota above the growth of 5,000 Helm-sized Secrets written twice (etcd's default of 2 GiB is not).
  const sandbox = await startSandbox({ etcdQuotaBytes: 8 * 1024 * MiB });
  const rows: GrowthRow[] = [];
  let job: JobFigures | undefined;
  try {
    let seeded = 0;
    const sweepRow = async (set: string, secrets: number, tag: string) => {
      const before = await etcdDbSize(sandbox.info.etcd);
      const m = await ourSweep(tools.cli, sandbox.info.restrictedKubeconfig, tag, ['--no-etcd-guard']);
      if (m.exitCode !== 0) throw new Error(`sweep of ${set} failed: ${m.stderr.slice(-800)}`);
      const after = await etcdDbSize(sandbox.info.etcd);
      const row = {
        set,
        secrets,
        wallMs: Math.round(m.wallMs),
        perSecond: Math.round((secrets * 1000) / m.wallMs),
        peakRssMiB: Math.round(m.peakRssBytes / MiB),
        etcdGrowthMiB: round1((after - before) / MiB),
      };
      rows.push(row);
      log(
        `growth: ${set}: ${row.perSecond}/s, ${row.wallMs} ms, ${row.peakRssMiB} MiB RSS, etcd +${row.etcdGrowthMiB} MiB`,
      );
    };
    for (const target of steps) {
      log(`growth: seeding to ${target} small Secrets`);
      await seed(sandbox, `g${target}`, target - seeded, 64);
      seeded = target;
      await sweepRow(`${target.toLocaleString('en')} small`, target, `growth-${target}`);
    }
    log(`growth: the function's job at ${seeded.toLocaleString('en')}`);
    job = await functionJobAt(sandbox.info.restrictedKubeconfig, seeded, log);
    const core = coreOf(sandbox.info.kubeconfig);
    for (const target of steps)
      for (let i = 0; i < NAMESPACES; i++)
        await core.deleteCollectionNamespacedSecret({ namespace: `g${target}-${i}` });
    log(`growth: seeding ${helm} Helm-sized Secrets`);
    await seed(sandbox, 'helm', helm, 100 * 1024);
    await sweepRow(`${helm.toLocaleString('en')} Helm-sized (~100 KiB)`, helm, 'growth-helm');
  } finally {
    await sandbox.stop();
  }
  return { growth: rows, job };
}

const NAMESPACES = 10;

const kubeConfigOf = (path: string) => {
  const kc = new KubeConfig();
  kc.loadFromString(readFileSync(path, 'utf8'));
  return kc;
};
const coreOf = (path: string) => kubeConfigOf(path).makeApiClient(CoreV1Api);

/** `count` Secrets of `bytes` (incompressible, as Helm's gzipped releases are) over ten namespaces of `prefix`. */
async function seed(sandbox: Sandbox, prefix: string, count: number, bytes: number): Promise<void> {
  const core = coreOf(sandbox.info.kubeconfig);
  for (let i = 0; i < NAMESPACES; i++)
    await core.createNamespace({ body: { metadata: { name: `${prefix}-${i}` } } }).catch(() => undefined);
  const payload = randomBytes(bytes).toString('base64');
  const base = Date.now().toString(36);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const i = next++;
        await core.createNamespacedSecret({
          namespace: `${prefix}-${i % NAMESPACES}`,
          body: {
            metadata: { name: `sh.helm.release.v1.app-${base}-${i}.v1`, labels: { owner: 'helm' } },
            type: 'helm.sh/release.v1',
            data: { release: payload },
          },
        });
      }
    }),
  );
}

/** Helm-sized Secrets until etcd's database holds `bytes` (read from etcd itself: the API server's figure lags). */
async function fillTo(sandbox: Sandbox, bytes: number, log: Log): Promise<number> {
  let size = await etcdDbSize(sandbox.info.etcd);
  let batch = 0;
  while (size < bytes) {
    await seed(sandbox, `fill${batch++}`, 40, 100 * 1024);
    size = await etcdDbSize(sandbox.info.etcd);
  }
  log(`etcd guard: filled to ${(size / MiB).toFixed(1)} MiB with ${batch * 40} Helm-sized Secrets`);
  return size;
}

/** etcd's own view (the bench reads etcd directly, as its evidence reader does): dbSize and the alarms. */
async function etcdDbSize(etcd: string): Promise<number> {
  const res = await fetch(`${etcd}/v3/maintenance/status`, { method: 'POST', body: '{}' });
  return Number(((await res.json()) as { dbSize?: string }).dbSize ?? 0);
}

async function etcdAlarms(etcd: string): Promise<string[]> {
  const res = await fetch(`${etcd}/v3/maintenance/alarm`, { method: 'POST', body: '{}' });
  const body = (await res.json()) as { alarms?: Array<{ alarm?: string }> };
  return (body.alarms ?? []).map((a) => a.alarm ?? '');
}

/** The probe's identity: a ServiceAccount allowed to read ConfigMaps in its namespace, and a token for it. */
async function probeTarget(sandbox: Sandbox) {
  const kc = kubeConfigOf(sandbox.info.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const namespace = 'probe';
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  for (let i = 0; i < 20; i++)
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: `settings-${i}` }, data: { 'config.yaml': 'replicas: 3\n'.repeat(20) } },
    });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'probe' } } });
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'probe' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'probe' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'probe' },
      subjects: [{ kind: 'ServiceAccount', name: 'probe', namespace }],
    },
  });
  const token = await core.createNamespacedServiceAccountToken({
    namespace,
    name: 'probe',
    body: { spec: { audiences: [], expirationSeconds: 7200 } },
  });
  return {
    server: sandbox.info.apiServer,
    token: token.status?.token ?? '',
    caFile: sandbox.info.caFile,
    namespace,
    configMap: 'settings-0',
  };
}

async function rotateAndAdopt(control: string): Promise<void> {
  const rotated = (await (await fetch(`${control}/kms/rotate`, { method: 'POST' })).json()) as {
    keyId: string;
  };
  await fetch(`${control}/kms/wait-adoption`, {
    method: 'POST',
    body: JSON.stringify({ keyId: rotated.keyId }),
  });
}

function lastJson(stdout: string): unknown {
  const lines = stdout.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i] ?? '');
    } catch {
      // not JSON
    }
  }
  return undefined;
}

/** The first value under `key`, anywhere in a JSON value. */
function findKey(value: unknown, key: string): unknown {
  if (!value || typeof value !== 'object') return undefined;
  if (key in value) return (value as Record<string, unknown>)[key];
  for (const v of Object.values(value)) {
    const found = findKey(v, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};
const round1 = (x: number) => Math.round(x * 10) / 10;

function render(
  summary: Record<string, unknown>,
  neighbours: NeighbourRow[],
  guard: GuardRow[],
  growth: GrowthRow[],
  job: JobFigures | undefined,
): string {
  const load = summary.loadAverage as { before: string; after: string };
  return [
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; load average (1, 5, 15 min) ${load.before} at the start, ${load.after} at the end.`,
    '',
    table(
      [
        'contender (5,000 small Secrets)',
        'Secrets/s',
        'wall (ms)',
        'probe p50 idle → during (ms)',
        'probe p99 idle → during (ms)',
        'p99 ×',
        'APF level',
      ],
      neighbours.map((r) => [
        r.contender,
        r.perSecond,
        r.wallMs,
        `${r.idle.p50Ms} → ${r.during.p50Ms}`,
        `${r.idle.p99Ms} → ${r.during.p99Ms}`,
        `${round1(r.during.p99Ms / Math.max(0.1, r.idle.p99Ms))}×`,
        r.priorityLevel,
      ]),
    ),
    '',
    table(
      [
        'etcd guard (quota 128 MiB, compaction every 10 s, filled to ~65%)',
        'exit',
        'NOSPACE alarm',
        'etcd before → after (MiB)',
        'pauses',
        'wall (ms)',
      ],
      guard.map((g) => [
        g.contender,
        g.exitCode ?? 'signal',
        g.alarm ? 'raised' : 'none',
        `${g.sizeBeforeMiB} → ${g.sizeAfterMiB}`,
        g.pauses,
        g.wallMs,
      ]),
    ),
    '',
    table(
      ['growth (one cluster)', 'wall (ms)', 'Secrets/s', 'peak RSS (MiB)', 'etcd growth (MiB)'],
      growth.map((g) => [g.set, g.wallMs, g.perSecond, g.peakRssMiB, g.etcdGrowthMiB]),
    ),
    '',
    job
      ? `The function's job at ${job.secrets.toLocaleString('en')} Secrets (FC timeout ${job.timeoutSeconds} s, margin ${job.marginSeconds} s, polite as the function's default): ${job.invocations} invocation(s), ${job.handOvers} hand-over(s), ${Math.round(job.wallMs / 1000)} s, every Secret written exactly once: ${job.writtenOnce ? 'yes' : 'no'} (${job.writes} writes, ${job.distinct} distinct).`
      : '',
  ].join('\n');
}

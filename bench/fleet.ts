import { type FleetFigures, runFleet } from '../sandbox/fleet';
import { startSandbox } from '../sandbox/index';

/**
 * `npm run bench -- --fleet`: 1,000 ACK clusters sharing 10 KMS keys on the emulator (sandbox/fleet.ts), the
 * figures the issue names: an idle tick (time, cloud calls), a rotation of one key used by 100 clusters (time,
 * jobs started, duplicates) and an audit of 100 clusters.
 */
export const FLEET = { clusters: 1000, keys: 10, auditClusters: 100 };

/** The audit function's timeout in s.yaml: the audit of a hundred clusters must end well within it. */
const AUDIT_TIMEOUT_MS = 600_000;

export async function runFleetBench(log: (line: string) => void): Promise<FleetFigures> {
  log('starting the sandbox');
  const sandbox = await startSandbox();
  try {
    return await runFleet(sandbox, { ...FLEET, progress: log });
  } finally {
    await sandbox.stop();
  }
}

export function renderFleet(f: FleetFigures): string {
  const mark = (ok: boolean) => (ok ? '✓' : '✗');
  const rows: Array<[string, string, string, boolean]> = [
    ['tick with no rotation', `${(f.idleTickMs / 1000).toFixed(1)} s`, '≤ 10 s', f.idleTickMs <= 10_000],
    [
      'cloud API calls of that tick',
      `${f.idleTickCloudCalls} (${Object.entries(f.idleTickCloudCallsByService)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
      '≤ 50',
      f.idleTickCloudCalls <= 50,
    ],
    [
      'cluster requests of that tick',
      String(f.idleTickClusterRequests),
      '0',
      f.idleTickClusterRequests === 0,
    ],
    [
      `rotation of one key used by ${f.rotatedClusters} clusters: 2 overlapping ticks + a duplicated event`,
      `${(f.rotationTickMs / 1000).toFixed(1)} s`,
      '≤ 60 s',
      f.rotationTickMs <= 60_000,
    ],
    ['jobs started', String(f.jobsStarted), String(f.rotatedClusters), f.jobsStarted === f.rotatedClusters],
    ['jobs started twice', String(f.duplicateJobs), '0', f.duplicateJobs === 0],
    [
      `audit of ${f.auditClusters} clusters (one report of ${f.auditReported})`,
      `${(f.auditMs / 1000).toFixed(1)} s`,
      `≤ ${AUDIT_TIMEOUT_MS / 1000} s (the function's timeout)`,
      f.auditMs <= AUDIT_TIMEOUT_MS && f.auditReported === f.auditClusters,
    ],
  ];
  return [
    `${f.clusters} clusters, ${f.keys} KMS keys (first tick, every cluster read once: ${(f.firstTickMs / 1000).toFixed(1)} s)`,
    '',
    '| scenario | measured | target | |',
    '|---|---|---|---|',
    ...rows.map(([what, measured, target, ok]) => `| ${what} | ${measured} | ${target} | ${mark(ok)} |`),
  ].join('\n');
}

import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * How long the CLI takes to start as users start it: wall time of `--help` (and of `reencrypt` up to its first
 * flag check, which loads what a sweep loads), median of RUNS fresh processes, beside npx's own cost for a
 * bin it finds at once (`npx tsc --version`), measured the same way in the same run.
 */
export interface CliStartRow {
  what: string;
  medianMs: number;
}

const RUNS = 10;

function medianWallMs(command: string, args: string[], cwd: string, before?: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    before?.();
    const started = performance.now();
    spawnSync(command, args, { cwd, stdio: 'ignore' });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return Math.round(((times[RUNS / 2 - 1] ?? 0) + (times[RUNS / 2] ?? 0)) / 2);
}

/** `root`: a checkout after `npm ci` (its bundle built by `prepare`). */
export function measureCliStart(root = join(__dirname, '..')): CliStartRow[] {
  const bin = join(root, 'bin', 'ack-kms-sentinel.js');
  const dist = join(root, 'dist');
  const node = process.execPath;
  // `reencrypt` without --key-version stops at its first check, after loading everything a sweep loads.
  const reencrypt = [bin, 'reencrypt', '--kubeconfig', '/nonexistent'];
  const drop = () => {
    for (const f of readdirSync(dist)) if (f.endsWith('.v8cache')) rmSync(join(dist, f), { force: true });
  };
  const measured = (what: string, command: string, args: string[], before?: () => void): CliStartRow => ({
    what,
    medianMs: medianWallMs(command, args, root, before),
  });
  const rows = [
    measured(
      '`ack-kms-sentinel reencrypt` up to its first flag check (no code cache: a first start after a build)',
      node,
      reencrypt,
      drop,
    ),
  ];
  // Writes the caches again.
  for (const args of [[bin, '--help'], reencrypt]) spawnSync(node, args, { cwd: root, stdio: 'ignore' });
  rows.push(
    measured('`ack-kms-sentinel --help` (the bin)', node, [bin, '--help']),
    measured('`ack-kms-sentinel reencrypt` up to its first flag check (the bin)', node, reencrypt),
    measured('`npx ack-kms-sentinel --help` in the checkout', 'npx', ['ack-kms-sentinel', '--help']),
    measured('baseline: `npx tsc --version` (npx and a bin it finds at once)', 'npx', ['tsc', '--version']),
    measured('baseline: `node -e 0`', node, ['-e', '0']),
  );
  return rows;
}

export function renderCliStart(rows: CliStartRow[]): string {
  return [
    'CLI start (wall time, median of 10 fresh processes):',
    '',
    '| start | median (ms) |',
    '|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.medianMs} |`),
  ].join('\n');
}

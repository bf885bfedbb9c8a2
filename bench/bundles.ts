import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildSync } from 'esbuild';

/**
 * Each function bundle's size and its cold start: the CPU time (user + system) of `require()` of the bundle
 * in a fresh node process, median of 10, beside baselines bundled and measured the same way.
 */
export interface BundleRow {
  fn: string;
  bytes: number;
  gzipBytes: number;
  coldRequireCpuMs: number;
}

const RUNS = 10;

/** CPU ms of one `require(file)` in a fresh process (`check` may exit non-zero on a wrong export). */
function oneColdRequireCpuMs(file: string, check = ''): number {
  const out = execFileSync(process.execPath, [
    '-e',
    `const c=process.cpuUsage();const m=require(${JSON.stringify(file)});const d=process.cpuUsage(c);${check}console.log((d.user+d.system)/1000)`,
  ]);
  return Number(out.toString().trim());
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return Math.round(((sorted[RUNS / 2 - 1] ?? 0) + (sorted[RUNS / 2] ?? 0)) / 2);
};

/**
 * Median of RUNS cold requires of each file, in rounds: every round loads every file once, each round in
 * a turned order, so a noisy moment on a shared machine falls on all of them alike rather than on one.
 */
export function coldRequireCpuMsInRounds(files: Array<{ file: string; check?: string }>): number[] {
  const samples = files.map(() => [] as number[]);
  for (let round = 0; round < RUNS; round++)
    for (let k = 0; k < files.length; k++) {
      const i = (k + round) % files.length;
      const { file, check } = files[i] as { file: string; check?: string };
      (samples[i] as number[]).push(oneColdRequireCpuMs(file, check));
    }
  return samples.map(median);
}

const HANDLER_CHECK = "if(typeof m.handler!=='function')process.exit(3);";

/** Each function bundle and each baseline, measured in the same rounds (`coldRequireCpuMsInRounds`). */
export function measureColdStarts(
  dist = join(__dirname, '..', 'dist', 'functions'),
  root = join(__dirname, '..'),
): { bundles: BundleRow[]; baselines: Array<{ what: string; coldRequireCpuMs: number }> } {
  const fns = readdirSync(dist).map((fn) => ({ fn, file: join(dist, fn, 'index.js') }));
  const baselines = buildBaselines(root);
  const times = coldRequireCpuMsInRounds([
    ...fns.map(({ file }) => ({ file, check: HANDLER_CHECK })),
    ...baselines.map(({ file }) => ({ file })),
  ]);
  return {
    bundles: fns.map(({ fn, file }, i) => ({
      fn,
      bytes: statSync(file).size,
      gzipBytes: gzipSync(readFileSync(file)).length,
      coldRequireCpuMs: times[i] ?? 0,
    })),
    baselines: baselines.map(({ what }, i) => ({ what, coldRequireCpuMs: times[fns.length + i] ?? 0 })),
  };
}

const BASELINES: Record<string, string> = {
  'an empty module': 'export {};',
  '`@kubernetes/client-node` whole': "export * from '@kubernetes/client-node';",
  '`KubeConfig` + `CoreV1Api` only': "export { CoreV1Api, KubeConfig } from '@kubernetes/client-node';",
  '`zod`': "export * from 'zod';",
  '`@alicloud/fc20230330`': "export * from '@alicloud/fc20230330';",
};

/** The baselines, each bundled as the functions are (minified CommonJS). */
function buildBaselines(root: string): Array<{ what: string; file: string }> {
  const dir = join(root, 'dist', 'baselines');
  mkdirSync(dir, { recursive: true });
  return Object.entries(BASELINES).map(([what, source], i) => {
    const entry = join(dir, `entry-${i}.ts`);
    const outfile = join(dir, `baseline-${i}.js`);
    writeFileSync(entry, source);
    buildSync({
      entryPoints: [entry],
      absWorkingDir: root,
      nodePaths: [join(root, 'node_modules')],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      minify: true,
      external: ['proxy-agent'],
      outfile,
      logLevel: 'silent',
    });
    return { what, file: outfile };
  });
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export function renderBundles(
  rows: BundleRow[],
  baselines: Array<{ what: string; coldRequireCpuMs: number }> = [],
): string {
  return [
    `Function bundles (\`npm run build\`, esbuild, minified CommonJS); cold start = CPU time of \`require()\` in a fresh process, median of ${RUNS} (taken in rounds: each round loads every bundle and baseline once):`,
    '',
    '| bundle | size | gzip | cold start (CPU) |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.fn} | ${mib(r.bytes)} | ${mib(r.gzipBytes)} | ${r.coldRequireCpuMs} ms |`),
    ...baselines.map((b) => `| baseline: ${b.what} | | | ${b.coldRequireCpuMs} ms |`),
  ].join('\n');
}

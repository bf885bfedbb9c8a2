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

/** CPU ms of one `require(file)` in a fresh process, median of RUNS. */
export function coldRequireCpuMs(file: string, check = ''): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = execFileSync(process.execPath, [
      '-e',
      `const c=process.cpuUsage();const m=require(${JSON.stringify(file)});const d=process.cpuUsage(c);${check}console.log((d.user+d.system)/1000)`,
    ]);
    times.push(Number(out.toString().trim()));
  }
  times.sort((a, b) => a - b);
  return Math.round(((times[RUNS / 2 - 1] ?? 0) + (times[RUNS / 2] ?? 0)) / 2);
}

export function measureBundles(dist = join(__dirname, '..', 'dist', 'functions')): BundleRow[] {
  return readdirSync(dist).map((fn) => {
    const file = join(dist, fn, 'index.js');
    return {
      fn,
      bytes: statSync(file).size,
      gzipBytes: gzipSync(readFileSync(file)).length,
      coldRequireCpuMs: coldRequireCpuMs(file, "if(typeof m.handler!=='function')process.exit(3);"),
    };
  });
}

const BASELINES: Record<string, string> = {
  'an empty module': 'export {};',
  '`@kubernetes/client-node` whole': "export * from '@kubernetes/client-node';",
  '`KubeConfig` + `CoreV1Api` only': "export { CoreV1Api, KubeConfig } from '@kubernetes/client-node';",
  '`zod`': "export * from 'zod';",
  '`@alicloud/fc20230330`': "export * from '@alicloud/fc20230330';",
};

/** The baselines, each bundled as the functions are (minified CommonJS) and measured the same way. */
export function measureBaselines(
  root = join(__dirname, '..'),
): Array<{ what: string; coldRequireCpuMs: number }> {
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
    return { what, coldRequireCpuMs: coldRequireCpuMs(outfile) };
  });
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export function renderBundles(
  rows: BundleRow[],
  baselines: ReturnType<typeof measureBaselines> = [],
): string {
  return [
    `Function bundles (\`npm run build\`, esbuild, minified CommonJS); cold start = CPU time of \`require()\` in a fresh process, median of ${RUNS}:`,
    '',
    '| bundle | size | gzip | cold start (CPU) |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.fn} | ${mib(r.bytes)} | ${mib(r.gzipBytes)} | ${r.coldRequireCpuMs} ms |`),
    ...baselines.map((b) => `| baseline: ${b.what} | | | ${b.coldRequireCpuMs} ms |`),
  ].join('\n');
}

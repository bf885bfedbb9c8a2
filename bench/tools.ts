import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { binDir } from '../sandbox/k8s-bins';

/** The contenders as the benchmark runs them: our CLI as installed, the saturating writer, the migrator's driver. */
export interface Tools {
  cli: string;
  saturate: string;
  migrate: string;
  /** kube-controller-manager, when built (the in-tree migrator's contender). */
  kcm?: string;
}

const root = join(__dirname, '..');

/**
 * Bundles the CLI and the bench's own tools into a directory outside dist/ (a build during the run, by a test or
 * the CLI launcher, must not delete the contenders). `buildKcm`: builds kube-controller-manager once if missing.
 */
export function prepareTools(log: (line: string) => void, buildKcm: boolean): Tools {
  log('bundling the CLI');
  const built = spawnSync('bash', [join(root, 'deploy', 'build.sh')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('bundling the CLI failed');
  const toolDir = mkdtempSync(join(tmpdir(), 'ack-kms-sentinel-bench-'));
  for (const tool of ['saturate', 'migrate'])
    spawnSync(
      join(root, 'node_modules', '.bin', 'esbuild'),
      [
        join(__dirname, `${tool}.ts`),
        '--bundle',
        '--platform=node',
        '--target=node20',
        `--outfile=${join(toolDir, `${tool}.js`)}`,
        '--log-level=warning',
      ],
      { stdio: 'inherit', cwd: root },
    );
  if (buildKcm) {
    log('building kube-controller-manager (once) for the in-tree migrator');
    const kcmBuilt = spawnSync(
      'bash',
      [join(root, 'sandbox', 'k8s-bins', 'build.sh'), 'kube-controller-manager'],
      {
        stdio: 'inherit',
      },
    );
    if (kcmBuilt.status !== 0) throw new Error('building kube-controller-manager failed');
  }
  const kcm = join(binDir(), 'kube-controller-manager');
  // The CLI as `npx ack-kms-sentinel` starts it (the bin, its launcher and the bundle, laid out as installed).
  const { BUNDLES } = require('../bin/launch.js') as { BUNDLES: string[] };
  for (const file of ['bin/ack-kms-sentinel.js', 'bin/launch.js', ...BUNDLES.map((b) => `dist/${b}`)]) {
    mkdirSync(join(toolDir, dirname(file)), { recursive: true });
    copyFileSync(join(root, file), join(toolDir, file));
  }
  return {
    cli: join(toolDir, 'bin', 'ack-kms-sentinel.js'),
    saturate: join(toolDir, 'saturate.js'),
    migrate: join(toolDir, 'migrate.js'),
    ...(existsSync(kcm) ? { kcm } : {}),
  };
}

/** A Markdown table of the results, an empty cell shown as `–`. */
export const markdownTable = (head: string[], body: Array<Array<string | number | undefined>>): string =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...body.map((r) => `| ${r.map((c) => c ?? '–').join(' | ')} |`),
  ].join('\n');

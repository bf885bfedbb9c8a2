import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { missingVariables } from './check';

/**
 * One RAM role per function, each with only what that function's code calls (deploy/ram/<function>.json).
 * The policies are templates: `<region>`, `<account-id>`, `<cluster-ids>`, `<trail-project>`,
 * `<trail-logstore>` and `<report-bucket>` are filled in by `npm run deploy:policies` from the same
 * variables s.yaml reads; `<cluster-ids>` becomes one ARN per id of SENTINEL_CLUSTER_IDS (or `*`).
 */
const root = join(__dirname, '..');

export const FUNCTIONS = ['rotation-watch', 'reencrypt', 'trail-verify', 'audit', 'webhook'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

export interface Statement {
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
}
export interface Policy {
  Version: '1';
  Statement: Statement[];
}

export const policyTemplate = (fn: FunctionName): Policy =>
  JSON.parse(readFileSync(join(root, 'deploy/ram', `${fn}.json`), 'utf8')) as Policy;

/**
 * Policies no function gets by default (deploy/ram/optional/<name>.json): `audit-remediate`, attached to the
 * audit function's role when SENTINEL_AUDIT_REMEDIATE is set; `rotation-watch-enable`, attached to
 * rotation-watch's role to let the webhook turn encryption on (`POST /v1/clusters/{id}/encryption`; without it
 * CS refuses the switch and the webhook says so); `cli-encryption-admin`, for the person or
 * pipeline running `enable`, `disable` and `audit --fix`.
 */
export const OPTIONAL_POLICIES = {
  'audit-remediate': 'audit',
  'rotation-watch-enable': 'rotation-watch',
  'cli-encryption-admin': 'cli',
} as const;
export type OptionalPolicy = keyof typeof OPTIONAL_POLICIES;

export const optionalPolicy = (name: OptionalPolicy): Policy =>
  JSON.parse(readFileSync(join(root, 'deploy/ram/optional', `${name}.json`), 'utf8')) as Policy;

const inputsOf = new Map<string, string[]>();

/** Every input of a function's bundle (project sources and node_modules), as esbuild bundles it (once). */
export function bundleInputs(fn: FunctionName): string[] {
  return entryInputs(join('functions', fn, 'index.ts'));
}

/** Every input of what `entry` (relative to the checkout) bundles. */
export function entryInputs(entry: string): string[] {
  const known = inputsOf.get(entry);
  if (known) return known;
  const result = buildSync({
    entryPoints: [join(root, entry)],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    write: false,
    metafile: true,
    outfile: 'out.js',
    external: ['proxy-agent', 'lz4-napi'],
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile?.inputs ?? {});
  inputsOf.set(entry, inputs);
  return inputs;
}

/** The project's source files in a function's bundle: what its role must cover, and nothing else. */
export const functionSources = (fn: FunctionName): string[] =>
  bundleInputs(fn).filter((f) => /^(shared|functions)\//.test(f));

export function renderPolicy(
  fn: FunctionName | OptionalPolicy,
  env: Record<string, string | undefined>,
): Policy {
  const clusters = (env.SENTINEL_CLUSTER_IDS ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  const fill = (r: string): string[] => {
    const filled = r
      .replaceAll('<region>', env.SENTINEL_REGION ?? '*')
      .replaceAll('<account-id>', env.SENTINEL_ACCOUNT_ID ?? '*')
      .replaceAll('<trail-project>', env.SENTINEL_TRAIL_PROJECT ?? '*')
      .replaceAll('<trail-logstore>', env.SENTINEL_TRAIL_LOGSTORE ?? '*')
      .replaceAll('<report-bucket>', env.SENTINEL_REPORT_BUCKET || 'ack-kms-sentinel-reports');
    if (!filled.includes('<cluster-ids>')) return [filled];
    return clusters.length === 0
      ? [filled.replace('<cluster-ids>', '*')]
      : clusters.map((id) => filled.replace('<cluster-ids>', id));
  };
  const t =
    fn in OPTIONAL_POLICIES ? optionalPolicy(fn as OptionalPolicy) : policyTemplate(fn as FunctionName);
  return {
    ...t,
    Statement: t.Statement.map((statement) => ({ ...statement, Resource: statement.Resource.flatMap(fill) })),
  };
}

if (require.main === module) {
  // Never a policy with a wildcard where the account or region was meant.
  const missing = missingVariables(process.env);
  if (missing.length > 0) {
    process.stderr.write(`deploy:policies: ${missing.join('; ')}\n`);
    process.exit(1);
  }
  const out = join(root, 'dist/ram');
  mkdirSync(out, { recursive: true });
  for (const fn of FUNCTIONS) {
    writeFileSync(join(out, `${fn}.json`), `${JSON.stringify(renderPolicy(fn, process.env), null, 2)}\n`);
  }
  mkdirSync(join(out, 'optional'), { recursive: true });
  for (const name of Object.keys(OPTIONAL_POLICIES) as OptionalPolicy[]) {
    writeFileSync(
      join(out, 'optional', `${name}.json`),
      `${JSON.stringify(renderPolicy(name, process.env), null, 2)}\n`,
    );
  }
  process.stderr.write(
    `wrote ${FUNCTIONS.map((f) => `dist/ram/${f}.json`).join(', ')} and the optional policies in dist/ram/optional/\n`,
  );
}

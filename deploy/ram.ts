import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { roleName as functionRoleName } from '../shared/cluster/permissions';
import { defaultReportBucket } from '../shared/config';
import { missingVariables } from './check';

/**
 * One RAM role per function, each with only what that function's code calls (deploy/ram/<function>.json).
 * The policies are templates: `<region>`, `<account-id>`, `<cluster-ids>`, `<key-ids>`, `<trail-project>`,
 * `<trail-logstore>` and `<report-bucket>` are filled in (`npm run deploy:policies`, `npm run deploy:prepare`)
 * from the same variables s.yaml reads; `<cluster-ids>` becomes one ARN per id of SENTINEL_CLUSTER_IDS (or `*`
 * in the default policies). The optional policies write (turn encryption on, protect a key): they are
 * rendered only for clusters and keys named explicitly, never `*`.
 */
const root = join(__dirname, '..');

export const FUNCTIONS = ['rotation-watch', 'reencrypt', 'trail-verify', 'audit', 'webhook'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

/**
 * RAM names are global to the account while a deployment is regional: each role and policy name carries the
 * region, so a second region's deployment neither collides with nor rewrites the first's.
 */
export const roleName: (fn: FunctionName, region: string) => string = functionRoleName;
export const policyName = (name: FunctionName | OptionalPolicy, region: string): string =>
  `ack-kms-sentinel-${region}-${name}`;

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

/** The suite's bucket: SENTINEL_REPORT_BUCKET, or the account's own name in the region (as s.yaml defaults it). */
export const reportBucketOf = (env: Record<string, string | undefined>): string =>
  env.SENTINEL_REPORT_BUCKET?.trim() ||
  defaultReportBucket(env.SENTINEL_ACCOUNT_ID ?? '<account-id>', env.SENTINEL_REGION ?? '<region>');

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

const listOf = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

/**
 * The keys an optional policy may act on: SENTINEL_KMS_KEY_IDS and SENTINEL_CLUSTER_KEYS' keys, by id (RAM
 * authorizes a KMS call on the key's ARN, so an alias names nothing here).
 */
export function namedKeys(env: Record<string, string | undefined>): string[] {
  const ids = [
    ...listOf(env.SENTINEL_KMS_KEY_IDS),
    ...listOf(env.SENTINEL_CLUSTER_KEYS).map((pair) => pair.split('=')[1]?.trim() ?? ''),
  ]
    .map((k) => k.replace(/^acs:kms:[^:]*:[^:]*:key\//, ''))
    .filter((k) => k !== '' && !k.startsWith('alias/'));
  return [...new Set(ids)];
}

/** Why an optional policy cannot be rendered for `env` (it would grant on every cluster or key), if so. */
export function optionalScopeProblem(env: Record<string, string | undefined>): string | undefined {
  if (listOf(env.SENTINEL_CLUSTER_IDS).length === 0)
    return 'an optional policy names its clusters: set SENTINEL_CLUSTER_IDS (example: SENTINEL_CLUSTER_IDS=c8d3a1b2e4f5a6b7c8d9e0f1a2b3c4d5e)';
  if (namedKeys(env).length === 0)
    return 'an optional policy names its keys: set SENTINEL_KMS_KEY_IDS or SENTINEL_CLUSTER_KEYS (example: SENTINEL_KMS_KEY_IDS=key-hzz630494463ejqjx****)';
  return undefined;
}

export function renderPolicy(
  fn: FunctionName | OptionalPolicy,
  env: Record<string, string | undefined>,
): Policy {
  const clusters = listOf(env.SENTINEL_CLUSTER_IDS);
  const keys = namedKeys(env);
  const isOptional = fn in OPTIONAL_POLICIES;
  const scope = isOptional ? optionalScopeProblem(env) : undefined;
  if (scope) throw new Error(`${fn}: ${scope}`);
  const expand = (r: string, placeholder: string, values: string[]): string[] => {
    if (!r.includes(placeholder)) return [r];
    return values.length === 0 ? [r.replace(placeholder, '*')] : values.map((v) => r.replace(placeholder, v));
  };
  const fill = (r: string): string[] => {
    const filled = r
      .replaceAll('<region>', env.SENTINEL_REGION ?? '*')
      .replaceAll('<account-id>', env.SENTINEL_ACCOUNT_ID ?? '*')
      .replaceAll('<trail-project>', env.SENTINEL_TRAIL_PROJECT ?? '*')
      .replaceAll('<trail-logstore>', env.SENTINEL_TRAIL_LOGSTORE ?? '*')
      .replaceAll('<report-bucket>', reportBucketOf(env));
    return expand(filled, '<cluster-ids>', clusters).flatMap((r) => expand(r, '<key-ids>', keys));
  };
  const t = isOptional ? optionalPolicy(fn as OptionalPolicy) : policyTemplate(fn as FunctionName);
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
  const scope = optionalScopeProblem(process.env);
  if (scope) process.stderr.write(`deploy:policies: optional policies not written: ${scope}\n`);
  for (const name of scope ? [] : (Object.keys(OPTIONAL_POLICIES) as OptionalPolicy[])) {
    writeFileSync(
      join(out, 'optional', `${name}.json`),
      `${JSON.stringify(renderPolicy(name, process.env), null, 2)}\n`,
    );
  }
  process.stderr.write(
    `wrote ${FUNCTIONS.map((f) => `dist/ram/${f}.json`).join(', ')}${scope ? '' : ' and the optional policies in dist/ram/optional/'}\n`,
  );
}

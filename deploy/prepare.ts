/**
 * `npm run deploy:prepare`: everything s.yaml assumes exists, in one idempotent command through the official
 * SDKs, a dry run unless `--apply`: the five function roles and their policies (the optional ones when asked),
 * the reports bucket, the functions' logstore, the webhook's signing secret in KMS Secrets Manager. What it
 * cannot do (activate EventBridge, buy a KMS instance, create the ActionTrail trail) it checks where an API
 * allows, and names the console or CLI step. A second run changes nothing.
 */
import { CreatePolicyRequest, CreatePolicyVersionRequest, GetPolicyRequest } from '@alicloud/ram20150501';
import { credentialsFromDefaultChain } from '../shared/cloud/credentials';
import { loadConfig } from '../shared/config';
import { endpointUrl, Problem } from '../shared/config/settings';
import { missingVariables } from './check';
import { type PrepareClients, prepareClients } from './prepare-clients';
import { ensureAttached, ensureRole } from './prepare-ram';
import { bucketAndLogs, secretsAndChecks } from './prepare-resources';
import { absentOn, canonical, FC_TRUST, type PrepareOptions, type PrepareReport, Run } from './prepare-run';
import {
  FUNCTIONS,
  type FunctionName,
  OPTIONAL_POLICIES,
  type OptionalPolicy,
  policyName,
  renderPolicy,
  roleName,
} from './ram';

export type { Outcome, PrepareOptions, PrepareReport, Step } from './prepare-run';
export { prepareClients };

async function ensurePolicy(run: Run, name: string, document: string): Promise<void> {
  const { ram } = run.c;
  const found = await absentOn(
    () => ram.getPolicy(new GetPolicyRequest({ policyName: name, policyType: 'Custom' })),
    ['EntityNotExist.Policy'],
  );
  if (!found)
    return run.change('RAM policy', name, 'create', () =>
      ram.createPolicy(
        new CreatePolicyRequest({
          policyName: name,
          policyDocument: document,
          description: 'ack-kms-sentinel',
        }),
      ),
    );
  if (canonical(found.body?.defaultPolicyVersion?.policyDocument) === canonical(document))
    return run.same('RAM policy', name);
  // A new default version; RAM keeps five, so the oldest non-default one goes.
  return run.change('RAM policy', name, 'update', () =>
    ram.createPolicyVersion(
      new CreatePolicyVersionRequest({
        policyName: name,
        policyDocument: document,
        setAsDefault: true,
        rotateStrategy: 'DeleteOldestNonDefaultVersionWhenLimitExceeded',
      }),
    ),
  );
}

async function roles(run: Run): Promise<void> {
  const env = run.options.env;
  const optional = run.options.optional ?? [];
  for (const fn of FUNCTIONS) {
    const role = roleName(fn, run.region);
    const exists = await ensureRole(run, role, {
      trust: FC_TRUST,
      description: 'ack-kms-sentinel: Function Compute assumes it for one function',
      updateTrust: true,
    });
    const policies: Array<FunctionName | OptionalPolicy> = [
      fn,
      ...optional.filter((o) => OPTIONAL_POLICIES[o] === fn),
    ];
    for (const p of policies) {
      const name = policyName(p, run.region);
      await ensurePolicy(run, name, JSON.stringify(renderPolicy(p, env)));
      await ensureAttached(run, role, { name, type: 'Custom' }, exists);
    }
  }
  if (optional.includes('cli-encryption-admin')) {
    const name = policyName('cli-encryption-admin', run.region);
    await ensurePolicy(run, name, JSON.stringify(renderPolicy('cli-encryption-admin', env)));
  }
}

/** Runs every step (a dry run changes nothing) and returns what was, or would be, done. */
export async function prepare(options: PrepareOptions, clients: PrepareClients): Promise<PrepareReport> {
  const run = new Run(options, clients);
  await roles(run);
  await bucketAndLogs(run);
  await secretsAndChecks(run);
  return { dryRun: options.dryRun, steps: run.steps, ready: !run.steps.some((s) => s.outcome === 'missing') };
}

/** The report as a person reads it: one line per step, and each missing one's exact step. */
export function formatReport(report: PrepareReport): string {
  const lines = report.steps.map(
    (s) =>
      `  ${s.outcome.padEnd(12)} ${s.resource}: ${s.name}${s.todo ? `\n               → ${s.todo}` : ''}`,
  );
  const head = report.dryRun
    ? 'deploy:prepare (dry run: nothing changed; run `npm run deploy:prepare -- --apply` to apply)'
    : 'deploy:prepare';
  const tail = report.ready
    ? 'ready for `s deploy` (after `ack-kms-sentinel grant --all` once the functions exist)'
    : 'not ready: do the steps marked missing, then run it again';
  return `${head}\n${lines.join('\n')}\n${tail}\n`;
}

function optionalFlag(argv: string[]): OptionalPolicy[] {
  const i = argv.indexOf('--optional');
  if (i < 0) return [];
  const names = (argv[i + 1] ?? '').split(',').filter(Boolean);
  for (const n of names)
    if (!(n in OPTIONAL_POLICIES))
      throw new Error(`--optional: "${n}" is not one of ${Object.keys(OPTIONAL_POLICIES).join(', ')}`);
  return names as OptionalPolicy[];
}

async function main(): Promise<void> {
  const missing = missingVariables(process.env);
  if (missing.length > 0) throw new Error(missing.join('; '));
  const config = loadConfig(process.env);
  const ram = process.env.SENTINEL_ENDPOINT_RAM ? endpointUrl(process.env.SENTINEL_ENDPOINT_RAM) : undefined;
  if (ram instanceof Problem) throw new Error(`SENTINEL_ENDPOINT_RAM: ${ram.message}`);
  const clients = prepareClients({ ...config, ...(ram ? { ram } : {}) }, await credentialsFromDefaultChain());
  const report = await prepare(
    { dryRun: !process.argv.includes('--apply'), env: process.env, optional: optionalFlag(process.argv) },
    clients,
  );
  process.stdout.write(formatReport(report));
  if (!report.ready) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`deploy:prepare: ${err.message}\n`);
    process.exitCode = 1;
  });
}

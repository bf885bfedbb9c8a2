import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { type ValueOptions, valueProblems } from './check-values';
import { networkMode } from './network';

/**
 * The deployment as Serverless Devs and FC 3.0 will see it, checked before anything is deployed
 * (`npm run deploy:check`, the s.yaml's pre-deploy action) and in CI (test/unit/deploy.test.ts):
 * 1. the required variables are set (each named, with an example);
 * 2. s.yaml parses with Serverless Devs' own parser (`@serverless-devs/parse-spec`, what `s deploy` runs);
 * 3. each function's resolved props are valid against the fc3 component's own schema (vendored in
 *    deploy/fc3/, see its SOURCE.md), each trigger against the definition of its type (the upstream
 *    `anyOf` over trigger configs accepts any object);
 * 4. the rules fc3 leaves unchecked: logConfig on every function and never the logstore an SLS trigger
 *    reads, memory and vCPU, environment size, trigger names, timer expressions, EventBridge delivery;
 * 5. the values: each function's resolved environment through the functions' own loader, no literal secret
 *    unless allowed (deploy/check-values.ts), and the network mode and its variables (deploy/network.ts).
 */
const root = join(__dirname, '..');

export const REQUIRED: Record<string, string> = {
  SENTINEL_REGION: 'cn-hangzhou',
  SENTINEL_ACCOUNT_ID: '1234567890123456',
  SENTINEL_TRAIL_PROJECT: 'actiontrail-1234567890123456',
  SENTINEL_TRAIL_LOGSTORE: 'actiontrail_ack-kms-sentinel',
};

/** FC 3.0: the environment variables of a function, keys and values, in bytes. */
export const MAX_ENVIRONMENT_BYTES = 4096;

export interface Trigger {
  triggerName: string;
  triggerType: string;
  sourceArn?: string;
  triggerConfig: Record<string, unknown>;
}

export interface FunctionProps {
  functionName: string;
  memorySize?: number;
  cpu?: number;
  logConfig?: { project?: string; logstore?: string } | string;
  environmentVariables?: Record<string, string>;
  triggers?: Trigger[];
  [key: string]: unknown;
}

export interface Resolved {
  functions: Array<{ name: string; props: FunctionProps }>;
  actions: Array<{ hookType: string; value: string }>;
}

export function missingVariables(env: Record<string, string | undefined>): string[] {
  return Object.entries(REQUIRED)
    .filter(([name]) => !env[name]?.trim())
    .map(([name, example]) => `${name} is not set (example: export ${name}=${example})`);
}

/** Parses s.yaml with Serverless Devs' parser under `env` (it reads process.env as it compiles). */
export async function parseSpec(env: Record<string, string | undefined>, file = join(root, 's.yaml')) {
  const saved = { ...process.env };
  const wanted = { ...env };
  for (const k of Object.keys(process.env)) if (k.startsWith('SENTINEL_')) delete process.env[k];
  Object.assign(process.env, wanted);
  try {
    // A CommonJS module whose default export is the class; required, not imported, for its types.
    const ParseSpec = (require('@serverless-devs/parse-spec') as { default: ParseSpecClass }).default;
    const spec = await new ParseSpec(file, { argv: ['deploy'], logger: { debug() {}, info() {} } }).start();
    return {
      functions: spec.steps.map((step) => ({
        name: step.projectName,
        props: step.props,
      })),
      actions: (spec.yaml?.actions ?? []) as Resolved['actions'],
    } satisfies Resolved;
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

type ParseSpecClass = new (
  file: string,
  options: { argv: string[]; logger: unknown },
) => {
  start(): Promise<{
    steps: Array<{ projectName: string; props: FunctionProps }>;
    yaml?: { actions?: Resolved['actions'] };
  }>;
};

interface Fc3Schema {
  definitions: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

let validators: { props: ValidateFunction; trigger: Record<string, ValidateFunction> } | undefined;

/**
 * fc3's schema, with the one place it is stricter than the FC API relaxed: an SLS trigger's
 * `jobConfig.maxRetryTime` and `triggerInterval` are integers in the API (the generated schema says string).
 */
function fc3Validators() {
  if (validators) return validators;
  const schema = JSON.parse(readFileSync(join(root, 'deploy/fc3/schema.json'), 'utf8')) as Fc3Schema;
  const log = schema.definitions.ILogTriggerConfig as {
    properties: { jobConfig: { properties: Record<string, { type: unknown }> } };
  };
  for (const p of Object.values(log.properties.jobConfig.properties)) p.type = ['string', 'integer'];
  const ajv = new Ajv({ allErrors: true, strict: false });
  const byType: Record<string, string> = {
    timer: 'ITimerTriggerConfig',
    http: 'IHttpTriggerConfig',
    log: 'ILogTriggerConfig',
    eventbridge: 'IEventBridge',
  };
  const { $schema: _s, ...rest } = schema;
  ajv.addSchema(rest, 'fc3');
  const trigger: Record<string, ValidateFunction> = {};
  for (const [type, def] of Object.entries(byType)) {
    const v = ajv.getSchema(`fc3#/definitions/${def}`);
    if (v) trigger[type] = v;
  }
  const props = ajv.getSchema('fc3');
  if (!props) throw new Error('deploy/fc3/schema.json did not compile');
  validators = { props, trigger };
  return validators;
}

const CRON = /^(CRON_TZ=[A-Za-z_/+-]+ )?(\S+ ){5}\S+$|^@every \d+[hms]$/;
const TRIGGER_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;

function functionRules(name: string, props: FunctionProps, trailLogstore: string | undefined): string[] {
  const problems: string[] = [];
  const at = (what: string) => `${name}: ${what}`;
  const mem = props.memorySize;
  const cpu = props.cpu;
  if (mem === undefined || cpu === undefined) {
    problems.push(at('memorySize and cpu must both be set (without cpu, fc3 gives 0.35 vCPU to 512 MB)'));
  } else {
    if (mem % 64 !== 0) problems.push(at(`memorySize ${mem} is not a multiple of 64 MB`));
    if (Math.abs(cpu * 20 - Math.round(cpu * 20)) > 1e-9)
      problems.push(at(`cpu ${cpu} is not a multiple of 0.05`));
    const gbPerCpu = mem / 1024 / cpu;
    if (gbPerCpu < 1 || gbPerCpu > 4)
      problems.push(at(`cpu ${cpu} with ${mem} MB: vCPU:GB must be between 1:1 and 1:4`));
  }
  const log = props.logConfig;
  if (!log || typeof log === 'string' || !log.project || !log.logstore) {
    problems.push(at('logConfig must name a project and a logstore, or `s logs` shows nothing'));
  } else if (log.logstore === trailLogstore) {
    problems.push(
      at('logConfig must not be the trail logstore: the function would feed its own logs to trail-verify'),
    );
  }
  const envBytes = Object.entries(props.environmentVariables ?? {}).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(String(v)),
    0,
  );
  if (envBytes > MAX_ENVIRONMENT_BYTES)
    problems.push(at(`environment variables take ${envBytes} bytes, over FC's ${MAX_ENVIRONMENT_BYTES}`));
  for (const t of props.triggers ?? []) problems.push(...triggerRules(name, t));
  return problems;
}

function triggerRules(fn: string, t: Trigger): string[] {
  const problems: string[] = [];
  const at = (what: string) => `${fn}: trigger ${t.triggerName}: ${what}`;
  if (!TRIGGER_NAME.test(t.triggerName))
    problems.push(at('the name must match [A-Za-z_][A-Za-z0-9_-]{0,127}'));
  const c = t.triggerConfig;
  if (t.triggerType === 'timer' && !CRON.test(String(c.cronExpression ?? '')))
    problems.push(at('cronExpression must have six fields (seconds first), or be @every <n>[hms]'));
  if (t.triggerType === 'log') {
    const source = (c.sourceConfig as { logstore?: string } | undefined)?.logstore;
    const sink = c.logConfig as { project?: string; logstore?: string } | undefined;
    if (sink?.logstore && sink.logstore === source)
      problems.push(
        at('logConfig is where the trigger writes its own logs: it must not be the logstore it reads'),
      );
  }
  if (t.triggerType === 'eventbridge') {
    const delivery = (c.eventSinkConfig as { deliveryOption?: { eventSchema?: string } } | undefined)
      ?.deliveryOption;
    if (delivery?.eventSchema !== 'CloudEvents')
      problems.push(
        at('eventSinkConfig.deliveryOption.eventSchema must be CloudEvents (RawData is not parsed)'),
      );
    const batch = (c.runOptions as { batchWindow?: { CountBasedWindow?: number } } | undefined)?.batchWindow;
    if (batch && (batch.CountBasedWindow ?? 1) > 1)
      problems.push(at('batching delivers several events per invocation; the handler takes one CloudEvent'));
  }
  return problems;
}

/** Every problem of a resolved deployment that s.yaml and the settings show (empty when there is none). */
export function checkResolved(
  r: Resolved,
  env: Record<string, string | undefined>,
  options: ValueOptions = {},
): string[] {
  const { props: validateProps, trigger } = fc3Validators();
  const problems: string[] = [...valueProblems(r, options), ...networkMode(r).problems];
  for (const { name, props } of r.functions) {
    const { triggers, ...rest } = props;
    if (!validateProps(rest))
      problems.push(
        ...(validateProps.errors ?? []).map((e) => `${name}: fc3 schema: ${e.instancePath} ${e.message}`),
      );
    for (const t of triggers ?? []) {
      const v = trigger[t.triggerType];
      if (!v) problems.push(`${name}: trigger ${t.triggerName}: type ${t.triggerType} is not checked here`);
      else if (!v(t.triggerConfig))
        problems.push(
          ...(v.errors ?? []).map(
            (e) => `${name}: trigger ${t.triggerName}: fc3 schema: ${e.instancePath} ${e.message}`,
          ),
        );
    }
    problems.push(...functionRules(name, props, env.SENTINEL_TRAIL_LOGSTORE));
  }
  if (!r.actions.some((a) => a.hookType === 'pre' && /deploy:check/.test(a.value) && /build/.test(a.value)))
    problems.push('s.yaml: a pre-deploy action must run `npm run deploy:check && npm run build`');
  problems.push(...timeZoneProblems(env));
  return problems;
}

/** FC reads `CRON_TZ=` with the IANA names; a wrong one would fail at deploy time, or later. */
function timeZoneProblems(env: Record<string, string | undefined>): string[] {
  const zone = env.SENTINEL_AUDIT_TIME_ZONE?.trim();
  if (!zone) return [];
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return [];
  } catch {
    return [
      `SENTINEL_AUDIT_TIME_ZONE: "${zone}" is not an IANA time zone (example: SENTINEL_AUDIT_TIME_ZONE=Asia/Shanghai)`,
    ];
  }
}

export interface DeploymentCheck {
  problems: string[];
  /** Which network path the deployment uses, in one line (empty when s.yaml could not be resolved). */
  network: string;
}

/** The whole check: missing variables and every problem of the resolved s.yaml, all at once. */
export async function checkDeploymentReport(
  env: Record<string, string | undefined>,
  options: ValueOptions = {},
): Promise<DeploymentCheck> {
  const missing = missingVariables(env);
  const resolved = await parseSpec(env);
  const network = networkMode(resolved).summary;
  const problems = checkResolved(resolved, env, options).filter(
    (p) => !missing.some((m) => m.startsWith(p.split(':')[0] ?? '')),
  );
  return { problems: [...missing, ...problems], network };
}

export async function checkDeployment(
  env: Record<string, string | undefined>,
  options: ValueOptions = {},
): Promise<string[]> {
  return (await checkDeploymentReport(env, options)).problems;
}

if (require.main === module) {
  const allowLiteralSecrets =
    process.argv.includes('--allow-literal-secrets') || process.env.DEPLOY_ALLOW_LITERAL_SECRETS === 'true';
  checkDeploymentReport(process.env, { allowLiteralSecrets }).then(
    ({ problems, network }) => {
      process.stderr.write(`deploy check: ${network}\n`);
      if (problems.length === 0) {
        // What was checked, and only that: the cloud side is deploy:prepare's, the clusters' is grant's.
        process.stderr.write(
          "deploy check: s.yaml passes Serverless Devs' parser, fc3's schema and the functions' own settings " +
            'loader for every function; not checked here: the cloud resources it names (npm run deploy:prepare), ' +
            "the clusters' grants (ack-kms-sentinel grant) and that the API servers are reachable\n",
        );
        return;
      }
      process.stderr.write(`deploy check failed:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
      process.exitCode = 1;
    },
    (err: Error) => {
      process.stderr.write(`deploy check: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}

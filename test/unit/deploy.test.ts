import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { RAM_ACTION_OF } from '../../shared/cloud/ram-actions';
import { rbacObjects } from '../../shared/cluster/rbac';
import { loadConfig } from '../../shared/config';
import { tsSources } from '../helpers/sources';

/** Offline validation of the deployment: s.yaml, the bundles it deploys, the RAM policy and the RBAC. */
const root = join(__dirname, '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

interface Props {
  functionName: string;
  code: string;
  handler: string;
  environmentVariables: string | Record<string, string>;
  triggers?: Array<{ triggerType: string; triggerConfig: Record<string, unknown> }>;
}
interface SYaml {
  vars: { environment: Record<string, string> };
  resources: Record<string, { props: Props }>;
}

/** Resolves `${vars.x}` and `${env('X')}` the way Serverless Devs does, with example values for the env. */
function render(s: SYaml, env: Record<string, string>): SYaml {
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? v.replace(/\$\{env\('([A-Z_]+)'\)\}/g, (_, k: string) => env[k] ?? '')
      : Array.isArray(v)
        ? v.map(walk)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v;
  const withEnv = walk(s) as SYaml;
  for (const r of Object.values(withEnv.resources)) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the Serverless Devs variable, verbatim
    if (r.props.environmentVariables === '${vars.environment}')
      r.props.environmentVariables = withEnv.vars.environment;
  }
  return withEnv;
}

const EXAMPLE_ENV = {
  SENTINEL_REGION: 'cn-hangzhou',
  SENTINEL_ACCOUNT_ID: '1234567890123456',
  SENTINEL_TRAIL_PROJECT: 'actiontrail-1234567890123456',
  SENTINEL_TRAIL_LOGSTORE: 'actiontrail_ack',
  SENTINEL_NOTIFY_CHANNELS: '[{"type":"slack","url":"https://hooks.slack.com/services/T/B/X"}]',
  SENTINEL_WEBHOOK_SECRET: 'w'.repeat(40),
};

describe('s.yaml', () => {
  const s = parse(read('s.yaml')) as SYaml;

  beforeAll(() => {
    execFileSync('bash', [join(root, 'deploy/build.sh')], { stdio: 'ignore' });
  }, 120_000);

  it('matches the schema of the parts we use, with each trigger config checked against its type', () => {
    const ajv = new Ajv({ allErrors: true });
    const validate = ajv.compile(JSON.parse(read('deploy/s.schema.json')));
    expect(validate(s), ajv.errorsText(validate.errors)).toBe(true);
    // The schema catches what the upstream one lets through: an eventbridge trigger without its filter.
    const broken = structuredClone(s);
    const trigger = broken.resources['rotation-watch']?.props.triggers?.[1];
    if (trigger) delete trigger.triggerConfig.eventRuleFilterPattern;
    expect(validate(broken)).toBe(false);
    expect(ajv.errorsText(validate.errors)).toContain('eventRuleFilterPattern');
  });

  it('deploys every function, each handler resolving to a built entry', () => {
    const names = Object.values(s.resources)
      .map((r) => r.props.functionName)
      .sort();
    expect(names).toEqual([
      'ack-kms-sentinel-audit',
      'ack-kms-sentinel-reencrypt',
      'ack-kms-sentinel-rotation-watch',
      'ack-kms-sentinel-trail-verify',
      'ack-kms-sentinel-webhook',
    ]);
    for (const { props } of Object.values(s.resources)) {
      const [file, exported] = props.handler.split('.');
      const entry = join(root, props.code, `${file}.js`);
      const loaded = execFileSync(process.execPath, [
        '-e',
        `process.stdout.write(typeof require(${JSON.stringify(entry)})[${JSON.stringify(exported)}])`,
      ]).toString();
      expect(loaded, props.functionName).toBe('function');
    }
  });

  it('sets every required setting, and the settings load', () => {
    const rendered = render(s, EXAMPLE_ENV);
    for (const { props } of Object.values(rendered.resources)) {
      const env = props.environmentVariables as Record<string, string>;
      const config = loadConfig(env);
      expect(config.region).toBe('cn-hangzhou');
      expect(config.webhookSecret).toBeDefined();
      expect(env.SENTINEL_REENCRYPT_FUNCTION).toBe(rendered.resources.reencrypt?.props.functionName);
    }
  });

  it('filters EventBridge on the events the functions handle, as valid JSON patterns', () => {
    const patterns = Object.values(s.resources).flatMap((r) =>
      (r.props.triggers ?? [])
        .filter((t) => t.triggerType === 'eventbridge')
        .map((t) => JSON.parse(String(t.triggerConfig.eventRuleFilterPattern))),
    );
    const names = patterns.flatMap((p: { data: { eventName: string[] } }) => p.data.eventName);
    expect(names).toEqual(
      expect.arrayContaining([
        'CreateKeyVersion',
        'DisableKey',
        'ScheduleKeyDeletion',
        'UpdateRotationPolicy',
        'UpdateKMSEncryption',
      ]),
    );
  });
});

describe('least privilege', () => {
  it('the RAM policy grants exactly the actions the code calls', () => {
    const called = new Set<string>();
    for (const file of [
      ...tsSources(join(root, 'shared')),
      ...tsSources(join(root, 'functions')),
      ...tsSources(join(root, 'bin')),
    ]) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/kmsRpc\('([A-Za-z]+)'/g)) called.add(`kms:${m[1]}`);
      for (const m of text.matchAll(/csRoa\(\s*'([A-Za-z0-9]+)'/g)) called.add(`cs:${m[1]}`);
      for (const m of text.matchAll(/actionTrailRpc\('([A-Za-z]+)'/g)) called.add(`actiontrail:${m[1]}`);
      if (/\.invokeAsync\(/.test(text) && !file.endsWith('invoker.ts')) called.add('fc:InvokeFunction');
      if (/\/async-tasks\//.test(text)) called.add('fc:GetAsyncTask');
      if (/\.listTasks\(/.test(text) && !file.endsWith('invoker.ts')) called.add('fc:ListAsyncTasks');
      if (/action: 'PullLogs'/.test(text)) called.add('sls:PullLogs');
      if (/client\.put\(/.test(text) && /new OSS\(/.test(text)) called.add('oss:PutObject');
      if (/client\.get\(/.test(text) && /new OSS\(/.test(text)) called.add('oss:GetObject');
    }
    const needed = [...called].map((c) => RAM_ACTION_OF[c] ?? `unmapped ${c}`).sort();
    const policy = JSON.parse(read('deploy/ram-policy.json')) as { Statement: Array<{ Action: string[] }> };
    const granted = policy.Statement.flatMap((st) => st.Action).sort();
    expect(granted).toEqual(needed);
  });

  it('the RBAC manifest is the registry the sandbox applies', () => {
    const docs = parseAllDocuments(read('deploy/rbac.yaml')).map((d) => d.toJSON());
    const o = rbacObjects('ack-kms-sentinel');
    expect(docs.slice(1)).toEqual([o.clusterRole, o.clusterRoleBinding, o.role, o.roleBinding]);
  });
});

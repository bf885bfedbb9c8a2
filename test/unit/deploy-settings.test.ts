import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkDeploymentReport, parseSpec, type Resolved } from '../../deploy/check';
import { renderSpec } from '../../deploy/environment';
import { renderPolicy } from '../../deploy/ram';
import { clusterKubeconfig } from '../../shared/cluster/user-kubeconfig';
import { defaultReportBucket, FUNCTION_ONLY_SETTINGS, loadConfig, SETTING_TABLE } from '../../shared/config';

/** s.yaml's environment against the settings table, and deploy:check on values, secrets and the network. */
const root = join(__dirname, '..', '..');
const REQUIRED = {
  SENTINEL_REGION: 'cn-shanghai',
  SENTINEL_ACCOUNT_ID: '1234567890123456',
  SENTINEL_TRAIL_PROJECT: 'actiontrail-1234567890123456',
  SENTINEL_TRAIL_LOGSTORE: 'actiontrail_ack',
  SENTINEL_WEBHOOK_SECRET: 'kms-secret://ack-kms-sentinel-webhook',
};
const VPC = {
  SENTINEL_VPC_ID: 'vpc-bp1opxu1zkhn00gzv',
  SENTINEL_VSWITCH_IDS: 'vsw-bp1s1835zfhtj8iw5,vsw-bp1gp8wrqk0de5xms',
  SENTINEL_SECURITY_GROUP_ID: 'sg-bp1fg655nh68xyz9',
  SENTINEL_CLUSTER_ENDPOINT: 'private',
};

let defaults: Resolved;
beforeAll(async () => {
  defaults = await parseSpec(REQUIRED);
}, 60_000);

const envOf = (r: Resolved, fn: string) => r.functions.find((f) => f.name === fn)?.props.environmentVariables;

describe("s.yaml's environment is the settings table", () => {
  it('is what `npm run deploy:env` writes from the table (edit the table, then run it)', () => {
    const text = readFileSync(join(root, 's.yaml'), 'utf8');
    expect(renderSpec(text)).toBe(text);
  });

  it("gives every function every setting, and a function's own secret to that function alone", () => {
    const shared = SETTING_TABLE.map((s) => s.name).filter((n) => !(n in FUNCTION_ONLY_SETTINGS));
    const own = (fn: string) =>
      Object.keys(FUNCTION_ONLY_SETTINGS).filter((n) => FUNCTION_ONLY_SETTINGS[n] === fn);
    for (const { name, props } of defaults.functions) {
      const keys = Object.keys(props.environmentVariables ?? {}).sort();
      expect(keys, name).toEqual([...shared, ...own(name)].sort());
    }
    expect(own('webhook')).toEqual(['SENTINEL_WEBHOOK_SECRET']);
    expect(own('rotation-watch')).toEqual(['SENTINEL_STATE_SECRET']);
  });

  it("hides no default: an unset variable reaches the function as the loader's own default, or empty", () => {
    const env = envOf(defaults, 'audit') ?? {};
    for (const s of SETTING_TABLE) {
      if (s.name in REQUIRED || s.name === 'SENTINEL_REPORT_BUCKET' || s.name in FUNCTION_ONLY_SETTINGS)
        continue;
      expect(env[s.name], s.name).toBe(s.default ?? '');
    }
    // A fleet of ordinary ACK Pro clusters is discovered: no profile filter unless one is set.
    expect(loadConfig(env).clusters).toEqual({ mode: 'discover', regionId: 'cn-shanghai', tags: {} });
  });

  it("defaults the reports bucket to the account's own name in this region", () => {
    expect(envOf(defaults, 'audit')?.SENTINEL_REPORT_BUCKET).toBe(
      defaultReportBucket('1234567890123456', 'cn-shanghai'),
    );
    expect(defaultReportBucket('1234567890123456', 'cn-shanghai')).toBe(
      'ack-kms-sentinel-1234567890123456-cn-shanghai',
    );
  });

  it('passes each set variable through, and the audit schedule and time zone', async () => {
    const r = await parseSpec({
      ...REQUIRED,
      SENTINEL_CLUSTER_IDS: 'c8d3a1b2e4f5a6b7c8d9e0f1a2b3c4d5e',
      SENTINEL_FLEET_CONCURRENCY: '4',
      SENTINEL_AUDIT_SCHEDULE: '0 30 2 * * *',
      SENTINEL_AUDIT_TIME_ZONE: 'Europe/Berlin',
    });
    const config = loadConfig(envOf(r, 'rotation-watch') ?? {});
    expect(config.clusters).toEqual({ mode: 'explicit', clusterIds: ['c8d3a1b2e4f5a6b7c8d9e0f1a2b3c4d5e'] });
    expect(config.fleet.concurrency).toBe(4);
    const audit = r.functions.find((f) => f.name === 'audit')?.props.triggers?.[0];
    expect(audit?.triggerConfig.cronExpression).toBe('CRON_TZ=Europe/Berlin 0 30 2 * * *');
  });
});

describe('deploy:check judges values as the functions would', () => {
  it('rejects each bad value at once, naming the variable with an example', async () => {
    const { problems } = await checkDeploymentReport({
      ...REQUIRED,
      SENTINEL_WEBHOOK_SECRET: 'short',
      SENTINEL_NOTIFY_CHANNELS: 'notjson',
      SENTINEL_ACCOUNT_ID: 'abc',
      SENTINEL_CLUSTER_PROFILE: 'Foo',
      SENTINEL_REPORT_BUCKET: 'Bad_Bucket',
      SENTINEL_AUDIT_TIME_ZONE: 'Mars/Olympus',
    });
    for (const name of [
      'SENTINEL_WEBHOOK_SECRET',
      'SENTINEL_NOTIFY_CHANNELS',
      'SENTINEL_ACCOUNT_ID',
      'SENTINEL_CLUSTER_PROFILE',
      'SENTINEL_REPORT_BUCKET',
      'SENTINEL_AUDIT_TIME_ZONE',
    ])
      expect(
        problems.some((p) => p.startsWith(`${name}: `) && p.includes(`example: ${name}=`)),
        name,
      ).toBe(true);
    expect(problems.join('\n')).not.toContain('short');
  });

  it('requires the webhook secret', async () => {
    const { SENTINEL_WEBHOOK_SECRET: _w, ...rest } = REQUIRED;
    expect((await checkDeploymentReport(rest)).problems).toEqual([
      expect.stringMatching(/^SENTINEL_WEBHOOK_SECRET: is not set.*example:.*\[webhook\]$/),
    ]);
  });

  it('refuses a literal secret unless told otherwise, and accepts one kept in KMS', async () => {
    const literal = { ...REQUIRED, SENTINEL_WEBHOOK_SECRET: 'w'.repeat(64) };
    const refused = (await checkDeploymentReport(literal)).problems;
    expect(refused).toEqual([expect.stringMatching(/^SENTINEL_WEBHOOK_SECRET: a literal secret/)]);
    expect(refused.join('\n')).not.toContain('w'.repeat(64));
    expect((await checkDeploymentReport(literal, { allowLiteralSecrets: true })).problems).toEqual([]);
    expect((await checkDeploymentReport(REQUIRED)).problems).toEqual([]);
  });
});

describe('the network path', () => {
  it('says a deployment without a VPC uses the public endpoints', async () => {
    const report = await checkDeploymentReport(REQUIRED);
    expect(report.network).toMatch(/^network: public endpoints/);
    expect(defaults.functions[0]?.props.vpcConfig).toEqual({
      vpcId: '',
      vSwitchIds: [],
      securityGroupId: '',
    });
  });

  it('runs every function in the VPC the variables name, with private kubeconfigs', async () => {
    const report = await checkDeploymentReport({ ...REQUIRED, ...VPC });
    expect(report).toEqual({
      problems: [],
      network: expect.stringMatching(/^network: VPC vpc-bp1opxu1zkhn00gzv/),
    });
    const r = await parseSpec({ ...REQUIRED, ...VPC });
    for (const { props } of r.functions)
      expect(props.vpcConfig).toEqual({
        vpcId: VPC.SENTINEL_VPC_ID,
        vSwitchIds: VPC.SENTINEL_VSWITCH_IDS.split(','),
        securityGroupId: VPC.SENTINEL_SECURITY_GROUP_ID,
      });
  });

  it('refuses a half-set VPC and an endpoint that does not match the mode', async () => {
    const half = await checkDeploymentReport({ ...REQUIRED, SENTINEL_VPC_ID: VPC.SENTINEL_VPC_ID });
    expect(half.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'SENTINEL_CLUSTER_ENDPOINT',
      'SENTINEL_SECURITY_GROUP_ID',
      'SENTINEL_VSWITCH_IDS',
    ]);
    const outside = await checkDeploymentReport({ ...REQUIRED, SENTINEL_CLUSTER_ENDPOINT: 'private' });
    expect(outside.problems).toEqual([expect.stringMatching(/^SENTINEL_CLUSTER_ENDPOINT: "private"/)]);
  });

  it("asks CS for the API server's private address only in private mode", async () => {
    const asked: Array<Record<string, string> | undefined> = [];
    const csRoa = async (_a: string, _m: string, _p: string, query?: Record<string, string>) => {
      asked.push(query);
      return { config: 'apiVersion: v1' };
    };
    await clusterKubeconfig({ csRoa, clusterEndpoint: 'private' }, 'c1', 15);
    await clusterKubeconfig({ csRoa, clusterEndpoint: 'public' }, 'c1', 15);
    await clusterKubeconfig({ csRoa }, 'c1', 15);
    expect(asked.map((q) => q?.PrivateIpAddress)).toEqual(['true', undefined, undefined]);
  });
});

describe('the licence', () => {
  it('LICENSE is the licence package.json names', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { license: string };
    expect(pkg.license).toBe('Apache-2.0');
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(
      /^\s*Apache License\s+Version 2\.0, January 2004/,
    );
  });
});

describe('the optional policies', () => {
  const base = { SENTINEL_REGION: 'cn-hangzhou', SENTINEL_ACCOUNT_ID: '1234567890123456' };
  it.each(['audit-remediate', 'rotation-watch-enable', 'cli-encryption-admin'] as const)(
    '%s is rendered only for clusters and keys named explicitly, never *',
    (name) => {
      expect(() => renderPolicy(name, base)).toThrow(/SENTINEL_CLUSTER_IDS/);
      expect(() => renderPolicy(name, { ...base, SENTINEL_CLUSTER_IDS: 'c-one' })).toThrow(
        /SENTINEL_KMS_KEY_IDS/,
      );
      const policy = renderPolicy(name, {
        ...base,
        SENTINEL_CLUSTER_IDS: 'c-one,c-two',
        SENTINEL_KMS_KEY_IDS: 'key-aaa,alias/ack',
        SENTINEL_CLUSTER_KEYS: 'c-two=key-bbb',
      });
      const resources = policy.Statement.filter((st) => st.Action.some((a) => !a.startsWith('actiontrail:')))
        .flatMap((st) => st.Resource)
        .filter((r) => r !== '*');
      expect(
        resources.every((r) => !r.includes('*')),
        resources.join(' '),
      ).toBe(true);
      const keys = resources.filter((r) => r.includes(':key/'));
      expect(keys).toEqual(
        expect.arrayContaining([
          'acs:kms:cn-hangzhou:1234567890123456:key/key-aaa',
          'acs:kms:cn-hangzhou:1234567890123456:key/key-bbb',
        ]),
      );
      expect(keys.some((k) => k.includes('alias/'))).toBe(false);
    },
  );
});

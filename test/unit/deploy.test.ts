import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { checkDeployment, checkResolved, parseSpec, type Resolved } from '../../deploy/check';
import {
  bundleInputs,
  entryInputs,
  FUNCTIONS,
  type FunctionName,
  functionSources,
  OPTIONAL_POLICIES,
  type OptionalPolicy,
  optionalPolicy,
  policyTemplate,
  renderPolicy,
} from '../../deploy/ram';
import { rbacManifest } from '../../shared/cluster/rbac';
import { loadConfig } from '../../shared/config';
import { RAM_ACTION_OF } from '../helpers/ram-actions';

/** The node_modules packages in a function's bundle (as esbuild bundles it from the sources). */
const bundleModules = (fn: FunctionName): Set<string> =>
  new Set(
    bundleInputs(fn)
      .filter((f) => f.startsWith('node_modules/'))
      .map((f) =>
        f
          .split('/')
          .slice(1, f.startsWith('node_modules/@') ? 3 : 2)
          .join('/'),
      ),
  );

/** Offline validation of the deployment: s.yaml, the bundles it deploys, the RAM policy and the RBAC. */
const root = join(__dirname, '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

const REQUIRED_ONLY = {
  SENTINEL_REGION: 'cn-hangzhou',
  SENTINEL_ACCOUNT_ID: '1234567890123456',
  SENTINEL_TRAIL_PROJECT: 'actiontrail-1234567890123456',
  SENTINEL_TRAIL_LOGSTORE: 'actiontrail_ack',
};
const channel = (i: number) => ({
  type: 'webhook',
  name: `ops-${i}`,
  url: `https://hooks.example.com/kms/${i}/0123456789abcdef`,
  secret: 'channel-signing-secret-0123456789abcdef',
});
const ALL = {
  ...REQUIRED_ONLY,
  SENTINEL_LOG_PROJECT: 'ack-kms-sentinel-logs',
  SENTINEL_LOG_LOGSTORE: 'functions',
  SENTINEL_CLUSTER_PROFILE: 'Default',
  SENTINEL_REPORT_BUCKET: 'acme-kms-reports',
  SENTINEL_NOTIFY_CHANNELS: JSON.stringify([channel(1), channel(2)]),
  SENTINEL_WEBHOOK_SECRET: 'w'.repeat(64),
};

describe('s.yaml, as Serverless Devs parses it and fc3 validates it', () => {
  let requiredOnly: Resolved;
  let all: Resolved;
  beforeAll(async () => {
    execFileSync('bash', [join(root, 'deploy/build.sh')], { stdio: 'ignore' });
    requiredOnly = await parseSpec({ ...REQUIRED_ONLY, SENTINEL_NOTIFY_CHANNELS: '' });
    all = await parseSpec(ALL);
  }, 120_000);
  const fn = (r: Resolved, name: string) => {
    const found = r.functions.find((f) => f.name === name);
    if (!found) throw new Error(`no ${name}`);
    return found.props;
  };

  it('deploys as written with only the required variables (an empty optional one included), and with all', () => {
    expect(checkResolved(requiredOnly, REQUIRED_ONLY)).toEqual([]);
    expect(checkResolved(all, ALL)).toEqual([]);
    expect(fn(requiredOnly, 'webhook').environmentVariables?.SENTINEL_NOTIFY_CHANNELS).toBe('[]');
    expect(fn(all, 'audit').environmentVariables?.SENTINEL_REPORT_BUCKET).toBe('acme-kms-reports');
  });

  it('names a missing required variable, with an example, before parsing', async () => {
    const { SENTINEL_TRAIL_LOGSTORE: _l, ...rest } = REQUIRED_ONLY;
    expect(await checkDeployment(rest)).toEqual([
      'SENTINEL_TRAIL_LOGSTORE is not set (example: export SENTINEL_TRAIL_LOGSTORE=actiontrail_ack-kms-sentinel)',
    ]);
  });

  it.each([
    [
      "the trail logstore as a function's logConfig",
      (r: Resolved) => {
        fn(r, 'audit').logConfig = { project: 'p', logstore: REQUIRED_ONLY.SENTINEL_TRAIL_LOGSTORE };
      },
      /audit: logConfig must not be the trail logstore/,
    ],
    [
      'no logConfig',
      (r: Resolved) => {
        delete fn(r, 'webhook').logConfig;
      },
      /webhook: logConfig must name a project and a logstore/,
    ],
    [
      'an SLS trigger logging into the logstore it reads',
      (r: Resolved) => {
        const t = fn(r, 'trail-verify').triggers?.[0];
        if (t) t.triggerConfig.logConfig = { project: 'p', logstore: REQUIRED_ONLY.SENTINEL_TRAIL_LOGSTORE };
      },
      /trigger trail: logConfig is where the trigger writes its own logs/,
    ],
    [
      'memory not a multiple of 64 MB',
      (r: Resolved) => {
        fn(r, 'audit').memorySize = 1000;
      },
      /memorySize 1000 is not a multiple of 64/,
    ],
    [
      'vCPU:GB beyond 1:4',
      (r: Resolved) => {
        Object.assign(fn(r, 'audit'), { cpu: 0.25, memorySize: 2048 });
      },
      /vCPU:GB must be between 1:1 and 1:4/,
    ],
    [
      'no cpu',
      (r: Resolved) => {
        delete fn(r, 'reencrypt').cpu;
      },
      /reencrypt: memorySize and cpu must both be set/,
    ],
    [
      'environment variables over 4 KB',
      (r: Resolved) => {
        const env = fn(r, 'webhook').environmentVariables ?? {};
        env.SENTINEL_NOTIFY_CHANNELS = JSON.stringify(Array.from({ length: 40 }, (_, i) => channel(i)));
      },
      /webhook: environment variables take \d+ bytes, over FC's 4096/,
    ],
    [
      'a bad trigger name',
      (r: Resolved) => {
        const t = fn(r, 'audit').triggers?.[0];
        if (t) t.triggerName = '1-daily';
      },
      /trigger 1-daily: the name must match/,
    ],
    [
      'a five-field cron expression',
      (r: Resolved) => {
        const t = fn(r, 'audit').triggers?.[0];
        if (t) t.triggerConfig.cronExpression = '0 8 * * *';
      },
      /cronExpression must have six fields/,
    ],
    [
      'EventBridge in RawData mode',
      (r: Resolved) => {
        const t = fn(r, 'rotation-watch').triggers?.[1];
        if (t)
          t.triggerConfig.eventSinkConfig = {
            deliveryOption: { mode: 'event-driven', eventSchema: 'RawData' },
          };
      },
      /trigger kms-events: eventSinkConfig.deliveryOption.eventSchema must be CloudEvents/,
    ],
    [
      'EventBridge with batching',
      (r: Resolved) => {
        const t = fn(r, 'rotation-watch').triggers?.[2];
        if (t)
          t.triggerConfig.runOptions = {
            mode: 'event-driven',
            batchWindow: { CountBasedWindow: 10, TimeBasedWindow: 5 },
          };
      },
      /trigger cs-events: batching delivers several events/,
    ],
    [
      "an EventBridge trigger without its filter (fc3's own definition)",
      (r: Resolved) => {
        const t = fn(r, 'rotation-watch').triggers?.[1];
        if (t) delete t.triggerConfig.eventRuleFilterPattern;
      },
      /trigger kms-events: fc3 schema: {2}must have required property 'eventRuleFilterPattern'/,
    ],
    [
      'a timeout fc3 refuses',
      (r: Resolved) => {
        fn(r, 'reencrypt').timeout = 0;
      },
      /reencrypt: fc3 schema: \/timeout must be >= 1/,
    ],
    [
      'no pre-deploy action',
      (r: Resolved) => {
        r.actions.length = 0;
      },
      /a pre-deploy action must run `npm run deploy:check && npm run build`/,
    ],
  ] as const)('refuses %s', (_name, breakIt, expected) => {
    const broken = structuredClone(all);
    breakIt(broken);
    expect(checkResolved(broken, ALL).join('\n')).toMatch(expected);
  });

  it('says how many notification channels fit in the 4 KB of environment', () => {
    const base = fn(all, 'webhook').environmentVariables ?? {};
    const fits = (n: number) =>
      checkResolved(
        {
          ...all,
          functions: [
            {
              name: 'webhook',
              props: {
                ...fn(all, 'webhook'),
                environmentVariables: {
                  ...base,
                  SENTINEL_NOTIFY_CHANNELS: JSON.stringify(Array.from({ length: n }, (_, i) => channel(i))),
                },
              },
            },
          ],
        },
        ALL,
      ).length === 0;
    let n = 0;
    while (fits(n + 1)) n++;
    // README: "about 20 webhook channels fit; keep more in KMS Secrets Manager (kms-secret://…)".
    expect(n).toBeGreaterThanOrEqual(15);
    expect(n).toBeLessThan(40);
  });

  it('gives each function its own RAM role', () => {
    expect(all.functions.map((f) => [f.name, f.props.role])).toEqual(
      all.functions.map((f) => [
        f.name,
        `acs:ram::${ALL.SENTINEL_ACCOUNT_ID}:role/ack-kms-sentinel-${f.name}`,
      ]),
    );
    expect(all.functions.map((f) => f.name).sort()).toEqual([...FUNCTIONS].sort());
  });

  it('deploys every function, each handler resolving to a built entry', () => {
    const names = all.functions.map((f) => f.props.functionName).sort();
    expect(names).toEqual([
      'ack-kms-sentinel-audit',
      'ack-kms-sentinel-reencrypt',
      'ack-kms-sentinel-rotation-watch',
      'ack-kms-sentinel-trail-verify',
      'ack-kms-sentinel-webhook',
    ]);
    for (const { props } of all.functions) {
      const [file, exported] = String(props.handler).split('.');
      const entry = join(root, String(props.code), `${file}.js`);
      const loaded = execFileSync(process.execPath, [
        '-e',
        `process.stdout.write(typeof require(${JSON.stringify(entry)})[${JSON.stringify(exported)}])`,
      ]).toString();
      expect(loaded, props.functionName).toBe('function');
    }
  });

  it('sets every required setting, and the settings load', () => {
    for (const { props } of all.functions) {
      const config = loadConfig(props.environmentVariables ?? {});
      expect(config.region).toBe('cn-hangzhou');
      // The signing secret is in the webhook's settings alone.
      if (props.functionName === 'ack-kms-sentinel-webhook') expect(config.webhookSecret).toBeDefined();
      else expect(props.environmentVariables?.SENTINEL_WEBHOOK_SECRET).toBeUndefined();
      expect(config.trail).toEqual({
        project: ALL.SENTINEL_TRAIL_PROJECT,
        logstore: ALL.SENTINEL_TRAIL_LOGSTORE,
      });
      expect(props.environmentVariables?.SENTINEL_REENCRYPT_FUNCTION).toBe(fn(all, 'reencrypt').functionName);
    }
    for (const { props } of requiredOnly.functions)
      expect(() => loadConfig(props.environmentVariables ?? {})).not.toThrow();
  });

  it('filters EventBridge on the events the functions handle, as valid JSON patterns', () => {
    const patterns = all.functions.flatMap(({ props }) =>
      (props.triggers ?? [])
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
  /** The RAM actions a set of source files calls (each SDK call pattern of the code, mapped by the registry). */
  function calledActions(files: string[]): string[] {
    const called = new Set<string>();
    for (const file of files) {
      const text = readFileSync(join(root, file), 'utf8');
      for (const m of text.matchAll(/kmsRpc\('([A-Za-z]+)'/g)) called.add(`kms:${m[1]}`);
      for (const m of text.matchAll(/csRoa\(\s*'([A-Za-z0-9]+)'/g)) called.add(`cs:${m[1]}`);
      for (const m of text.matchAll(/actionTrailRpc\('([A-Za-z]+)'/g)) called.add(`actiontrail:${m[1]}`);
      if (file.endsWith('invoker.ts')) continue;
      if (/\.invokeAsync\(|\.invokeSync\(/.test(text)) called.add('fc:InvokeFunction');
      if (/\.listTasks\(/.test(text)) called.add('fc:ListAsyncTasks');
      if (/action: 'PullLogs'/.test(text)) called.add('sls:PullLogs');
      if (/client\.put\(/.test(text)) called.add('oss:PutObject');
      if (/client\.get\(/.test(text)) called.add('oss:GetObject');
    }
    return [...called].map((c) => RAM_ACTION_OF[c] ?? `unmapped ${c}`).sort();
  }

  const actionsOf = (p: { Statement: Array<{ Action: string[] }> }) => p.Statement.flatMap((st) => st.Action);

  it.each(FUNCTIONS)(
    'the %s role grants exactly the actions its bundle calls (opt-in writes in its optional policy only)',
    (fn) => {
      const optional = (Object.entries(OPTIONAL_POLICIES) as Array<[OptionalPolicy, string]>)
        .filter(([, owner]) => owner === fn)
        .flatMap(([name]) => actionsOf(optionalPolicy(name)));
      const granted = actionsOf(policyTemplate(fn));
      expect(
        granted.filter((a) => optional.includes(a)),
        'opt-in actions stay out of the default role',
      ).toEqual([]);
      expect([...granted, ...optional].sort()).toEqual(calledActions(functionSources(fn)));
    },
  );

  it('the optional policy for enable, disable and audit --fix grants exactly what those commands call', () => {
    const sources = ['bin/enable-command.ts', 'bin/disable-command.ts', 'bin/audit-command.ts']
      .flatMap((entry) => entryInputs(entry))
      .filter((f) => /^(shared|bin)\//.test(f));
    const called = calledActions([...new Set(sources)]).filter((a) => !a.startsWith('unmapped'));
    expect(actionsOf(optionalPolicy('cli-encryption-admin')).sort()).toEqual(called);
    expect(called).toEqual(expect.arrayContaining(['cs:UpdateKMSEncryption', 'kms:SetDeletionProtection']));
  });

  it.each(FUNCTIONS)(
    'the %s bundle holds no typed KMS or CS client, and a Kubernetes client only where it reads a cluster',
    (fn) => {
      const modules = bundleModules(fn);
      expect(modules.has('@alicloud/cs20151215'), 'the typed CS client (about 1 MB)').toBe(false);
      expect(modules.has('@alicloud/kms20160120'), 'the typed KMS client').toBe(false);
      expect(modules.has('@kubernetes/client-node')).toBe(!['webhook', 'trail-verify'].includes(fn));
    },
  );

  it.each(FUNCTIONS)(
    'the %s deployment stands alone: what its bundle loads on first use ships beside it',
    (fn) => {
      // As FC unpacks it: the function's folder alone, far from this checkout's node_modules.
      const dir = mkdtempSync(join(tmpdir(), `deploy-${fn}-`));
      cpSync(join(root, 'dist', 'functions', fn), dir, { recursive: true });
      const vendorDir = join(root, 'dist', 'vendor');
      const vendored = readdirSync(vendorDir, { recursive: true, withFileTypes: true })
        .filter((e) => e.name === 'package.json')
        .map((e) => relative(vendorDir, e.parentPath));
      const needed = vendored.filter((p) => bundleModules(fn).has(p));
      expect(needed, 'every function reaches FC through its SDK').toContain('@alicloud/fc20230330');
      // And every path into them the bundle requires (a deep one, such as client-node's dist/config.js).
      const bundle = readFileSync(join(dir, 'index.js'), 'utf8');
      const paths = [...bundle.matchAll(/require\("(@[^"/]+\/[^"/]+|[^"@./][^"/]*)(\/[^"]+)?"\)/g)]
        .filter((m) => vendored.includes(m[1] ?? '') && m[2])
        .map((m) => `${m[1]}${m[2]}`);
      if (bundleModules(fn).has('@kubernetes/client-node'))
        expect(paths).toContain('@kubernetes/client-node/dist/config.js');
      const out = execFileSync(
        process.execPath,
        [
          '-e',
          `if (typeof require('./index.js').handler !== 'function') process.exit(3);
         for (const p of ${JSON.stringify([...needed, ...paths])}) { const m = require(p); if (!m || Object.keys(m).length === 0) process.exit(4); }
         process.stdout.write('ok');`,
        ],
        { cwd: dir },
      ).toString();
      expect(out).toBe('ok');
    },
  );

  it('scopes what can be scoped: no kubeconfig for the webhook, the trail logstore, the report prefix, the clusters', () => {
    const actions = (fn: FunctionName) => policyTemplate(fn).Statement.flatMap((st) => st.Action);
    expect(actions('webhook')).not.toContain('cs:DescribeClusterUserKubeconfig');
    expect(actions('trail-verify')).not.toContain('cs:DescribeClusterUserKubeconfig');
    const resourcesOf = (fn: FunctionName, action: string) =>
      policyTemplate(fn)
        .Statement.filter((st) => st.Action.includes(action))
        .flatMap((st) => st.Resource);
    expect(resourcesOf('trail-verify', 'log:GetCursorOrData')).toEqual([
      'acs:log:<region>:<account-id>:project/<trail-project>/logstore/<trail-logstore>',
    ]);
    expect(resourcesOf('audit', 'oss:PutObject')).toEqual(['acs:oss:*:*:<report-bucket>/audits/*']);
    expect(resourcesOf('webhook', 'oss:GetObject')).toEqual(['acs:oss:*:*:<report-bucket>/audits/*']);
    // rotation-watch's done record only: never the reports.
    expect(resourcesOf('rotation-watch', 'oss:GetObject')).toEqual(['acs:oss:*:*:<report-bucket>/state/*']);
    expect(resourcesOf('rotation-watch', 'oss:PutObject')).toEqual(['acs:oss:*:*:<report-bucket>/state/*']);
    for (const fn of FUNCTIONS) {
      for (const st of policyTemplate(fn).Statement) {
        if (st.Action.includes('kms:GetSecretValue'))
          expect(st.Resource, fn).toEqual([
            `acs:kms:<region>:<account-id>:secret/ack-kms-sentinel-${fn === 'webhook' ? 'webhook' : 'channels'}*`,
          ]);
        if (st.Action.includes('cs:DescribeClusterUserKubeconfig'))
          expect(st.Resource).toEqual(['acs:cs:<region>:<account-id>:cluster/<cluster-ids>']);
      }
    }
    const rendered = renderPolicy('reencrypt', {
      SENTINEL_REGION: 'cn-hangzhou',
      SENTINEL_ACCOUNT_ID: '1234567890123456',
      SENTINEL_CLUSTER_IDS: 'c-one,c-two',
    });
    expect(
      rendered.Statement.find((st) => st.Action.includes('cs:DescribeClusterUserKubeconfig'))?.Resource,
    ).toEqual([
      'acs:cs:cn-hangzhou:1234567890123456:cluster/c-one',
      'acs:cs:cn-hangzhou:1234567890123456:cluster/c-two',
    ]);
    expect(JSON.stringify(rendered)).not.toMatch(/<[a-z-]+>/);
  });

  it('the RBAC manifest is the registry the sandbox applies', () => {
    const docs = parseAllDocuments(read('deploy/rbac.yaml')).map((d) => d.toJSON());
    // Roles only: ACK writes the bindings for the identities it issues (CS GrantPermissions, `grant`).
    expect(docs).toEqual(rbacManifest('ack-kms-sentinel'));
    expect(docs.map((d) => d.kind)).not.toContain('ClusterRoleBinding');
    expect(docs.map((d) => d.kind)).not.toContain('RoleBinding');
  });
});

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { promisify } from 'node:util';
import * as $Kms from '@alicloud/kms20160120';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpTriggerEvent } from '../../bin/serve-command';
import { parseSpec, type Resolved } from '../../deploy/check';
import { type PrepareReport, prepare, prepareClients } from '../../deploy/prepare';
import { deployState } from '../../sandbox/cloud/deploy-apis';
import { TRAIL_LOGSTORE, TRAIL_PROJECT } from '../../sandbox/cloud/emulator';
import { type Sandbox, sandboxUserClients, startSandbox } from '../../sandbox/index';
import { CLOCK_MARGIN_MS } from '../../shared/cluster/sealing';
import { readSecretEvidence } from '../../shared/etcd/evidence';
import { jobIdFor } from '../../shared/jobs/payload';
import { runCli } from '../helpers/cli';
import { type FunctionProcess, startFunction } from '../helpers/fc-runtime';
import { coreApi } from '../helpers/sandbox';
import { seedSecrets } from '../helpers/secrets';

/**
 * The whole path a new user walks (docs/deploy.md), against the sandbox: deploy:prepare (a dry run, then for
 * real, then again), `grant --all`, `npm run build`, s.yaml parsed by Serverless Devs' own parser with the
 * user's variables, then each built function run as FC runs it: its own process, the environment s.yaml gives
 * it, its own RAM role's credentials (so its own kubeconfig, bound by nothing but `grant`). A key rotation
 * goes through rotation-watch and reencrypt to a completed, proven job, and a first signed call (`call POST
 * /v1/audits`, the secret read from KMS Secrets Manager) to an audit report in the bucket prepare made.
 */
const NAMESPACES = ['rehearsal-a', 'rehearsal-b'];
const COUNT = 40; // across the namespaces
const WEBHOOK = 'ack-kms-sentinel-webhook';
const ROOT = join(__dirname, '../..');

let sandbox: Sandbox;
let outDir: string;
let resolved: Resolved;
let front: Server;
let webhookUrl = '';
const running: Record<string, FunctionProcess> = {};

/** What the user exports before deploy:prepare and `s deploy` (the emulator stands in for the endpoints). */
function deployEnv(): Record<string, string> {
  const { cloud, stateNamespace } = sandbox.info;
  return {
    SENTINEL_REGION: cloud.region,
    SENTINEL_ACCOUNT_ID: cloud.accountId,
    SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
    SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
    SENTINEL_CLUSTER_IDS: cloud.clusterId,
    SENTINEL_STATE_NAMESPACE: stateNamespace,
    SENTINEL_WEBHOOK_SECRET: 'kms-secret://ack-kms-sentinel-webhook',
    SENTINEL_LOG_LEVEL: 'warn',
    ...Object.fromEntries(
      ['KMS', 'CS', 'ACTIONTRAIL', 'FC', 'SLS', 'OSS', 'RAM'].map((s) => [
        `SENTINEL_ENDPOINT_${s}`,
        cloud.endpoint,
      ]),
    ),
  };
}

/** The operator's own credentials, as the person deploying holds them. */
const operatorEnv = () => {
  const { user } = sandbox.info.cloud;
  return {
    ...deployEnv(),
    ALIBABA_CLOUD_ACCESS_KEY_ID: user.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: user.accessKeySecret,
  };
};

function clients() {
  const { cloud } = sandbox.info;
  const endpoint = {
    protocol: 'http' as const,
    host: cloud.endpoint.slice('http://'.length),
    url: cloud.endpoint,
  };
  return prepareClients(
    {
      region: cloud.region,
      accountId: cloud.accountId,
      endpoints: { kms: endpoint, actiontrail: endpoint, sls: endpoint, oss: endpoint },
      ram: endpoint,
    },
    { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
  );
}

/** The webhook's HTTP trigger: a request becomes FC's HTTP trigger event for the deployed function. */
async function startFront(): Promise<void> {
  front = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const event = httpTriggerEvent(req, Buffer.concat(chunks), sandbox.info.cloud.accountId);
      const out = await sandbox.cloud.functions.invoke(WEBHOOK, Buffer.from(JSON.stringify(event)), {});
      const answer = JSON.parse(out.body) as {
        statusCode?: number;
        headers?: Record<string, string>;
        body?: string;
      };
      res.writeHead(answer.statusCode ?? 502, answer.headers ?? { 'content-type': 'application/json' });
      res.end(answer.body ?? out.body);
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  sandbox = await startSandbox({ grantFunctionRoles: false });
  // A new account: no RAM role of the suite's yet (the sandbox names its functions' roles at start).
  sandbox.cloud.state.ramRoles = [];
  // Inside the checkout, so the build resolves the packages; apart from dist/functions, which others build.
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  outDir = mkdtempSync(join(ROOT, 'dist', 'rehearsal-'));
  await seedSecrets(coreApi(sandbox.info.kubeconfig), { namespaces: NAMESPACES, count: COUNT });
  await startFront();
}, 180_000);

afterAll(async () => {
  await Promise.all(Object.values(running).map((f) => f.stop()));
  await new Promise((resolve) => front?.close(resolve));
  await sandbox?.stop();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** What deploy:prepare wrote: RAM, OSS and SLS writes as the emulator records them, and KMS secret versions. */
const writes = () =>
  deployState(sandbox.cloud).writes.length +
  sandbox.cloud.state.secrets.reduce((n, s) => n + s.versions.length, 0);
const outcomes = (r: PrepareReport) => r.steps.map((s) => s.outcome);

describe('from zero to a signed call, as a new user deploys', () => {
  it('deploy:prepare: a dry run writes nothing, the run creates the prerequisites, a second run changes nothing', async () => {
    const before = writes();
    const dry = await prepare({ dryRun: true, env: deployEnv() }, clients());
    expect(writes()).toBe(before);
    expect(outcomes(dry)).toContain('would create');
    const first = await prepare({ dryRun: false, env: deployEnv() }, clients());
    expect(outcomes(first)).toContain('created');
    const after = writes();
    expect(after).toBeGreaterThan(before);
    const second = await prepare({ dryRun: false, env: deployEnv() }, clients());
    expect(writes()).toBe(after);
    expect(outcomes(second)).not.toContain('created');
    expect(outcomes(second)).not.toContain('updated');
  });

  it('`grant --all` binds each cluster-reaching function role through CS GrantPermissions, once', async () => {
    const first = await runCli(['grant', '--all'], operatorEnv());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/granted/);
    const again = await runCli(['grant', '--all', '--json'], operatorEnv());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/"change":"added"/);
  });

  it("`grant --kubeconfig` (the deployer's) applies deploy/rbac.yaml and the APF level naming the granted roles", async () => {
    const { cloud, kubeconfig } = sandbox.info;
    const run = await runCli(
      ['grant', '--cluster-id', cloud.clusterId, '--kubeconfig', kubeconfig, '--json'],
      operatorEnv(),
    );
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { roles: Array<{ uid: string }>; applied: string[] };
    expect(out.applied).toEqual(
      expect.arrayContaining(['PriorityLevelConfiguration ack-kms-sentinel', 'FlowSchema ack-kms-sentinel']),
    );
    const schema = JSON.parse(
      (
        await sandbox.controlPlane.adminRequest(
          'GET',
          '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/ack-kms-sentinel',
        )
      ).body,
    ) as { spec: { rules: Array<{ subjects: Array<{ user?: { name: string } }> }> } };
    const users = schema.spec.rules.flatMap((r) => r.subjects.map((x) => x.user?.name));
    expect(users).toEqual(expect.arrayContaining(out.roles.map((r) => r.uid)));
  });

  it('builds, and s.yaml resolves with the Serverless Devs parser to functions whose settings load', async () => {
    await promisify(execFile)('bash', ['deploy/build.sh'], {
      cwd: ROOT,
      env: { ...process.env, SENTINEL_BUILD_OUT: outDir },
    });
    resolved = await parseSpec(deployEnv());
    expect(resolved.functions.map((f) => f.name).sort()).toEqual(
      ['audit', 'reencrypt', 'rotation-watch', 'trail-verify', 'webhook'].sort(),
    );
    for (const fn of resolved.functions) {
      const { props } = fn;
      const code = String(props.code).replace(/^\.\/dist/, outDir);
      const environment = Object.fromEntries(
        Object.entries(props.environmentVariables ?? {}).map(([k, v]) => [k, String(v)]),
      );
      running[fn.name] = startFunction(code, String(props.handler), environment);
      sandbox.cloud.registerFunction({
        name: String(props.functionName),
        handler: running[fn.name]?.handler ?? (() => Promise.reject(new Error('not started'))),
        timeoutSeconds: Number(props.timeout),
        maxAsyncRetryAttempts: Number(
          (props.asyncInvokeConfig as { maxAsyncRetryAttempts?: number } | undefined)
            ?.maxAsyncRetryAttempts ?? 0,
        ),
      });
    }
  }, 240_000);

  it('a key rotation runs through rotation-watch and reencrypt, each as its own role, to a proven job', async () => {
    const { cloud } = sandbox.info;
    const kms = sandboxUserClients(sandbox.info).kms;
    const rotated = await kms.createKeyVersion(new $Kms.CreateKeyVersionRequest({ keyId: cloud.kmsKeyId }));
    const version = rotated.keyVersion?.keyVersionId ?? '';
    // The proof: every API server restarted after the rotation (docs/kms-v2-proof.md).
    await setTimeout(CLOCK_MARGIN_MS + 1_000);
    await sandbox.controlPlane.restartApiServer();
    await sandbox.cloud.functions.fireTimer('ack-kms-sentinel-rotation-watch', 'poll', '', new Date());
    await sandbox.cloud.idle();
    const job = [...sandbox.cloud.functions.tasks.values()].filter((t) =>
      t.taskId.startsWith(jobIdFor(cloud.clusterId, cloud.kmsKeyId, version)),
    );
    const logs = () =>
      Object.entries(running)
        .map(([n, f]) => `${n}: ${f.output().slice(-1500)}`)
        .join('\n');
    expect(job.at(-1)?.status, logs()).toBe('Succeeded');
    expect(JSON.parse(job.at(-1)?.returnPayload ?? '{}')).toMatchObject({
      status: 'completed',
      evidence: { verdict: 'effective' },
    });
    // The sweep's requests were served in the suite's own APF level, as the API server's answers said.
    const level = JSON.parse(
      (
        await sandbox.controlPlane.adminRequest(
          'GET',
          '/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations/ack-kms-sentinel',
        )
      ).body,
    ) as { metadata: { uid: string } };
    expect(job.at(-1)?.returnPayload).toContain(level.metadata.uid);
    const stored = (await readSecretEvidence(sandbox.info.etcd)).filter((s) =>
      NAMESPACES.includes(s.namespace),
    );
    expect(stored).toHaveLength(COUNT);
    expect(stored.filter((s) => s.keyId !== `${cloud.kmsKeyId}/${version}`)).toEqual([]);
  }, 180_000);

  it('a first signed call (`call POST /v1/audits`, its secret from KMS) ends in an audit report in the bucket', async () => {
    const env = { ...operatorEnv(), SENTINEL_WEBHOOK_URL: webhookUrl };
    const started = await runCli(['call', 'POST', '/v1/audits'], env);
    expect(started.code, started.stderr).toBe(0);
    await sandbox.cloud.idle();
    const latest = await runCli(['call', 'GET', '/v1/reports/latest'], env);
    expect(latest.code, latest.stderr).toBe(0);
    const report = JSON.parse(latest.stdout) as {
      clusters?: Array<{
        clusterId: string;
        checks: Array<{ id: string; status: string; evidence: string }>;
      }>;
    };
    expect(report.clusters?.map((c) => c.clusterId)).toEqual([sandbox.info.cloud.clusterId]);
    const checks = new Map(report.clusters?.[0]?.checks.map((c) => [c.id, c]));
    // The job above, as the audit function (its own role) reads it: every Secret, under the API servers' proof.
    expect(checks.get('coverage')).toMatchObject({
      status: 'pass',
      evidence: expect.stringMatching(/^proven: 40 of 40/),
    });
    expect(checks.get('encryption')?.status).toBe('pass');
    expect(checks.get('state-writers')?.status).toBe('pass');
  }, 120_000);
});

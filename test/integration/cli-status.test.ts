import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { V1ManagedFieldsEntry } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../bin/exit-codes';
import { createHandler as auditHandler } from '../../functions/audit';
import { createHandler as reencryptHandler } from '../../functions/reencrypt';
import { createHandler as rotationWatchHandler } from '../../functions/rotation-watch';
import { type Sandbox, startSandbox } from '../../sandbox';
import type { FcHandler } from '../../sandbox/cloud/fc';
import type { ClusterStatus } from '../../shared/jobs/answers';
import { STATE_CONFIGMAP } from '../../shared/jobs/store';
import { CLI, runCli } from '../helpers/cli';
import { coreApi, sandboxFunctionEnv } from '../helpers/sandbox';
import { seedSecrets } from '../helpers/secrets';

/**
 * `status` and `call` end to end on a sandbox of their own: `serve` (the CLI, another process) serves the webhook
 * function; `call` starts a re-encryption through it, which rotation-watch and reencrypt (the functions, in the
 * cloud emulator) run on the real control plane; `status` and `GET /v1/clusters/{id}/status` then say where the
 * cluster stands, before and after. The API server's managedFields show every write as the suite's.
 */
const SECRET = 'cli-status-webhook-signing-secret-0123456789';
const NAMESPACES = ['status-a', 'status-b'];
const COUNT = 30;
let sandbox: Sandbox;
let env: Record<string, string>;
let cliEnv: Record<string, string>;
let serve: ChildProcess;
let url = '';

beforeAll(async () => {
  sandbox = await startSandbox();
  const { cloud } = sandbox.info;
  env = {
    ...sandboxFunctionEnv(sandbox.info),
    SENTINEL_REENCRYPT_ADOPTION_DELAY: '0s',
    // No rotation here, so /metrics would prove a rewrite changes nothing (the job would wait for a new seed):
    // the job runs, and nothing is claimed proven.
    SENTINEL_REENCRYPT_PROOF: 'actiontrail',
    SENTINEL_LOG_LEVEL: 'warn',
  };
  const adapt = (h: (e: unknown, c: import('../../shared/runtime/handler').FcContext) => Promise<unknown>) =>
    h as FcHandler;
  sandbox.cloud.registerFunction({
    name: 'ack-kms-sentinel-rotation-watch',
    handler: adapt(rotationWatchHandler({ env, sink: () => undefined })),
  });
  sandbox.cloud.registerFunction({
    name: 'ack-kms-sentinel-reencrypt',
    handler: adapt(reencryptHandler({ env, sink: () => undefined })),
    timeoutSeconds: 120,
  });
  // The webhook records each signed POST as a no-op task of the audit function: its guard against replays.
  sandbox.cloud.registerFunction({
    name: 'ack-kms-sentinel-audit',
    handler: adapt(auditHandler({ env, sink: () => undefined })),
  });
  await seedSecrets(coreApi(sandbox.info.kubeconfig), { namespaces: NAMESPACES, count: COUNT });
  cliEnv = {
    ...env,
    ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
    SENTINEL_WEBHOOK_SECRET: SECRET,
  };
  serve = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
    env: { ...process.env, ...cliEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  serve.stderr?.on('data', (d: Buffer) => serveLog.push(d.toString()));
  url = await new Promise<string>((resolve, reject) => {
    serve.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    createInterface({ input: serve.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      const m = /webhook listening on (\S+)/.exec(line);
      if (m?.[1]) resolve(m[1]);
    });
  });
  cliEnv.SENTINEL_WEBHOOK_URL = url;
}, 240_000);

afterAll(async () => {
  serve?.kill('SIGTERM');
  await sandbox?.stop();
});

/** What serve wrote (the webhook function's log), for a failing call to show. */
const serveLog: string[] = [];
const status = (...args: string[]) => runCli(['status', ...args], cliEnv);
const call = (...args: string[]) => runCli(['call', ...args], cliEnv);

describe('ack-kms-sentinel status and call, end to end on the sandbox', () => {
  const clusterId = () => sandbox.info.cloud.clusterId;

  it('before any job: encryption on with its key, no completion; exit 1 (a person is needed)', async () => {
    const run = await status('--cluster-id', clusterId());
    expect(run.code, run.stderr).toBe(EXIT.failed);
    expect(run.stdout).toMatch(/^verdict\s+NEEDS ATTENTION$/m);
    expect(run.stdout).toMatch(new RegExp(`^encryption\\s+on, key ${sandbox.info.kmsKeyId}$`, 'm'));
    expect(run.stdout).toMatch(/^last job\s+none recorded$/m);
    expect(run.stdout).toMatch(/^completed\s+never$/m);
    expect(run.stdout).toContain('! no completed re-encryption for the key');
    const total = /^coverage\s+0 of (\d+) Secrets \(0%\) carry the mark of \S+ \(0 under proof\)$/m.exec(
      run.stdout,
    );
    expect(Number(total?.[1])).toBeGreaterThanOrEqual(COUNT);
  });

  it('call starts the job through serve and the webhook; status then shows it done and covered', async () => {
    sandbox.cloud.state.keys.find((k) => k.keyId === sandbox.info.kmsKeyId)!.deletionProtection = 'Enabled';
    const started = await call(
      'POST',
      `/v1/clusters/${clusterId()}/reencrypt`,
      '--body',
      '{"reason":"cli test"}',
    );
    expect(started.code, `${started.stderr}\nserve: ${serveLog.join('').slice(-2000)}`).toBe(EXIT.done);
    expect(JSON.parse(started.stdout)).toMatchObject({ status: 'started', clusterId: clusterId() });
    await sandbox.cloud.idle();

    const run = await status('--cluster-id', clusterId(), '--json');
    const s = JSON.parse(run.stdout) as ClusterStatus;
    expect(s.job).toMatchObject({ phase: 'completed', stale: false, attempt: 1, percent: 100 });
    expect(s.completed?.keyVersionId).toBe(s.key?.primaryKeyVersion);
    expect(s.coverage).toMatchObject({ keyVersionId: s.key?.primaryKeyVersion, percent: 100 });
    expect(s.coverage?.marked).toBe(s.coverage?.secrets);
    expect(s.apiServers).toMatchObject({ verdict: 'unproven' });
    expect(s.completed?.proof).toBe('unproven');
    // Done, but nothing proves the re-seal: that is the only finding, so the exit code is 4, not 1.
    expect(s.verdict).toBe('unproven');
    expect(run.code, JSON.stringify(s.reasons)).toBe(EXIT.unproven);

    const viaWebhook = await call('GET', `/v1/clusters/${clusterId()}/status`);
    expect(viaWebhook.code, viaWebhook.stderr).toBe(EXIT.done);
    const w = JSON.parse(viaWebhook.stdout) as ClusterStatus;
    expect({ ...w, job: { ...w.job, ageSeconds: 0 } }).toEqual({ ...s, job: { ...s.job, ageSeconds: 0 } });

    const table = await status('--all');
    expect(table.stdout).toMatch(
      /^CLUSTER\s+ENCRYPTION\s+KEY VERSION\s+API SERVERS\s+LAST JOB\s+COVERAGE\s+VERDICT$/m,
    );
    expect(table.stdout).toMatch(
      new RegExp(
        `^${clusterId()}\\s+on\\s+${s.key?.primaryKeyVersion}\\s+unproven\\s+completed \\d+[smhd] ago\\s+100%\\s+UNPROVEN$`,
        'm',
      ),
    );
    expect(table.code).toBe(run.code);
  });

  it('the webhook answers 404 for a cluster it does not target', async () => {
    const run = await call('GET', '/v1/clusters/c-not-ours/status');
    expect(run.code).toBe(EXIT.failed);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'ClusterNotFound' } });
  });

  it("every write is the suite's in managedFields: the Secrets' marks and the state ConfigMap", async () => {
    const admin = coreApi(sandbox.info.kubeconfig);
    const managers = (fields: V1ManagedFieldsEntry[] | undefined) =>
      (fields ?? []).filter((f) => f.operation === 'Update').map((f) => f.manager);
    const { items } = await admin.listNamespacedSecret({ namespace: NAMESPACES[0] ?? '' });
    expect(items.length).toBeGreaterThan(0);
    for (const secret of items) {
      const suite = (secret.metadata?.managedFields ?? []).find((f) => f.manager === 'ack-kms-sentinel');
      expect(suite, secret.metadata?.name).toBeDefined();
      // The fields the suite owns are its annotations, nothing of the data (the seed's creation has its own entry).
      expect(JSON.stringify(suite?.fieldsV1)).toContain('ack-kms-sentinel.io/key-version');
      expect(JSON.stringify(suite?.fieldsV1)).not.toContain('f:data');
    }
    const cm = await admin.readNamespacedConfigMap({
      namespace: sandbox.info.stateNamespace,
      name: STATE_CONFIGMAP,
    });
    expect(managers(cm.metadata?.managedFields)).toEqual(['ack-kms-sentinel']);
  });
});

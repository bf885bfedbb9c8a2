import { setTimeout } from 'node:timers/promises';
import * as $Kms from '@alicloud/kms20160120';
import { KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantCommand } from '../../bin/grant-command';
import { createHandler as auditHandler } from '../../functions/audit';
import { createHandler as reencryptHandler } from '../../functions/reencrypt';
import { createHandler as rotationWatchHandler } from '../../functions/rotation-watch';
import { createHandler as trailVerifyHandler } from '../../functions/trail-verify';
import { createHandler as webhookHandler } from '../../functions/webhook';
import { type Sandbox, sandboxUserClients, startSandbox } from '../../sandbox';
import { TRAIL_LOGSTORE, TRAIL_PROJECT } from '../../sandbox/cloud/emulator';
import type { FcHandler } from '../../sandbox/cloud/fc';
import { splitKeyId } from '../../sandbox/kms-plugin/key-provider';
import { createCloudClients } from '../../shared/cloud/clients';
import { applySuiteManifests } from '../../shared/cluster/manifests';
import { kubernetesRoles, roleName } from '../../shared/cluster/permissions';
import { STATE_ROLE } from '../../shared/cluster/rbac';
import { CLOCK_MARGIN_MS } from '../../shared/cluster/sealing';
import { clusterKubeconfig } from '../../shared/cluster/user-kubeconfig';
import { readSecretEvidence } from '../../shared/etcd/evidence';
import { type Continuation, encodeJobPayload, jobIdFor } from '../../shared/jobs/payload';
import { type ClusterState, configMapState, STATE_CONFIGMAP } from '../../shared/jobs/store';
import { annotationPatch } from '../../shared/reencrypt/annotations';
import { Recorder } from '../helpers/recorder';
import { coreApi, sandboxFunctionEnv } from '../helpers/sandbox';
import { seedSecrets, snapshot } from '../helpers/secrets';
import { signedEvent } from '../helpers/webhook';

/**
 * The main job end to end, through the emulated triggers: a KMS rotation → EventBridge or the timer →
 * rotation-watch → FC async invocation of reencrypt → adoption evidence in ActionTrail → sweep (over several
 * self-invocations when the budget is small) → state, verification and a report. This file runs its own
 * sandbox, so the emulator can dispatch to the handlers in this process.
 */
const NAMESPACES = ['pipe-a', 'pipe-b', 'pipe-c'];
const COUNT = 150;
const REENCRYPT = 'ack-kms-sentinel-reencrypt';
const WEBHOOK_SECRET = 'pipeline-webhook-signing-secret-0123456789abcdef';

let sandbox: Sandbox;
let receiver: Recorder;
let env: Record<string, string>;
/** What `ack-kms-sentinel grant` printed when the sandbox's operator ran it before any function ran. */
let granted: { code: number; stdout: string; stderr: string };

const notifications = (severity: string) =>
  receiver.requests
    .map(
      (r) =>
        JSON.parse(r.body) as {
          severity: string;
          title: string;
          text: string;
          details: Record<string, unknown>;
        },
    )
    .filter((n) => n.severity === severity);

/**
 * The functions' warnings and errors (the logger has redacted them), for a failing step to show: the
 * functions run inside the emulator, whose answer to a failed invocation says only that it failed.
 */
const logged: string[] = [];
const keep = (line: string) => {
  logged.push(line);
};
const recentLogs = () => `functions logged:\n${logged.slice(-8).join('\n')}`;

/** Each function as s.yaml deploys it: FC stops an invocation at its timeout; reencrypt retries twice. */
function register(name: string, handler: FcHandler, timeoutSeconds = 60) {
  const maxAsyncRetryAttempts = name === REENCRYPT ? 2 : 0;
  sandbox.cloud.registerFunction({ name, handler, timeoutSeconds, maxAsyncRetryAttempts });
}

const adapt = (
  h: (event: unknown, ctx: import('../../shared/runtime/handler').FcContext) => Promise<unknown>,
): FcHandler => h;

/**
 * `ack-kms-sentinel grant` as the deploying person runs it (the sandbox account's RAM user, the cluster's
 * creator): each function runs as its own RAM role (FC assumes s.yaml's `role`), whose kubeconfig from CS names
 * the role's id, and the sandbox's kube-apiserver enforces RBAC on it; until this, none holds any grant.
 */
async function runGrant(extra: { json?: boolean } = {}) {
  const { cloud } = sandbox.info;
  let stdout = '';
  let stderr = '';
  const code = await grantCommand(
    { clusterId: [cloud.clusterId], ...extra },
    {
      env: {
        SENTINEL_REGION: cloud.region,
        SENTINEL_ACCOUNT_ID: cloud.accountId,
        SENTINEL_ENDPOINT_CS: cloud.endpoint,
        SENTINEL_ENDPOINT_RAM: cloud.endpoint,
        SENTINEL_STATE_NAMESPACE: sandbox.info.stateNamespace,
      },
      credentials: async () => cloud.user,
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
    },
  );
  return { code, stdout, stderr };
}

/** The kubeconfig CS issues a function's RAM role for the sandbox cluster, as the function itself asks for it. */
async function sandboxKubeconfigOf(role: string): Promise<KubeConfig> {
  const { cloud } = sandbox.info;
  const endpoint = {
    protocol: 'http' as const,
    host: cloud.endpoint.slice('http://'.length),
    url: cloud.endpoint,
  };
  const clients = createCloudClients(
    { region: cloud.region, endpoints: { cs: endpoint } },
    sandbox.cloud.assumeRole(role, 'fc'),
  );
  const kc = new KubeConfig();
  kc.loadFromString(await clusterKubeconfig(clients, cloud.clusterId));
  return kc;
}

beforeAll(async () => {
  sandbox = await startSandbox({ grantFunctionRoles: false });
  granted = await runGrant();
  receiver = await new Recorder().start();
  env = {
    ...sandboxFunctionEnv(sandbox.info),
    // The tests that prove the result in etcd wait for the control plane's adoption themselves; the others
    // check control flow, which needs no adoption wait (the suite's slowest step, ~20 s per rotation).
    SENTINEL_REENCRYPT_ADOPTION_DELAY: '0s',
    SENTINEL_REENCRYPT_PROOF: 'actiontrail',
    SENTINEL_REENCRYPT_BUDGET_MARGIN: '5s',
    SENTINEL_NOTIFY_CHANNELS: JSON.stringify([
      { type: 'webhook', url: `${receiver.url}/hook`, secret: 'pipeline-webhook-secret-0123' },
    ]),
    SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
    SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
    SENTINEL_LOG_LEVEL: 'warn',
  };
  register('ack-kms-sentinel-rotation-watch', adapt(rotationWatchHandler({ env, sink: keep })));
  register(REENCRYPT, adapt(reencryptHandler({ env, sink: keep })), 120);
  register('ack-kms-sentinel-trail-verify', adapt(trailVerifyHandler({ env, sink: keep })));
  // The webhook records each signed POST as a no-op task of the audit function (its replay guard).
  register('ack-kms-sentinel-audit', adapt(auditHandler({ env, sink: keep })));
  await seedSecrets(coreApi(sandbox.info.kubeconfig), {
    namespaces: NAMESPACES,
    count: COUNT,
    immutable: [5],
  });
}, 180_000);

afterAll(async () => {
  await receiver?.stop();
  await sandbox?.stop();
});

/** The sandbox account's user, as a person at the console would act. */
const userClients = () => sandboxUserClients(sandbox.info);

/** A signed event delivered to the webhook handler as FC would, with the sandbox user's credentials. */
async function toWebhook(event: ReturnType<typeof signedEvent>) {
  const { cloud } = sandbox.info;
  const webhook = webhookHandler({
    env: { ...env, SENTINEL_WEBHOOK_SECRET: WEBHOOK_SECRET },
    sink: keep,
  });
  // As FC runs it: with its own RAM role's credentials (it reaches clusters only through rotation-watch).
  const role = sandbox.cloud.assumeRole(roleName('webhook', sandbox.info.cloud.region), 'fc');
  const res = (await webhook(Buffer.from(JSON.stringify(event)), {
    requestId: 'webhook-test',
    credentials: {
      accessKeyId: role.accessKeyId,
      accessKeySecret: role.accessKeySecret,
      securityToken: role.securityToken ?? '',
    },
    accountId: cloud.accountId,
  })) as { statusCode: number; body: string };
  return { status: res.statusCode, json: JSON.parse(res.body) as Record<string, unknown> };
}

async function rotate(): Promise<{ keyId: string; version: string }> {
  const { cloud } = sandbox.info;
  const r = await userClients().kms.createKeyVersion(
    new $Kms.CreateKeyVersionRequest({ keyId: cloud.kmsKeyId }),
  );
  const version = r.keyVersion?.keyVersionId ?? '';
  return { keyId: `${cloud.kmsKeyId}/${version}`, version };
}

async function expectAllUnder(keyId: string) {
  const stored = (await readSecretEvidence(sandbox.info.etcd)).filter((s) =>
    NAMESPACES.includes(s.namespace),
  );
  expect(stored).toHaveLength(COUNT);
  expect(stored.filter((s) => s.keyId !== keyId).map((s) => `${s.namespace}/${s.name}`)).toEqual([]);
}

/** Every seeded Secret carries the sweep's mark of `version`: the control-flow tests' proof of a full sweep. */
async function expectAllMarked(version: string) {
  const marked = await snapshot(coreApi(sandbox.info.kubeconfig), NAMESPACES);
  expect(marked.size).toBe(COUNT);
  expect([...marked.entries()].filter(([, s]) => s.version !== version).map(([k]) => k)).toEqual([]);
}

async function completedVersion(): Promise<string | undefined> {
  const cm = await coreApi(sandbox.info.kubeconfig)
    .readNamespacedConfigMap({ namespace: sandbox.info.stateNamespace, name: STATE_CONFIGMAP })
    .catch((err: { code?: number }) => {
      if (err.code === 404) return undefined; // no job ever saved its state
      throw err;
    });
  return JSON.parse(cm?.data?.state ?? '{}').completedKeyVersion;
}

/** The sandbox cluster's job payload for `version`, as the starter hands it to reencrypt (optionally mid-job). */
function jobPayload(version: string, checkpoint?: Continuation): string {
  const { cloud } = sandbox.info;
  return encodeJobPayload({
    version: 1,
    jobId: jobIdFor(cloud.clusterId, cloud.kmsKeyId, version),
    clusterId: cloud.clusterId,
    keyId: cloud.kmsKeyId,
    keyVersionId: version,
    requestedAt: new Date(),
    reason: 'test',
    ...(checkpoint ? { checkpoint } : {}),
  });
}

const reencryptTasks = (prefix: string) =>
  [...sandbox.cloud.functions.tasks.values()].filter(
    (t) => t.functionName === REENCRYPT && t.taskId.startsWith(prefix),
  );

describe('the event-driven pipeline', () => {
  it('runs each function as its own RAM role, bound by `grant` through CS GrantPermissions', () => {
    expect(granted.code, granted.stderr).toBe(0);
    const lines = granted.stdout.split('\n');
    for (const role of kubernetesRoles(sandbox.info.cloud.region)) {
      expect(lines.filter((l) => l.startsWith(`${role} `) && l.endsWith(' granted'))).toHaveLength(3);
    }
    // The bindings ACK writes name the role's id: the identity in the client certificate of its kubeconfig.
    const reencryptUid = sandbox.cloud.roleIdOf(roleName('reencrypt', sandbox.info.cloud.region));
    expect(granted.stdout).toContain(reencryptUid);
    expect(granted.stdout).not.toContain(roleName('trail-verify', sandbox.info.cloud.region));
  });

  describe('one rotation the control plane adopts, end to end', () => {
    let rotation: { keyId: string; version: string; rotatedAt: string };
    let refusedEncrypts = 0;
    const trailResults: string[] = [];
    beforeAll(async () => {
      const { cloud } = sandbox;
      cloud.subscribe({
        filter: (e) => e.source === 'acs.kms' || e.source === 'acs.cs',
        handler: (b) =>
          cloud.functions.invoke('ack-kms-sentinel-rotation-watch', b, { 'x-fc-invocation-type': 'Async' }),
      });
      const unsubscribe = cloud.subscribeTrail(async (b) => {
        const r = await cloud.functions.invoke('ack-kms-sentinel-trail-verify', b, {});
        trailResults.push(r.body);
      });
      cloud.duplicateDeliveries = true;
      // This job waits for the control plane's adoption as deployed: proven by the API servers' /metrics.
      const waiting = {
        ...env,
        SENTINEL_REENCRYPT_ADOPTION_DELAY: '5m',
        SENTINEL_REENCRYPT_PROOF: 'metrics',
      };
      register(REENCRYPT, adapt(reencryptHandler({ env: waiting, sink: () => undefined })), 120);
      const { controlPlane } = sandbox;
      try {
        // KMS refuses the Encrypt of the new seed at first (throttled, say): the API server reports the new key
        // id from Status and keeps writing with its old seed. The job must wait that out, not sweep: a sweep
        // now would leave every Secret under the old version, which the etcd check below would see.
        controlPlane.plugin.refuseEncrypt = true;
        const errors = controlPlane.plugin.stats.errors;
        const rotatedAt = new Date(Date.now() - 1_000).toISOString(); // trail times have whole seconds
        rotation = { ...(await rotate()), rotatedAt };
        for (let i = 0; i < 60 && controlPlane.plugin.stats.errors === errors; i++) {
          await controlPlane.adminRequest('GET', '/healthz/kms-providers').catch(() => undefined);
          await setTimeout(1_000);
        }
        refusedEncrypts = controlPlane.plugin.stats.errors - errors;
        // Longer than the job's evidence poll (10 s): it reads the pending seed at least once.
        await setTimeout(12_000);
        controlPlane.plugin.refuseEncrypt = false;
        await controlPlane.waitForAdoption(rotation.keyId);
        await cloud.idle();
      } finally {
        controlPlane.plugin.refuseEncrypt = false;
        cloud.duplicateDeliveries = false;
        cloud.subscribers.length = 0;
        unsubscribe();
        register(REENCRYPT, adapt(reencryptHandler({ env, sink: () => undefined })), 120);
      }
    }, 180_000);

    it('event path: the rotation reaches rotation-watch through EventBridge (twice), one job re-encrypts everything', async () => {
      const { cloud } = sandbox;
      const { keyId, version } = rotation;
      const watches = [...cloud.functions.tasks.values()].filter(
        (t) => t.functionName === 'ack-kms-sentinel-rotation-watch',
      );
      const outcomes = watches.flatMap((t) =>
        (JSON.parse(t.returnPayload ?? '{"jobs":[]}').jobs as Array<{ outcome: string }>).map(
          (j) => j.outcome,
        ),
      );
      expect(outcomes.sort()).toEqual(['already-started', 'started']);
      expect(refusedEncrypts, 'the new seed was refused first').toBeGreaterThan(0);
      const jobs = reencryptTasks('rj-');
      expect(jobs.filter((t) => !t.taskId.includes('-i'))).toHaveLength(1);
      expect(jobs.every((t) => t.status === 'Succeeded')).toBe(true);
      expect(await completedVersion()).toBe(version);
      await expectAllUnder(keyId);
      const report = notifications('report').find((n) => n.title.includes(version));
      expect(report?.details).toMatchObject({
        rewritten: COUNT + 0,
        failed: 0,
        verified: true,
        proof: 'proven',
      });
      // Proven by the API server itself: the plugin reported a new key id after the rotation.
      const done = JSON.parse(reencryptTasks('rj-').at(-1)?.returnPayload ?? '{}');
      expect(done.evidence).toMatchObject({
        verdict: 'effective',
        constantKeyId: false,
        apiServers: [{ state: 'new-key-id' }],
      });
    });

    it('trail-verify reads the trail through the SLS trigger and sees the control plane encrypting', async () => {
      const merged = trailResults.map(
        (r) =>
          JSON.parse(r) as {
            events: number;
            encryptionByKey: Record<string, { ok: number; last?: string }>;
          },
      );
      expect(merged.reduce((n, r) => n + r.events, 0)).toBeGreaterThan(0);
      const byKey = merged.map((r) => r.encryptionByKey[splitKeyId(rotation.keyId).keyId]);
      expect(
        byKey.some((k) => (k?.ok ?? 0) > 0 && (k?.last ?? '') >= rotation.rotatedAt),
        'an Encrypt by the control plane after the rotation',
      ).toBe(true);
    });
  });

  it('timer path: the poll finds the new version without any event, and a second tick starts nothing', async () => {
    const { version } = await rotate();
    await sandbox.cloud.functions.fireTimer('ack-kms-sentinel-rotation-watch', 'poll', '', new Date());
    await sandbox.cloud.idle();
    expect(await completedVersion()).toBe(version);
    await expectAllMarked(version);
    const tick = await sandbox.cloud.functions.invoke(
      'ack-kms-sentinel-rotation-watch',
      Buffer.from(JSON.stringify({ triggerTime: new Date().toISOString(), triggerName: 'poll' })),
      {},
    );
    // Proof is not sought in these tests (ActionTrail only): a version done reads as rewritten, not as proven.
    expect(JSON.parse(tick.body).jobs.map((j: { outcome: string }) => j.outcome)).toEqual([
      'rewritten-unproven',
    ]);
  });

  it('a budget so small that the job takes at least five self-invocations misses no Secret', async () => {
    const small = {
      ...env,
      SENTINEL_REENCRYPT_BUDGET_MARGIN: '2900ms',
      SENTINEL_REENCRYPT_PAGE_SIZE: '10',
      SENTINEL_REENCRYPT_CONCURRENCY: '2',
    };
    // The budget is measured on a clock that also ticks 3 ms per reading, so however fast the machine, one
    // invocation (100 ms of budget) can start only a few Secrets: the number of hand-overs is not a race.
    let ticks = 0;
    const now = () => Date.now() + 3 * ++ticks;
    register(REENCRYPT, adapt(reencryptHandler({ env: small, sink: () => undefined, now })), 3);
    try {
      const { version } = await rotate();
      await sandbox.cloud.functions.fireTimer('ack-kms-sentinel-rotation-watch', 'poll', '', new Date());
      await sandbox.cloud.idle();
      const jobId =
        reencryptTasks('rj-').find((t) => t.payload.includes(version) && !t.taskId.includes('-i'))?.taskId ??
        '';
      expect(jobId).toMatch(/^rj-/);
      const invocations = reencryptTasks(jobId);
      expect(invocations.length).toBeGreaterThanOrEqual(5);
      // Under FC's real time limit (3 s here): every invocation handed over before it, none was retried.
      expect(invocations.map((t) => [t.status, t.alreadyRetriedTimes])).toEqual(
        invocations.map(() => ['Succeeded', 0]),
      );
      expect(invocations.every((t) => (t.endTime ?? Infinity) - t.startedTime < 3_000)).toBe(true);
      expect(await completedVersion()).toBe(version);
      await expectAllMarked(version);
    } finally {
      register(REENCRYPT, adapt(reencryptHandler({ env, sink: () => undefined })), 120);
    }
  });

  it('a job that could not be started, or whose invocations all died, is started again as its next attempt', async () => {
    const watch = (extra: Record<string, string>) =>
      register(
        'ack-kms-sentinel-rotation-watch',
        adapt(rotationWatchHandler({ env: { ...env, ...extra }, sink: keep })),
      );
    const tick = async () => {
      const res = await sandbox.cloud.functions.invoke(
        'ack-kms-sentinel-rotation-watch',
        Buffer.from(JSON.stringify({ triggerTime: new Date().toISOString(), triggerName: 'poll' })),
        {},
      );
      await sandbox.cloud.idle();
      return (JSON.parse(res.body).jobs as Array<{ clusterId: string; outcome: string }>).find(
        (j) => j.clusterId === sandbox.info.cloud.clusterId,
      )?.outcome;
    };
    const crash: FcHandler = async () => {
      throw new Error('simulated crash');
    };
    try {
      const { version } = await rotate();
      const jobId = jobIdFor(sandbox.info.cloud.clusterId, sandbox.info.cloud.kmsKeyId, version);

      // FC refuses the invocation: nothing started, and the state says so.
      watch({ SENTINEL_REENCRYPT_FUNCTION: 'ack-kms-sentinel-missing' });
      expect(await tick()).toBe('failed');
      // So the next tick starts it at once (the default staleness is an hour); every invocation crashes.
      register(REENCRYPT, crash, 120);
      watch({});
      expect(await tick()).toBe('restarted');
      const second = reencryptTasks(`${jobId}-a2`).map((t) => t.status);
      expect(second.length).toBeGreaterThan(0);
      expect(second).not.toContain('Succeeded');
      expect(await completedVersion()).not.toBe(version);
      expect(await tick(), 'within the staleness window nothing starts').toBe('already-started');

      // Once it has saved no progress for SENTINEL_REENCRYPT_STALE_AFTER, the next tick starts attempt 3.
      register(REENCRYPT, adapt(reencryptHandler({ env, sink: () => undefined })), 120);
      watch({ SENTINEL_REENCRYPT_STALE_AFTER: '1s' });
      await setTimeout(1_100);
      expect(await tick()).toBe('restarted');
      expect(reencryptTasks(`${jobId}-a3`)[0]?.status).toBe('Succeeded');
      expect(await completedVersion()).toBe(version);
      await expectAllMarked(version);
      expect(await tick()).toBe('rewritten-unproven');
    } finally {
      register(REENCRYPT, adapt(reencryptHandler({ env, sink: () => undefined })), 120);
      watch({});
    }
  });

  it('an FC retry of an invocation that died resumes from the newer checkpoint it saved, not its payload', async () => {
    const { cloud } = sandbox.info;
    const { version } = await rotate();
    const jobId = jobIdFor(cloud.clusterId, cloud.kmsKeyId, version);
    const zero = { total: 0, rewritten: 0, alreadyCurrent: 0, gone: 0, failed: 0 };
    // The dead attempt got through every Secret up to pipe-b/s-00001 (pipe-b's first) and saved that.
    const saved = {
      targetKeyVersionId: version,
      strategy: 'annotate' as const,
      namespaceIndex: 0,
      resumeAfter: 'pipe-b/s-00001',
      recheck: true,
      counters: { ...zero, total: 60, rewritten: 60 },
    };
    // It wrote them, as the sweep does (the census before completion checks the marks).
    const admin = coreApi(sandbox.info.kubeconfig);
    const keyOf = (m: { namespace?: string; name?: string } | undefined) => `${m?.namespace}/${m?.name}`;
    const before = (await admin.listSecretForAllNamespaces({})).items.filter(
      (x) => keyOf(x.metadata) <= saved.resumeAfter,
    );
    const writtenByTheDeadAttempt = new Map<string, string>();
    for (const x of before) {
      const patched = await admin.patchNamespacedSecret(
        {
          namespace: x.metadata?.namespace ?? '',
          name: x.metadata?.name ?? '',
          body: annotationPatch(version, new Date()),
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      writtenByTheDeadAttempt.set(keyOf(patched.metadata), patched.metadata?.resourceVersion ?? '');
    }
    const state = configMapState(admin, sandbox.info.stateNamespace);
    await state.save({
      ...(await state.load()),
      job: {
        jobId,
        keyId: cloud.kmsKeyId,
        keyVersionId: version,
        phase: 'sweeping',
        invocation: 2,
        updatedAt: new Date().toISOString(),
        checkpoint: saved,
      },
    });
    // FC retries invocation 2 with its payload: the hand-over checkpoint from before that progress.
    const payload = jobPayload(version, {
      targetKeyVersionId: version,
      invocation: 2,
      startedAt: new Date(),
      phase: 'sweeping',
      sweep: { targetKeyVersionId: version, strategy: 'annotate', namespaceIndex: 0, counters: zero },
    });
    const result = JSON.parse(
      (await sandbox.cloud.functions.invoke(REENCRYPT, Buffer.from(payload), {})).body,
    );
    expect(result).toMatchObject({ status: 'completed' });
    const after = await snapshot(coreApi(sandbox.info.kubeconfig), NAMESPACES);
    const at = (key: string) => after.get(key)?.version;
    const inNamespace = (ns: string) =>
      [...after].filter(([k]) => k.startsWith(`${ns}/`)).map(([, s]) => s.version);
    // Up to the saved checkpoint: not written again by the retry.
    expect(inNamespace('pipe-a')).toHaveLength(50);
    expect(writtenByTheDeadAttempt.has('pipe-b/s-00001')).toBe(true);
    const now = (await admin.listSecretForAllNamespaces({})).items;
    const rewritten = now.filter((x) => {
      const rv = writtenByTheDeadAttempt.get(keyOf(x.metadata));
      return rv !== undefined && rv !== x.metadata?.resourceVersion;
    });
    expect(rewritten.map((x) => keyOf(x.metadata))).toEqual([]);
    // After it: rewritten by the retry.
    expect(at('pipe-b/s-00004')).toBe(version);
    expect(inNamespace('pipe-c')).toHaveLength(50);
    expect(inNamespace('pipe-c').filter((v) => v !== version)).toEqual([]);
  });

  it('never trusts the state ConfigMap alone: a forged "complete" or checkpoint is caught by a census before completion', async () => {
    const { cloud } = sandbox.info;
    const admin = coreApi(sandbox.info.kubeconfig);
    const version =
      (await userClients().kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: cloud.kmsKeyId })))
        .keyMetadata?.primaryKeyVersion ?? '';
    const jobId = jobIdFor(cloud.clusterId, cloud.kmsKeyId, version);
    const payload = jobPayload(version);
    const invoke = async () =>
      JSON.parse((await sandbox.cloud.functions.invoke(REENCRYPT, Buffer.from(payload), {})).body);
    const state = configMapState(admin, sandbox.info.stateNamespace);
    const unmarked = async (ns: string) =>
      [...(await snapshot(admin, [ns])).values()].filter((s) => s.version !== version).length;

    // Someone marks the version complete while Secrets were never rewritten for it.
    await seedSecrets(admin, { namespaces: ['pipe-forged-a'], count: 12, prefix: 'f' });
    await state.save({ ...(await state.load()), completedKeyVersion: version });
    expect(await invoke()).toMatchObject({ status: 'completed' });
    expect(await unmarked('pipe-forged-a')).toBe(0);

    // Someone writes a checkpoint past every Secret: the sweep "finishes" at once, the census refuses it.
    await seedSecrets(admin, { namespaces: ['pipe-forged-b'], count: 12, prefix: 'f' });
    const zero = { total: 0, rewritten: 0, alreadyCurrent: 0, gone: 0, failed: 0 };
    await state.load(); // the store writes over the version it last read
    await state.save({
      completedKeyVersion: 'v-before',
      job: {
        jobId,
        keyId: cloud.kmsKeyId,
        keyVersionId: version,
        phase: 'sweeping',
        invocation: 1,
        updatedAt: new Date().toISOString(),
        checkpoint: {
          targetKeyVersionId: version,
          strategy: 'annotate',
          namespaceIndex: 0,
          resumeAfter: 'zzzzzzzz/zzzzzzzz',
          counters: { ...zero, total: 99_999, alreadyCurrent: 99_999 },
        },
      },
    });
    receiver.requests.length = 0;
    expect(await invoke()).toMatchObject({ status: 'unconfirmed' });
    expect(await unmarked('pipe-forged-b')).toBe(12);
    expect(notifications('critical').map((n) => n.title)).toEqual([
      `Re-encryption of ${cloud.clusterId} not confirmed`,
    ]);
    const failed = await state.load();
    expect(failed.completedKeyVersion).toBe('v-before');
    expect(failed.job).toMatchObject({ jobId, phase: 'failed' });
    expect(failed.job?.checkpoint).toBeUndefined();
    // Its next attempt starts from the beginning and completes.
    expect(await invoke()).toMatchObject({ status: 'completed' });
    expect(await unmarked('pipe-forged-b')).toBe(0);
    expect((await state.load()).completedKeyVersion).toBe(version);
  });

  it('the webhook turns encryption on: checks, the switch, and the job the next tick starts', async () => {
    const { cloud } = sandbox.info;
    // Each request its own (an identical signed request within its window is a replay, refused).
    let n = 0;
    const send = (path: string, body: unknown) =>
      toWebhook(
        signedEvent(WEBHOOK_SECRET, 'POST', path, {
          body: JSON.stringify(body),
          idempotencyKey: `enable-${++n}`,
        }),
      );
    // A second Edge Pro cluster without encryption (no API server is reached on this path).
    const created = new Date(Date.now() - 86_400_000).toISOString();
    sandbox.cloud.addCluster({ clusterId: 'c-webhook-enable', kubeconfig: 'unused', created });
    const basic = 'c-webhook-basic';
    sandbox.cloud.addCluster({
      clusterId: basic,
      kubeconfig: 'unused',
      created,
      clusterSpec: 'ack.standard',
    });
    try {
      const path = '/v1/clusters/c-webhook-enable/encryption';
      const dry = await send(path, { keyId: cloud.kmsKeyId, dryRun: true, protectKey: true });
      expect(dry, recentLogs()).toMatchObject({ status: 200, json: { outcome: 'dry-run' } });
      const refused = await send(`/v1/clusters/${basic}/encryption`, { keyId: cloud.kmsKeyId });
      expect(refused.status).toBe(422);
      expect(refused.json.checks).toEqual(
        expect.arrayContaining([expect.objectContaining({ id: 'cluster-type', status: 'fail' })]),
      );
      // The webhook switches only to a key with deletion protection on, or turned on by the request.
      const unprotected = await send(path, { keyId: cloud.kmsKeyId });
      expect(unprotected.status).toBe(422);
      const on = await send(path, { keyId: cloud.kmsKeyId, protectKey: true });
      expect(on).toMatchObject({ status: 202, json: { outcome: 'switched', keyId: cloud.kmsKeyId } });
      expect(on.json.jobId).toMatch(/^rj-c-webhook-enable-/);
      await sandbox.cloud.idle();
      const switched = sandbox.cloud.state.clusters.find((c) => c.clusterId === 'c-webhook-enable');
      expect(switched).toMatchObject({
        state: 'running',
        encryptionKeyId: cloud.kmsKeyId,
        disableEncryption: false,
      });
      // Idempotent: asked again, nothing is switched.
      expect(await send(path, { keyId: cloud.kmsKeyId })).toMatchObject({
        status: 200,
        json: { outcome: 'already-enabled', jobId: on.json.jobId },
      });
      expect((await send(path, { keyId: 'not a key' })).status).toBe(400);
    } finally {
      sandbox.cloud.state.clusters = sandbox.cloud.state.clusters.filter(
        (c) => !['c-webhook-enable', basic].includes(c.clusterId),
      );
    }
  });

  it('the webhook estimates a sweep with ?dryRun=true (signed with the query), and starts nothing', async () => {
    const { cloud } = sandbox.info;
    const send = toWebhook;
    const path = `/v1/clusters/${cloud.clusterId}/reencrypt`;
    const tasks = () =>
      [...sandbox.cloud.functions.tasks.values()].filter((t) => t.functionName === REENCRYPT).length;
    // Secrets no job has rewritten yet (the earlier tests' jobs marked every other one).
    const core = coreApi(sandbox.info.kubeconfig);
    await core.createNamespace({ body: { metadata: { name: 'pipe-estimate' } } });
    for (let i = 0; i < 7; i++)
      await core.createNamespacedSecret({
        namespace: 'pipe-estimate',
        body: {
          metadata: { name: `fresh-${i}` },
          type: 'kubernetes.io/tls',
          stringData: { 'tls.crt': 'x', 'tls.key': 'y' },
        },
      });
    try {
      const before = tasks();
      const dry = await send(signedEvent(WEBHOOK_SECRET, 'POST', path, { query: { dryRun: 'true' } }));
      expect(dry.status).toBe(200);
      const estimate = dry.json.estimate as Record<string, unknown> & {
        toRewrite: number;
        blastRadius: {
          topNamespaces: Array<{ namespace: string; secrets: number }>;
          byType: Record<string, number>;
        };
      };
      expect(dry.json).toMatchObject({ dryRun: true, clusterId: cloud.clusterId, keyId: cloud.kmsKeyId });
      expect(estimate.secrets).toBeGreaterThanOrEqual(COUNT + 7);
      expect(estimate.toRewrite).toBeGreaterThanOrEqual(7);
      expect(estimate.blastRadius.topNamespaces).toContainEqual({ namespace: 'pipe-estimate', secrets: 7 });
      expect(estimate.blastRadius.byType.TLS).toBe(7);
      expect(Object.values(estimate.blastRadius.byType).reduce((a, b) => a + b, 0)).toBe(estimate.toRewrite);
      expect(tasks(), 'a dry run starts nothing').toBe(before);
      // The query is signed: the same signature without ?dryRun=true is refused, not turned into a start.
      const stripped = {
        ...signedEvent(WEBHOOK_SECRET, 'POST', path, { query: { dryRun: 'true' } }),
        queryParameters: {},
      };
      expect((await send(stripped)).status).toBe(401);
      expect(tasks()).toBe(before);
    } finally {
      await core.deleteCollectionNamespacedSecret({ namespace: 'pipe-estimate' });
    }
  });

  it('the webhook starts jobs through the one starter and answers their true status from the state', async () => {
    const { cloud } = sandbox.info;
    const version =
      (await userClients().kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: cloud.kmsKeyId })))
        .keyMetadata?.primaryKeyVersion ?? '';
    const jobId = jobIdFor(cloud.clusterId, cloud.kmsKeyId, version);
    // Each request its own (an identical signed request within its window is a replay, refused).
    let n = 0;
    const call = (method: 'GET' | 'POST', path: string) =>
      toWebhook(signedEvent(WEBHOOK_SECRET, method, path, { idempotencyKey: `jobs-${++n}` }));
    const state = configMapState(coreApi(sandbox.info.kubeconfig), sandbox.info.stateNamespace);
    const write = async (s: ClusterState) => {
      await state.load();
      await state.save(s);
    };
    const base = { jobId, keyId: cloud.kmsKeyId, keyVersionId: version, attempt: 1 };
    const counters = { total: 42, rewritten: 40, alreadyCurrent: 2, gone: 0, failed: 0 };
    const now = () => new Date().toISOString();

    // Completed: the version is current.
    await write({
      completedKeyVersion: version,
      completedAt: now(),
      job: { ...base, phase: 'completed', invocation: 2, updatedAt: now(), report: counters },
    });
    expect(await call('GET', `/v1/jobs/${jobId}`)).toMatchObject({
      status: 200,
      json: { jobId, phase: 'completed', percent: 100, counters, invocation: 2 },
    });
    expect((await call('POST', `/v1/clusters/${cloud.clusterId}/reencrypt`)).json).toMatchObject({
      jobId,
      status: 'rewritten-unproven',
    });

    // In its third invocation: its progress, and a second start finds it under way.
    const checkpoint = {
      targetKeyVersionId: version,
      strategy: 'annotate' as const,
      namespaceIndex: 0,
      counters,
      expected: 168,
    };
    await write({
      completedKeyVersion: 'v-before',
      job: { ...base, phase: 'sweeping', invocation: 3, startedAt: now(), updatedAt: now(), checkpoint },
    });
    expect((await call('GET', `/v1/jobs/${jobId}`)).json).toMatchObject({
      phase: 'sweeping',
      invocation: 3,
      attempt: 1,
      counters,
      percent: 25,
      startedAt: expect.any(String),
    });
    expect((await call('POST', `/v1/clusters/${cloud.clusterId}/reencrypt`)).json).toMatchObject({
      status: 'already-started',
    });

    // Failed, then started again as its next attempt (the webhook's start used to answer already-started forever).
    await write({
      completedKeyVersion: 'v-before',
      job: { ...base, phase: 'failed', invocation: 1, updatedAt: now(), report: { reason: 'boom' } },
    });
    expect((await call('GET', `/v1/jobs/${jobId}`)).json).toMatchObject({
      phase: 'failed',
      lastError: 'boom',
    });
    expect((await call('POST', `/v1/clusters/${cloud.clusterId}/reencrypt`)).json).toMatchObject({
      status: 'restarted',
      attempt: 2,
    });
    await sandbox.cloud.idle();
    expect((await call('GET', `/v1/jobs/${jobId}`)).json).toMatchObject({ phase: 'completed', attempt: 2 });
    expect(
      await call('GET', `/v1/jobs/${jobIdFor(cloud.clusterId, cloud.kmsKeyId, 'v-unknown')}`),
    ).toMatchObject({
      status: 404,
    });
  });

  it('alerts at once on DisableKey of a key in use; a cluster whose API server is down does not stop the others', async () => {
    const { cloud } = sandbox;
    const other = cloud.createKey('key-other-cluster');
    cloud.addCluster({ clusterId: 'c-dead', kubeconfig: deadKubeconfig(), encryptionKeyId: other.keyId });
    cloud.addCluster({
      clusterId: 'c-dead-2',
      kubeconfig: deadKubeconfig(),
      encryptionKeyId: sandbox.info.cloud.kmsKeyId,
    });
    // A cluster whose key KMS does not know (deleted, or not ours to describe).
    cloud.addCluster({
      clusterId: 'c-dead-nokey',
      kubeconfig: deadKubeconfig(),
      encryptionKeyId: 'key-gone-0001',
    });
    cloud.subscribe({
      filter: (e) => e.source === 'acs.kms',
      handler: (b) =>
        cloud.functions.invoke('ack-kms-sentinel-rotation-watch', b, { 'x-fc-invocation-type': 'Async' }),
    });
    receiver.requests.length = 0;
    try {
      await userClients().kms.disableKey(new $Kms.DisableKeyRequest({ keyId: other.keyId }));
      await cloud.idle();
      const critical = notifications('critical');
      expect(critical.map((n) => n.title)).toEqual([`DisableKey on ${other.keyId}`]);
      expect(critical[0]?.details.clusters).toEqual(['c-dead']);

      const { version } = await rotate();
      await cloud.idle();
      const last = [...cloud.functions.tasks.values()]
        .filter((t) => t.functionName === 'ack-kms-sentinel-rotation-watch')
        .at(-1);
      const jobs = JSON.parse(last?.returnPayload ?? '{}').jobs as Array<{
        clusterId: string;
        outcome: string;
      }>;
      expect(jobs.find((j) => j.clusterId === 'c-dead-2')?.outcome).toBe('failed');

      expect(jobs.find((j) => j.clusterId === 'c-sandbox-edge-pro')?.outcome).toBe('started');
      await expectAllMarked(version);

      // A timer tick checks every watched key: the unknown one fails alone.
      const tick = await cloud.functions.invoke(
        'ack-kms-sentinel-rotation-watch',
        Buffer.from(JSON.stringify({ triggerTime: new Date().toISOString(), triggerName: 'poll' })),
        {},
      );
      const ticked = JSON.parse(tick.body).jobs as Array<{
        clusterId: string;
        keyId: string;
        outcome: string;
      }>;
      expect(ticked.find((j) => j.clusterId === 'c-dead-nokey')).toMatchObject({
        keyId: 'key-gone-0001',
        outcome: 'failed',
      });
      expect(ticked.find((j) => j.clusterId === 'c-sandbox-edge-pro')?.outcome).toBe('rewritten-unproven');
    } finally {
      // Later tests must not meet this test's subscribers or dead clusters, whether it passed or not.
      cloud.subscribers.length = 0;
      cloud.state.clusters = cloud.state.clusters.filter((c) => !c.clusterId.startsWith('c-dead'));
    }
  });

  it('a kube-apiserver restart after the rotation is proof too (b): the job sweeps at once, and etcd agrees', async () => {
    const proving = { ...env, SENTINEL_REENCRYPT_ADOPTION_DELAY: '5m', SENTINEL_REENCRYPT_PROOF: 'metrics' };
    register(REENCRYPT, adapt(reencryptHandler({ env: proving, sink: () => undefined })), 120);
    try {
      const { keyId, version } = await rotate();
      // No wait for the plugin's next Status: the restarted API server makes its seed under the new version.
      // A start counts as after the rotation only CLOCK_MARGIN_MS after LastRotationDate (whole seconds).
      await setTimeout(CLOCK_MARGIN_MS + 1_000);
      await sandbox.controlPlane.restartApiServer();
      await sandbox.cloud.functions.fireTimer('ack-kms-sentinel-rotation-watch', 'poll', '', new Date());
      await sandbox.cloud.idle();
      const jobTasks = reencryptTasks(
        jobIdFor(sandbox.info.cloud.clusterId, sandbox.info.cloud.kmsKeyId, version),
      );
      const watchTasks = [...sandbox.cloud.functions.tasks.values()].filter(
        (t) => t.functionName === 'ack-kms-sentinel-rotation-watch',
      );
      expect(
        await completedVersion(),
        JSON.stringify({
          job: jobTasks.map((t) => [t.taskId, t.status, t.returnPayload ?? t.errorMessage]),
          tick: watchTasks.at(-1)?.returnPayload,
        }).slice(0, 3000),
      ).toBe(version);
      const done = reencryptTasks(
        jobIdFor(sandbox.info.cloud.clusterId, sandbox.info.cloud.kmsKeyId, version),
      );
      expect(JSON.parse(done.at(-1)?.returnPayload ?? '{}')).toMatchObject({
        status: 'completed',
        evidence: { verdict: 'effective', apiServers: [{ state: 'restarted' }] },
      });
      await expectAllUnder(keyId);
    } finally {
      register(REENCRYPT, adapt(reencryptHandler({ env, sink: () => undefined })), 120);
    }
  });

  it.each(['the console', 'the webhook'])(
    'encryption turned off from the console, on again from %s: the completion goes, no earlier mark counts, and etcd ends without plaintext',
    async (by) => {
      const { cloud, etcd, kubeconfig } = sandbox.info;
      const tick = async () => {
        await sandbox.cloud.functions.fireTimer('ack-kms-sentinel-rotation-watch', 'poll', '', new Date());
        await sandbox.cloud.idle();
      };
      /**
       * UpdateKMSEncryption as the console sends it (or the webhook's enable), past CS's 5-minute cooldown; the
       * control plane restarts.
       */
      const switchTo = async (on: boolean) => {
        const cluster = sandbox.cloud.state.clusters.find((c) => c.clusterId === cloud.clusterId);
        if (cluster) cluster.lastKmsChange = new Date(Date.now() - 6 * 60_000).toISOString();
        if (on && by === 'the webhook') {
          const path = `/v1/clusters/${cloud.clusterId}/encryption`;
          const res = await toWebhook(
            signedEvent(WEBHOOK_SECRET, 'POST', path, {
              body: JSON.stringify({ keyId: cloud.kmsKeyId, protectKey: true }),
            }),
          );
          expect(res, recentLogs()).toMatchObject({ status: 202, json: { outcome: 'switched' } });
          await sandbox.cloud.idle();
          return;
        }
        await userClients().csRoa(
          'UpdateKMSEncryption',
          'PUT',
          `/clusters/${cloud.clusterId}/kms`,
          {},
          on ? { disable_encryption: false, kms_key_id: cloud.kmsKeyId } : { disable_encryption: true },
        );
        await sandbox.cloud.idle();
      };
      const storedOf = async () =>
        (await readSecretEvidence(etcd)).filter((s) => NAMESPACES.includes(s.namespace));
      const { version } = await rotate();
      await tick();
      expect(await completedVersion()).toBe(version);

      await switchTo(false);
      await tick();
      expect(await completedVersion(), 'a cluster seen off keeps no completion').toBeUndefined();
      // Updated while off: it keeps the suite's mark, and is stored in plaintext.
      const [namespace = ''] = NAMESPACES;
      await coreApi(kubeconfig).patchNamespacedSecret(
        { namespace, name: 's-00000', body: { metadata: { labels: { 'changed-while-off': 'yes' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const whileOff = (await storedOf()).find((s) => s.namespace === namespace && s.name === 's-00000');
      expect(whileOff?.storage).toBe('identity');
      await expectAllMarked(version);

      await switchTo(true);
      await tick();
      const watched = [...sandbox.cloud.functions.tasks.values()].filter(
        (t) => t.functionName === 'ack-kms-sentinel-rotation-watch',
      );
      expect(
        await completedVersion(),
        `${recentLogs()}\n${watched.at(-1)?.returnPayload}\n${JSON.stringify(
          reencryptTasks('rj-')
            .slice(-3)
            .map((t) => [t.taskId, t.status, t.returnPayload ?? t.errorMessage]),
        )}`,
      ).toBe(version);
      const state = JSON.parse(
        (
          await coreApi(kubeconfig).readNamespacedConfigMap({
            namespace: sandbox.info.stateNamespace,
            name: STATE_CONFIGMAP,
          })
        ).data?.state ?? '{}',
      );
      expect(state.marksSince, 'the state says since when marks count').toBeDefined();
      // Every Secret carried this version's mark from before: none was trusted, every one was written again.
      expect(state.job?.report).toMatchObject({ alreadyCurrent: 0, failed: 0 });
      expect(state.job?.report?.rewritten).toBeGreaterThanOrEqual(COUNT);
      expect(
        (await storedOf()).filter((s) => s.storage !== 'kms-v2').map((s) => `${s.namespace}/${s.name}`),
      ).toEqual([]);
    },
  );

  it("the grant step's in-cluster half applies deploy/rbac.yaml for the configured namespace, and again changes nothing", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(sandbox.info.kubeconfig);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const versionOf = async () =>
      (await rbac.readClusterRole({ name: STATE_ROLE })).metadata?.resourceVersion;
    const applied = await applySuiteManifests(kc, 'pipe-state-elsewhere');
    expect(applied).toEqual([
      'Namespace pipe-state-elsewhere',
      'ClusterRole ack-kms-sentinel-secrets',
      'ClusterRole ack-kms-sentinel-state',
      'ClusterRole ack-kms-sentinel-apiserver-identity',
    ]);
    const before = await versionOf();
    await applySuiteManifests(kc, 'pipe-state-elsewhere');
    expect(await versionOf()).toBe(before);
    // A function's identity may not write RBAC: the step is the deploying person's.
    const reencrypt = await sandboxKubeconfigOf(roleName('reencrypt', sandbox.info.cloud.region));
    await expect(applySuiteManifests(reencrypt, 'pipe-state-elsewhere')).rejects.toThrow(
      /Forbidden \(HTTP 403\)/,
    );
  });

  it('a RAM role without the grant is refused by the API server (403), the job says who and what, and `grant` restores it', async () => {
    const uid = sandbox.cloud.roleIdOf(roleName('reencrypt', sandbox.info.cloud.region));
    const operator = userClients();
    const path = `/permissions/users/${uid}`;
    // Someone replaces the reencrypt role's grants with nothing (GrantPermissions replaces the whole list).
    await operator.csRoa('GrantPermissions', 'POST', path, {}, []);
    expect(await operator.csRoa('DescribeUserPermission', 'GET', path)).toEqual([]);
    const { version } = await rotate();
    const refused = await sandbox.cloud.functions.invoke(REENCRYPT, Buffer.from(jobPayload(version)), {});
    expect(refused.body).toContain('Forbidden (HTTP 403)');
    expect(refused.body).toContain('`ack-kms-sentinel grant` binds it');
    expect(refused.body).toContain(`User \\"${uid}\\"`);
    expect(await completedVersion()).not.toBe(version);

    const again = await runGrant();
    expect(again.code, again.stderr).toBe(0);
    const changes = (role: string) =>
      again.stdout
        .split('\n')
        .filter((l) => l.startsWith(`${role} `))
        .map((l) => (l.endsWith('already granted') ? 'present' : 'granted'));
    const { region } = sandbox.info.cloud;
    expect(changes(roleName('reencrypt', region))).toEqual(['granted', 'granted', 'granted']);
    expect(changes(roleName('audit', region))).toEqual(['present', 'present', 'present']);
    const done = await sandbox.cloud.functions.invoke(REENCRYPT, Buffer.from(jobPayload(version)), {});
    expect(JSON.parse(done.body), recentLogs()).toMatchObject({ status: 'completed' });
    expect(await completedVersion()).toBe(version);
  });

  it('answers poison events with a non-retryable error instead of failing, so FC does not retry them', async () => {
    const watch = await sandbox.cloud.functions.invoke(
      'ack-kms-sentinel-rotation-watch',
      Buffer.from('{"specversion":"1.0","source":"acs.oss"'),
      {},
    );
    expect(watch.headers['x-fc-error-type']).toBeUndefined();
    expect(JSON.parse(watch.body)).toMatchObject({
      ok: false,
      poison: true,
      error: { code: 'InvalidEvent' },
    });
    const started = await sandbox.cloud.functions.invoke(
      REENCRYPT,
      Buffer.from('{"version":1,"jobId":"nope"}'),
      { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'poison-1' },
    );
    expect(started.status).toBe(202);
    await sandbox.cloud.idle();
    const task = sandbox.cloud.functions.task(REENCRYPT, 'poison-1');
    expect(task.status).toBe('Succeeded');
    expect(JSON.parse(task.returnPayload ?? '{}')).toMatchObject({ poison: true, error: { path: 'jobId' } });
  });
});

function deadKubeconfig(): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'dead', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } },
    ],
    users: [{ name: 'u', user: { token: 'dead-cluster-token' } }],
    contexts: [{ name: 'dead', context: { cluster: 'dead', user: 'u' } }],
    'current-context': 'dead',
  });
}

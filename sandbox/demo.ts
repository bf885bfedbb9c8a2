import * as $Kms from '@alicloud/kms20160120';
import { CoreV1Api } from '@kubernetes/client-node';
import { createHandler as reencrypt } from '../functions/reencrypt';
import { createHandler as rotationWatch } from '../functions/rotation-watch';
import { createHandler as trailVerify } from '../functions/trail-verify';
import { loadKubeConfig } from '../shared/cluster/kube';
import { readSecretEvidence, summarize } from '../shared/etcd/evidence';
import { type ClusterState, STATE_CONFIGMAP } from '../shared/jobs/store';
import type { FcContext } from '../shared/runtime/handler';
import { consoleClients } from './cloud/console-clients';
import { TRAIL_LOGSTORE, TRAIL_PROJECT } from './cloud/emulator';
import { runEnableDemo } from './demo-enable';
import { demoOptions } from './demo-options';
import { inDemo, seedDemoSecrets } from './demo-seed';
import { printTable, provenComplete, summaryOf } from './demo-summary';
import { SANDBOX_TIMEOUTS, type Sandbox, startSandbox } from './index';

/**
 * `npm run demo`: the main job on the embedded default. Starts the sandbox (control plane + local cloud),
 * seeds a cluster with Secrets, rotates its KMS key through the emulated KMS, and lets the pipeline do the
 * rest through the real handlers and the emulated EventBridge, FC and SLS: rotation detected, job started,
 * adoption proven by the API server, sweep, verification. Ends with a summary; `--json` ends stdout with it
 * as one object.
 *
 * `--constant-key-id` runs it on a control plane whose KMS plugin behaves like the open-source ACK plugin
 * (its key id never changes): the suite must find that a rewrite would change nothing and claim nothing.
 * `--restart-control-plane` then restarts kube-apiserver (a new seed, sealed under the new version), and
 * the next rotation-watch tick sweeps.
 *
 * `--api-servers <n>` runs n kube-apiservers behind a load balancer (`--lb round-robin|random|sticky`);
 * `--restart-api-servers <k>` restarts the last k of them after the rotation, one by one;
 * `--no-lease-access` keeps the suite from listing their identity leases. Before it reports, the demo waits
 * until every API server has called its plugin's Status since the rotation, then one more rotation-watch
 * tick: the verdict it reports is the suite's on evidence that exists.
 *
 * `--enable` runs the vendor document's procedure instead, on a cluster that starts without encryption
 * (sandbox/demo-enable.ts): its JSON has `secrets`, `plaintextBefore`, `plaintextAfter`,
 * `etcdKeyVersionsAfter`, `durationMs`.
 */
const options = (() => {
  try {
    return demoOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    process.exit(2);
  }
})();
const { constantKeyId } = options;
const say = (line: string) => process.stderr.write(`demo: ${line}\n`);
const WATCH = 'ack-kms-sentinel-rotation-watch';

async function main(): Promise<void> {
  if (options.enable) {
    const summary = await runEnableDemo(options.secrets, say);
    if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (summary.outcome !== 'enabled' || summary.plaintextAfter > 0)
      throw new Error(`enable ended ${summary.outcome} with ${summary.plaintextAfter} plaintext Secrets`);
    return;
  }
  const started = Date.now();
  say(
    `starting the sandbox: etcd, ${options.apiServers === 1 ? 'kube-apiserver' : `${options.apiServers} kube-apiservers behind a ${options.loadBalancer} load balancer`}, the KMS v2 plugin${constantKeyId ? ' (behaving like the ACK plugin: a constant key id)' : ''} and the local Alibaba Cloud…`,
  );
  const sandbox = await startSandbox({
    plugin: constantKeyId ? 'constant-key-id' : 'versioned',
    apiServers: options.apiServers,
    loadBalancer: options.loadBalancer,
    leaseAccess: options.leaseAccess,
  });
  const kc = loadKubeConfig({ path: sandbox.info.kubeconfig });
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await seedDemoSecrets(core, options.secrets, (line) =>
      say(`${line} of cluster ${sandbox.info.cloud.clusterId}`),
    );
    const evidence = async () => summarize((await readSecretEvidence(sandbox.info.etcd)).filter(inDemo));
    const before = await evidence();
    registerFunctions(sandbox);
    const { version, rotatedAt } = await rotate(sandbox);
    let state = await waitForJob(sandbox, core, version);
    let restarted: string[] = [];
    if (options.restarts > 0 && !provenComplete(state, version)) {
      restarted = await restartApiServers(sandbox, options.restarts);
      state = await tick(sandbox, core, 'a rotation-watch tick (its timer)…');
    }
    await waitForStatusCalls(sandbox, rotatedAt);
    state = await tick(sandbox, core, 'a later rotation-watch tick, on evidence every API server recorded…');
    const after = await evidence();
    const written = await sealedByApiServer(sandbox);
    const summary = summaryOf(sandbox, {
      secrets: options.secrets,
      version,
      rotatedAt,
      before,
      after,
      state,
      started,
      restarted,
      written,
    });
    printTable(summary);
    if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (!constantKeyId && !summary.claimedComplete) throw new Error('the re-encryption job did not complete');
  } finally {
    kc.close();
    await sandbox.stop();
  }
}

function registerFunctions({ info, cloud }: Sandbox): void {
  const env = {
    SENTINEL_REGION: info.cloud.region,
    SENTINEL_ACCOUNT_ID: info.cloud.accountId,
    SENTINEL_CLUSTER_PROFILE: 'Edge',
    SENTINEL_STATE_NAMESPACE: info.stateNamespace,
    // How long after a rotation to wait for the API server to make a new seed (it polls its plugin every
    // minute, and in the sandbox it is poked every few seconds); with a constant key id none comes.
    SENTINEL_REENCRYPT_ADOPTION_DELAY: constantKeyId ? '20s' : '5m',
    SENTINEL_REENCRYPT_BUDGET_MARGIN: '5s',
    SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
    SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
    SENTINEL_LOG_LEVEL: 'warn',
    // An identity that may not list the identity leases needs the count stated, as an operator would.
    ...(info.leaseAccess === false && info.apiServers.length > 1
      ? { SENTINEL_API_SERVERS: String(info.apiServers.length) }
      : {}),
    ...Object.fromEntries(
      ['KMS', 'CS', 'ACTIONTRAIL', 'FC', 'SLS'].map((s) => [`SENTINEL_ENDPOINT_${s}`, info.cloud.endpoint]),
    ),
  };
  const quiet = { env, sink: () => undefined };
  const register = (name: string, h: (e: unknown, c: FcContext) => Promise<unknown>) =>
    cloud.registerFunction({
      name: `ack-kms-sentinel-${name}`,
      handler: h,
      timeoutSeconds: 300,
      // As s.yaml: FC retries a failed reencrypt invocation twice.
      maxAsyncRetryAttempts: name === 'reencrypt' ? 2 : 0,
    });
  register('rotation-watch', rotationWatch(quiet));
  register('reencrypt', reencrypt(quiet));
  register('trail-verify', trailVerify(quiet));
  cloud.subscribe({
    filter: (e) => e.source === 'acs.kms' || e.source === 'acs.cs',
    handler: (b) =>
      cloud.functions.invoke('ack-kms-sentinel-rotation-watch', b, { 'x-fc-invocation-type': 'Async' }),
  });
  cloud.subscribeTrail((b) =>
    cloud.functions.invoke('ack-kms-sentinel-trail-verify', b, { 'x-fc-invocation-type': 'Async' }),
  );
}

async function rotate({ info, controlPlane }: Sandbox): Promise<{ version: string; rotatedAt: Date }> {
  say(`rotating KMS key ${info.cloud.kmsKeyId} (CreateKeyVersion through the SDK)…`);
  const endpoint = {
    protocol: 'http' as const,
    host: info.cloud.endpoint.slice(7),
    url: info.cloud.endpoint,
  };
  const user = consoleClients({ region: info.cloud.region, endpoints: { kms: endpoint } }, info.cloud.user, {
    timeouts: SANDBOX_TIMEOUTS,
  });
  const rotatedAt = new Date();
  const request = new $Kms.CreateKeyVersionRequest({ keyId: info.cloud.kmsKeyId });
  const version = (await user.kms.createKeyVersion(request)).keyVersion?.keyVersionId ?? '';
  say('EventBridge → rotation-watch → reencrypt job, which waits for the API server’s own evidence…');
  // The API server polls its plugin's Status about once a minute; poking its health check brings that down.
  if (!constantKeyId)
    void controlPlane
      .waitForAdoption(`${info.cloud.kmsKeyId}/${version}`, 180_000)
      .then(() => say('the API server made a new seed under the new key version'))
      .catch(() => undefined);
  else void controlPlane.adminRequest('GET', '/healthz/kms-providers').catch(() => undefined);
  return { version, rotatedAt };
}

async function readState({ info }: Sandbox, core: CoreV1Api): Promise<ClusterState> {
  const cm = await core
    .readNamespacedConfigMap({ namespace: info.stateNamespace, name: STATE_CONFIGMAP })
    .catch(() => undefined);
  return JSON.parse(cm?.data?.state ?? '{}') as ClusterState;
}

/** Waits until the job for `version` completed, or is waiting for a seed. */
async function waitForJob(sandbox: Sandbox, core: CoreV1Api, version: string): Promise<ClusterState> {
  const { cloud } = sandbox;
  let state: ClusterState = {};
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    await cloud.idle();
    state = await readState(sandbox, core);
    if (state.completedKeyVersion === version) return state;
    if (state.job?.keyVersionId === version && state.job.phase === 'waiting-for-new-seed') {
      say('the API servers proved a rewrite now would change nothing: the job waits for a new seed');
      return state;
    }
    if (state.job?.keyVersionId === version && state.job.phase === 'failed')
      throw new Error(`the re-encryption job failed: ${JSON.stringify(state.job.report ?? {})}`);
    say(`… job ${state.job?.phase ?? 'not started yet'}`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const tasks = [...cloud.functions.tasks.values()].map(
    (t) =>
      `${t.functionName} ${t.taskId} ${t.status}${t.errorMessage ? ` (${t.errorMessage.slice(0, 300)})` : ''}`,
  );
  throw new Error(
    `the job did not get there in 180 s: ${JSON.stringify(state.job ?? {})}; tasks: ${tasks.join('; ')}`,
  );
}

/**
 * Restarts the last `count` API servers one by one, as a managed control plane restarts some of its hosts. A
 * sticky balancer pins this machine to the first one (its first connection), so `--lb sticky` keeps the suite
 * on one that was not restarted: a rewrite through it would not re-seal, and the suite must see that. (Kept
 * on a restarted one instead, the suite must claim nothing either: test/integration/multi-apiserver.test.ts.)
 */
async function restartApiServers({ controlPlane, info }: Sandbox, count: number): Promise<string[]> {
  const restarted: string[] = [];
  const first = info.apiServers.length - count;
  for (const [i, server] of info.apiServers.slice(first).entries()) {
    say(
      `restarting ${server.name} (${i + 1} of ${count}), as a managed control plane does on an upgrade: a new seed…`,
    );
    await controlPlane.restartApiServer(first + i);
    restarted.push(server.name);
  }
  return restarted;
}

/** A rotation-watch tick (its timer), and the state once every invocation it led to has ended. */
async function tick(sandbox: Sandbox, core: CoreV1Api, what: string): Promise<ClusterState> {
  say(what);
  await sandbox.cloud.functions.fireTimer(WATCH, 'poll', '', new Date());
  await sandbox.cloud.idle();
  return readState(sandbox, core);
}

/**
 * Waits until every API server has called its plugin's Status since the rotation. An API server records the
 * key id Status returns in its /metrics (about once a minute); before that its metrics say nothing about the
 * rotation, and a verdict read then judges evidence that does not exist yet.
 */
async function waitForStatusCalls({ controlPlane, info }: Sandbox, since: Date): Promise<void> {
  const silent = () =>
    info.apiServers.filter((_, i) => (controlPlane.plugins[i]?.statusCallsSince(since) ?? 0) === 0);
  if (silent().length === 0) return;
  say(
    `waiting for a KMS Status call since the rotation from ${silent()
      .map((s) => s.name)
      .join(', ')}…`,
  );
  const deadline = Date.now() + 180_000;
  while (silent().length > 0) {
    if (Date.now() > deadline)
      throw new Error(
        `no KMS Status call since the rotation from ${silent()
          .map((s) => s.name)
          .join(', ')} in 180 s`,
      );
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/**
 * What etcd shows each API server seals a write with now: one Secret written through each alone, and the KMS
 * key version that sealed the seed it is stored under. The demo's Secrets say what the sweep's writes got;
 * this says what the next write through any of the API servers gets.
 */
async function sealedByApiServer({ controlPlane, info }: Sandbox): Promise<Record<string, string>> {
  const namespace = 'demo-probe';
  await controlPlane.adminRequest('POST', '/api/v1/namespaces', { metadata: { name: namespace } });
  for (const [i, server] of info.apiServers.entries()) {
    const secret = {
      metadata: { name: `written-through-${server.name}` },
      stringData: { probe: 'not-a-secret' },
    };
    const res = await controlPlane.adminRequest('POST', `/api/v1/namespaces/${namespace}/secrets`, secret, i);
    if (res.status !== 201)
      throw new Error(`writing a Secret through ${server.name}: ${res.status} ${res.body}`);
  }
  const stored = await readSecretEvidence(info.etcd, { prefix: `/registry/secrets/${namespace}/` });
  return Object.fromEntries(
    stored.map((s) => [s.name.slice('written-through-'.length), s.sealedByVersion ?? s.storage]),
  );
}

main().catch((err: Error) => {
  process.stderr.write(`demo: failed: ${err.message}\n`);
  process.exit(1);
});

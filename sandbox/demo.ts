import * as $Kms from '@alicloud/kms20160120';
import { CoreV1Api } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { createHandler as reencrypt } from '../functions/reencrypt';
import { createHandler as rotationWatch } from '../functions/rotation-watch';
import { createHandler as trailVerify } from '../functions/trail-verify';
import { createCloudClients } from '../shared/cloud/clients';
import { loadKubeConfig } from '../shared/cluster/kube';
import { readSecretEvidence, summarize } from '../shared/etcd/evidence';
import { isManagedSecurityRole } from '../shared/events';
import { STATE_CONFIGMAP } from '../shared/jobs/state';
import type { FcContext } from '../shared/runtime/handler';
import { TRAIL_LOGSTORE, TRAIL_PROJECT } from './cloud/emulator';
import { startSandbox } from './index';

/**
 * `npm run demo`: the main job on the embedded default. Starts the sandbox (control plane + local cloud),
 * seeds a cluster with Secrets, rotates its KMS key through the emulated KMS, and lets the pipeline do the
 * rest through the real handlers and the emulated EventBridge, FC and SLS: rotation detected, job started,
 * adoption awaited, sweep, verification. Ends with a summary; `--json` ends stdout with it as one object.
 */
const asJson = process.argv.includes('--json');
const SECRETS = 300;
const NAMESPACES = ['payments', 'orders', 'auth', 'helm-releases'];
const say = (line: string) => process.stderr.write(`demo: ${line}\n`);

async function main(): Promise<void> {
  const started = Date.now();
  say('starting the sandbox: etcd, kube-apiserver, the KMS v2 plugin and the local Alibaba Cloud…');
  const sandbox = await startSandbox();
  const { info, cloud } = sandbox;
  try {
    const kc = loadKubeConfig({ path: info.kubeconfig });
    const core = kc.makeApiClient(CoreV1Api);
    say(`seeding ${SECRETS} Secrets in ${NAMESPACES.length} namespaces of cluster ${info.cloud.clusterId}`);
    for (const name of NAMESPACES) await core.createNamespace({ body: { metadata: { name } } });
    const limit = pLimit(16);
    await Promise.all(
      Array.from({ length: SECRETS }, (_, i) =>
        limit(() =>
          core.createNamespacedSecret({
            namespace: NAMESPACES[i % NAMESPACES.length] ?? 'default',
            body: {
              metadata: { name: `secret-${i}` },
              stringData: { value: `demo-${i}-${Math.random().toString(36).slice(2)}` },
            },
          }),
        ),
      ),
    );
    const inDemo = (s: { namespace: string }) => NAMESPACES.includes(s.namespace);
    const before = summarize((await readSecretEvidence(info.etcd)).filter(inDemo)).byKeyId;

    const env = {
      SENTINEL_REGION: info.cloud.region,
      SENTINEL_ACCOUNT_ID: info.cloud.accountId,
      SENTINEL_CLUSTER_PROFILE: 'Edge',
      SENTINEL_STATE_NAMESPACE: info.stateNamespace,
      SENTINEL_REENCRYPT_ADOPTION_DELAY: '5m',
      SENTINEL_REENCRYPT_BUDGET_MARGIN: '5s',
      SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
      SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
      SENTINEL_LOG_LEVEL: 'warn',
      ...Object.fromEntries(
        ['KMS', 'CS', 'ACTIONTRAIL', 'FC', 'SLS'].map((s) => [`SENTINEL_ENDPOINT_${s}`, info.cloud.endpoint]),
      ),
    };
    const quiet = { env, sink: () => undefined };
    const register = (
      name: string,
      h: (e: unknown, c: FcContext) => Promise<unknown>,
      timeoutSeconds = 300,
    ) =>
      cloud.registerFunction({
        name: `ack-kms-sentinel-${name}`,
        handler: h,
        timeoutSeconds,
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

    say(`rotating KMS key ${info.cloud.kmsKeyId} (CreateKeyVersion through the SDK)…`);
    const user = createCloudClients(
      {
        region: info.cloud.region,
        endpoints: {
          kms: { protocol: 'http', host: info.cloud.endpoint.slice(7), url: info.cloud.endpoint },
        },
      },
      info.cloud.user,
    );
    const rotatedAt = new Date();
    const version =
      (await user.kms.createKeyVersion(new $Kms.CreateKeyVersionRequest({ keyId: info.cloud.kmsKeyId })))
        .keyVersion?.keyVersionId ?? '';
    const newKeyId = `${info.cloud.kmsKeyId}/${version}`;
    say(
      'EventBridge → rotation-watch → reencrypt job; waiting until the API server encrypts with the new version…',
    );
    const adoption = sandbox.controlPlane
      .waitForAdoption(newKeyId, 180_000)
      .then(() => say('the API server adopted the new key version'));
    const ticker = setInterval(() => {
      const tasks = [...cloud.functions.tasks.values()].filter((t) => t.functionName.endsWith('reencrypt'));
      say(
        `… ${tasks.length} reencrypt invocation(s), ${tasks.filter((t) => t.status === 'Running').length} running`,
      );
    }, 5_000);
    await adoption;
    let completed: Record<string, unknown> = {};
    for (let i = 0; i < 240; i++) {
      await cloud.idle();
      const cm = await core
        .readNamespacedConfigMap({ namespace: info.stateNamespace, name: STATE_CONFIGMAP })
        .catch(() => undefined);
      completed = JSON.parse(cm?.data?.state ?? '{}') as Record<string, unknown>;
      if (completed.completedKeyVersion === version) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    clearInterval(ticker);
    if (completed.completedKeyVersion !== version) throw new Error('the re-encryption job did not complete');
    const after = summarize((await readSecretEvidence(info.etcd)).filter(inDemo)).byKeyId;
    const managedRoleEncrypts = cloud.state.events.filter(
      (e) =>
        e.eventName === 'Encrypt' &&
        isManagedSecurityRole(e.userIdentity) &&
        e.eventTime >= new Date(rotatedAt.getTime() - 1000),
    );
    const job = (completed.job ?? {}) as { report?: Record<string, unknown>; invocation?: number };
    const summary = {
      cluster: info.cloud.clusterId,
      keyId: info.cloud.kmsKeyId,
      newKeyVersion: version,
      secrets: SECRETS,
      rewritten: Number(job.report?.rewritten ?? 0),
      alreadyCurrent: Number(job.report?.alreadyCurrent ?? 0),
      failed: Number(job.report?.failed ?? 0),
      etcdKeyVersionsBefore: before,
      etcdKeyVersionsAfter: after,
      managedRoleEncryptEvents: managedRoleEncrypts.length,
      managedRole: managedRoleEncrypts[0]?.userIdentity.userName,
      reencryptInvocations: [...cloud.functions.tasks.values()].filter((t) =>
        t.functionName.endsWith('reencrypt'),
      ).length,
      durationMs: Date.now() - started,
    };
    kc.close();
    const rows: Array<[string, string]> = [
      ['cluster', `${summary.cluster} (ACK Edge Pro, local control plane)`],
      ['KMS key', `${summary.keyId} → new version ${summary.newKeyVersion}`],
      [
        'etcd before',
        Object.entries(before)
          .map(([k, n]) => `${n} under ${k}`)
          .join('; '),
      ],
      [
        'etcd after',
        Object.entries(after)
          .map(([k, n]) => `${n} under ${k}`)
          .join('; '),
      ],
      [
        'job',
        `${summary.rewritten} rewritten, ${summary.alreadyCurrent} already current, ${summary.failed} failed, ${summary.reencryptInvocations} invocation(s)`,
      ],
      [
        'ActionTrail',
        `${summary.managedRoleEncryptEvents} Encrypt call(s) by ${summary.managedRole ?? 'the managed role'} since the rotation`,
      ],
      ['time', `${(summary.durationMs / 1000).toFixed(1)} s`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stderr.write(`\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n\n`);
    if (asJson) process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await sandbox.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`demo: failed: ${err.message}\n`);
  process.exit(1);
});

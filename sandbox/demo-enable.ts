import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig, openCluster } from '../shared/cluster/kube';
import { clusterKubeconfig } from '../shared/cluster/user-kubeconfig';
import { type EnableReport, enableEncryption } from '../shared/encryption/enable';
import { readSecretEvidence, summarize } from '../shared/etcd/evidence';
import { inDemo, seedDemoSecrets } from './demo-seed';
import { type Sandbox, sandboxUserClients, startSandbox } from './index';

/**
 * `npm run demo -- --enable`: the vendor document's whole procedure on a cluster that starts without Secret
 * encryption. Seeds Secrets (plaintext in etcd), then `enable` as a console user would run it against the
 * local cloud: pre-flight checks, UpdateKMSEncryption (the sandbox restarts kube-apiserver with KMS v2, the
 * cluster goes Updating → Running), the managed role's Encrypt in ActionTrail, the API server's new seed, a
 * sweep, the census. etcd is read before and after by the project's evidence reader.
 */
export interface EnableDemoSummary {
  secrets: number;
  plaintextBefore: number;
  plaintextAfter: number;
  /** After the switch, before the sweep: the Secrets written before are still plaintext… */
  plaintextAfterSwitch: number;
  /** …while one written then is stored through KMS v2. */
  newSecretAfterSwitch: string;
  /** KMS key version that sealed each Secret's seed → Secrets, after (`identity` entries would be plaintext). */
  etcdKeyVersionsAfter: Record<string, number>;
  durationMs: number;
  outcome: EnableReport['outcome'];
  steps: EnableReport['steps'];
  proof?: EnableReport['proof'];
}

export async function runEnableDemo(
  secrets: number,
  say: (line: string) => void,
): Promise<EnableDemoSummary> {
  const started = Date.now();
  say('starting the sandbox with a cluster whose Secret encryption is off…');
  const sandbox = await startSandbox({ encryption: 'none' });
  const kc = loadKubeConfig({ path: sandbox.info.kubeconfig });
  try {
    await seedDemoSecrets(kc.makeApiClient(CoreV1Api), secrets, say);
    const etcd = async () => summarize((await readSecretEvidence(sandbox.info.etcd)).filter(inDemo));
    const before = await etcd();
    say(`etcd: ${before.plaintext} of ${before.total} Secrets plaintext; running enable…`);
    const between = { plaintext: -1, storage: 'unknown' };
    const report = await enable(sandbox, say, async () => {
      between.plaintext = (await etcd()).plaintext;
      await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
        namespace: 'payments',
        body: { metadata: { name: 'written-after-switch' }, stringData: { token: 'after-switch' } },
      });
      const stored = (await readSecretEvidence(sandbox.info.etcd)).find(
        (x) => x.name === 'written-after-switch',
      );
      between.storage = stored?.storage ?? 'missing';
      say(
        `after the switch: ${between.plaintext} Secrets still plaintext; a new one is stored as ${between.storage}`,
      );
    });
    const after = await etcd();
    say(`etcd: ${after.plaintext} of ${after.total} Secrets plaintext after enable (${report.outcome})`);
    return {
      secrets: before.total,
      plaintextBefore: before.plaintext,
      plaintextAfter: after.plaintext,
      plaintextAfterSwitch: between.plaintext,
      newSecretAfterSwitch: between.storage,
      etcdKeyVersionsAfter: after.bySealingVersion,
      durationMs: Date.now() - started,
      outcome: report.outcome,
      steps: report.steps,
      ...(report.proof ? { proof: report.proof } : {}),
    };
  } finally {
    kc.close();
    await sandbox.stop();
  }
}

/** `enable` as the account's user runs it, against the local cloud; steps printed as they happen. */
function enable(
  sandbox: Sandbox,
  say: (line: string) => void,
  /** Runs once the cluster is Running with encryption on, before the sweep. */
  afterSwitch: () => Promise<void>,
): Promise<EnableReport> {
  const { cloud } = sandbox.info;
  const clients = sandboxUserClients(sandbox.info);
  return enableEncryption(
    {
      clients,
      openCluster: async () => {
        await afterSwitch();
        return openCluster(await clusterKubeconfig(clients, cloud.clusterId, 60));
      },
      accountId: cloud.accountId,
      waits: { pollMs: 500, runningMs: 180_000, evidenceMs: 60_000 },
      onStep: (s) =>
        say(`${s.status === 'done' ? '✓' : s.status === 'skipped' ? '–' : '✗'} ${s.step}: ${s.detail}`),
    },
    { clusterId: cloud.clusterId, keyId: cloud.kmsKeyId },
  );
}

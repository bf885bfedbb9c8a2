// How the control plane's parts are started and wired: files, processes and the flags that join them.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SENTINEL_USER } from '../../shared/cluster/rbac';
import type { K8sBinaries } from '../k8s-bins';
import type { KeyProvider } from '../kms-plugin/key-provider';
import { KmsV2Plugin } from '../kms-plugin/plugin';
import { ApiServer } from './apiserver';
import { ensureClientCa } from './identities';
import { freePort, type Managed, startProcess, waitFor } from './processes';

/** One KMS v2 plugin per API server, all over the one KeyProvider: a lone one's socket is in `workDir`. */
export function pluginsFor(provider: KeyProvider, workDir: string, count: number): KmsV2Plugin[] {
  if (count === 1) return [new KmsV2Plugin(provider, workDir)];
  mkdirSync(join(workDir, 'kms'), { recursive: true });
  return Array.from({ length: count }, (_, i) => {
    const dir = join(workDir, `apiserver-${i}`);
    mkdirSync(dir, { recursive: true });
    return new KmsV2Plugin(provider, dir);
  });
}

/** etcd, at the version the Kubernetes release pins, without fsync: test data need not survive a crash. */
export async function startEtcd(
  binaries: K8sBinaries,
  workDir: string,
  timeoutMs: number,
  quotaBackendBytes?: number,
): Promise<{ etcd: Managed; etcdUrl: string }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const etcd = startProcess(
    'etcd',
    binaries.etcd,
    [
      `--data-dir=${join(workDir, 'etcd-data')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
      // A small quota shows the NOSPACE alarm (and the sweep's space guard) within a few seconds of writes.
      ...(quotaBackendBytes ? [`--quota-backend-bytes=${quotaBackendBytes}`] : []),
    ],
    join(workDir, 'etcd.log'),
  );
  try {
    await waitFor(
      'etcd',
      async () =>
        ((await (await fetch(`${etcdUrl}/health`)).json()) as { health?: string }).health === 'true',
      { timeoutMs, abort: etcd.exited, logTail: () => etcd.tail() },
    );
  } catch (err) {
    await etcd.stop();
    throw err;
  }
  return { etcd, etcdUrl };
}

/** The tokens (admin, the suite's identity) and the service-account key every API server shares. */
export function writeCredentials(workDir: string) {
  const adminToken = randomBytes(24).toString('hex');
  const sentinelToken = randomBytes(24).toString('hex');
  const certDir = join(workDir, 'certs');
  mkdirSync(certDir, { recursive: true });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = join(certDir, 'sa.key');
  writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const tokens = join(workDir, 'tokens.csv');
  writeFileSync(
    tokens,
    `${adminToken},admin,admin-uid,"system:masters"\n${sentinelToken},${SENTINEL_USER},${SENTINEL_USER}-uid\n`,
    { mode: 0o600 },
  );
  // The CA of the client certificates CS's emulated DescribeClusterUserKubeconfig issues (identities.ts).
  const clientCaFile = ensureClientCa(certDir);
  return {
    adminToken,
    sentinelToken,
    certDir,
    saKey,
    tokens,
    clientCaFile,
    caFile: join(certDir, 'apiserver.crt'),
  };
}

export interface LaunchCommon extends ReturnType<typeof writeCredentials> {
  binaries: K8sBinaries;
  workDir: string;
  etcdUrl: string;
  apiServer: string;
  encryptionConfig: string;
  timeoutMs: number;
}

/** API server `index` of `count`: a lone one as before; one of several with its own host name and plugin. */
export function apiServerFor(
  plugin: KmsV2Plugin,
  index: number,
  port: number,
  count: number,
  c: LaunchCommon,
  extraArgs: string[],
): ApiServer {
  const alone = count === 1;
  const name = alone ? 'kube-apiserver' : `apiserver-${index}`;
  const args = [
    `--etcd-servers=${c.etcdUrl}`,
    `--secure-port=${port}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // One self-signed serving certificate for all (the first to start makes it, the others find it): it names
    // 127.0.0.1, so it is valid for the balancer's address too, and the kubeconfigs' CA checks every one.
    `--cert-dir=${c.certDir}`,
    '--authorization-mode=RBAC',
    `--token-auth-file=${c.tokens}`,
    `--client-ca-file=${c.clientCaFile}`,
    // The cluster's address (the balancer's, with several): tokens one API server issues, all accept.
    `--service-account-issuer=${c.apiServer}/`,
    `--service-account-key-file=${c.saKey}`,
    `--service-account-signing-key-file=${c.saKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    `--encryption-provider-config=${c.encryptionConfig}`,
    '--profiling=false',
    '--v=1',
    ...extraArgs,
  ];
  const dir = alone ? c.workDir : join(c.workDir, name);
  return new ApiServer(
    { name, url: `https://127.0.0.1:${port}`, hostname: alone ? hostname() : name },
    plugin,
    {
      binary: c.binaries.kubeApiserver,
      args,
      logFile: join(dir, 'kube-apiserver.log'),
      ...(alone
        ? {}
        : { namespace: { hostname: name, pluginDir: dir, sharedKmsDir: join(c.workDir, 'kms') } }),
      adminToken: c.adminToken,
      caFile: c.caFile,
      timeoutMs: c.timeoutMs,
    },
  );
}

/** The first API server alone (it writes the shared serving certificate), then the others side by side. */
export async function startAll(servers: ApiServer[]): Promise<void> {
  const [first, ...others] = servers;
  await first?.start();
  const results = await Promise.allSettled(others.map((s) => s.start()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The admin kubeconfig and the suite's least-privileged one, both for the cluster's address. */
export function writeKubeconfigs(
  workDir: string,
  apiServer: string,
  creds: { caFile: string; adminToken: string; sentinelToken: string },
): { kubeconfig: string; restrictedKubeconfig: string } {
  const kubeconfig = join(workDir, 'admin.kubeconfig');
  const restrictedKubeconfig = join(workDir, 'sentinel.kubeconfig');
  writeFileSync(kubeconfig, kubeconfigFor(apiServer, creds.caFile, 'admin', creds.adminToken), {
    mode: 0o600,
  });
  writeFileSync(
    restrictedKubeconfig,
    kubeconfigFor(apiServer, creds.caFile, SENTINEL_USER, creds.sentinelToken),
    { mode: 0o600 },
  );
  return { kubeconfig, restrictedKubeconfig };
}

function kubeconfigFor(server: string, caFile: string, user: string, token: string): string {
  // JSON is YAML: kubectl and @kubernetes/client-node read it as a kubeconfig.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'sandbox',
          cluster: { server, 'certificate-authority-data': readFileSync(caFile).toString('base64') },
        },
      ],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'sandbox', user } }],
      'current-context': user,
    },
    null,
    2,
  );
}

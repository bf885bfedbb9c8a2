import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rbacObjects, SENTINEL_USER } from '../../shared/cluster/rbac';
import { ensureBinaries } from '../k8s-bins';
import type { KeyProvider } from '../kms-plugin/key-provider';
import { KmsV2Plugin } from '../kms-plugin/plugin';
import { ExitedEarly, freePort, type Managed, startProcess, waitFor } from './processes';

/**
 * A real Kubernetes control plane for tests and the demo, the way controller-runtime's envtest runs one:
 * etcd and kube-apiserver from the pinned build, on free loopback ports, with Secrets encrypted by a KMS v2
 * plugin on a unix socket (then `identity`, so pre-existing plaintext stays readable). Two kubeconfigs:
 * an admin one, and the suite's least-privileged identity (`shared/cluster/rbac.ts`).
 */
export interface ControlPlaneInfo {
  /** Admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** The suite's least-privileged kubeconfig. */
  restrictedKubeconfig: string;
  /** etcd client URL. */
  etcd: string;
  /** The EncryptionConfiguration's KMS provider name: etcd values start with `k8s:enc:kms:v2:<name>:`. */
  kmsProviderName: string;
  apiServer: string;
  caFile: string;
  stateNamespace: string;
  workDir: string;
}

/** How kube-apiserver writes Secrets: through the KMS v2 plugin, or in plaintext. */
export type EncryptionMode = 'kms' | 'identity';

function writeEncryptionConfig(path: string, mode: EncryptionMode, name: string, endpoint: string): void {
  const kms = { kms: { apiVersion: 'v2', name, endpoint, timeout: '3s' } };
  const identity = { identity: {} };
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'EncryptionConfiguration',
      resources: [{ resources: ['secrets'], providers: mode === 'kms' ? [kms, identity] : [identity, kms] }],
    }),
  );
}

export interface ControlPlaneOptions {
  provider: KeyProvider;
  kmsProviderName?: string;
  stateNamespace?: string;
  /** Where certificates, kubeconfigs, logs and etcd data go; a fresh temporary directory by default. */
  workDir?: string;
  startTimeoutMs?: number;
  /** More kube-apiserver flags. */
  apiServerArgs?: string[];
  /** How Secrets are written at start: `kms` (default), or `identity` for a cluster without encryption. */
  encryption?: EncryptionMode;
}

export class ControlPlane {
  private constructor(
    readonly info: ControlPlaneInfo,
    readonly plugin: KmsV2Plugin,
    private readonly processes: Managed[],
    private readonly adminToken: string,
    private readonly ownsWorkDir: boolean,
    private readonly launchApiServer: () => Promise<Managed>,
    private readonly writeEncryption: (mode: EncryptionMode) => void,
    private encryptionMode: EncryptionMode,
  ) {}

  /** How kube-apiserver writes Secrets now: sealed by the KMS v2 plugin, or in plaintext (`identity`). */
  get encryption(): EncryptionMode {
    return this.encryptionMode;
  }

  /**
   * Turns Secret encryption on or off as ACK's UpdateKMSEncryption does on a managed control plane: a new
   * EncryptionConfiguration, then kube-apiserver restarted with it. Either way both providers stay listed (the
   * writing one first), so Secrets written before stay readable: plaintext ones after `kms`, sealed ones after
   * `identity`. Secrets already stored are not rewritten; that is the sweep's work.
   */
  async setEncryption(mode: EncryptionMode): Promise<void> {
    if (mode === this.encryptionMode) return;
    this.writeEncryption(mode);
    await this.restartApiServer();
    this.encryptionMode = mode;
  }

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    // Ports are free when picked and taken when bound: another sandbox starting on the same machine can take
    // one in between (etcd or kube-apiserver then exits at once, "address already in use"). A control plane in
    // a directory of its own starts again on new ports.
    for (let attempt = 1; ; attempt++) {
      try {
        return await ControlPlane.startOnce(options);
      } catch (err) {
        const clash = err instanceof ExitedEarly && /address already in use/.test(err.message);
        if (!clash || options.workDir || attempt === 3) throw err;
        process.stderr.write(
          `sandbox: a port was taken meanwhile, starting again on others (${err.message})\n`,
        );
      }
    }
  }

  private static async startOnce(options: ControlPlaneOptions): Promise<ControlPlane> {
    const binaries = ensureBinaries();
    const ownsWorkDir = !options.workDir;
    const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'ack-kms-sentinel-cp-'));
    mkdirSync(workDir, { recursive: true });
    const kmsProviderName = options.kmsProviderName ?? 'ack-kms-sentinel';
    const stateNamespace = options.stateNamespace ?? 'ack-kms-sentinel';
    const timeoutMs = options.startTimeoutMs ?? 120_000;
    const processes: Managed[] = [];
    const plugin = new KmsV2Plugin(options.provider, workDir);

    const cleanup = async () => {
      for (const p of processes.reverse()) await p.stop();
      await plugin.stop();
      if (ownsWorkDir) rmSync(workDir, { recursive: true, force: true });
    };

    try {
      await plugin.start();

      // etcd, at the version the Kubernetes release pins, without fsync: test data need not survive a crash.
      const [clientPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()];
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
        ],
        join(workDir, 'etcd.log'),
      );
      processes.push(etcd);
      await waitFor(
        'etcd',
        async () =>
          ((await (await fetch(`${etcdUrl}/health`)).json()) as { health?: string }).health === 'true',
        { timeoutMs, abort: etcd.exited, logTail: () => etcd.tail() },
      );

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
      const encryptionConfig = join(workDir, 'encryption-config.json');
      const writeEncryption = (mode: EncryptionMode) =>
        writeEncryptionConfig(encryptionConfig, mode, kmsProviderName, plugin.endpoint);
      writeEncryption(options.encryption ?? 'kms');

      const apiServer = `https://127.0.0.1:${securePort}`;
      const caFile = join(certDir, 'apiserver.crt');
      const apiserverArgs = [
        `--etcd-servers=${etcdUrl}`,
        `--secure-port=${securePort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--cert-dir=${certDir}`,
        '--authorization-mode=RBAC',
        `--token-auth-file=${tokens}`,
        `--service-account-issuer=${apiServer}/`,
        `--service-account-key-file=${saKey}`,
        `--service-account-signing-key-file=${saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        `--encryption-provider-config=${encryptionConfig}`,
        '--profiling=false',
        '--v=1',
        ...(options.apiServerArgs ?? []),
      ];
      const launch = () =>
        launchApiServer(binaries.kubeApiserver, apiserverArgs, workDir, {
          apiServer,
          adminToken,
          caFile,
          timeoutMs,
        });
      const apiserver = await launch();
      processes.push(apiserver);

      const kubeconfig = join(workDir, 'admin.kubeconfig');
      const restrictedKubeconfig = join(workDir, 'sentinel.kubeconfig');
      writeFileSync(kubeconfig, kubeconfigFor(apiServer, caFile, 'admin', adminToken), { mode: 0o600 });
      writeFileSync(restrictedKubeconfig, kubeconfigFor(apiServer, caFile, SENTINEL_USER, sentinelToken), {
        mode: 0o600,
      });

      const cp = new ControlPlane(
        {
          kubeconfig,
          restrictedKubeconfig,
          etcd: etcdUrl,
          kmsProviderName,
          apiServer,
          caFile,
          stateNamespace,
          workDir,
        },
        plugin,
        processes,
        adminToken,
        ownsWorkDir,
        launch,
        writeEncryption,
        options.encryption ?? 'kms',
      );
      await cp.applyRbac();
      return cp;
    } catch (err) {
      await cleanup();
      throw err;
    }
  }

  /**
   * Restarts kube-apiserver, as a managed control plane does on an upgrade: the new process generates a new
   * data-key seed (sealed by the plugin under the key's primary version then). Resolves once it is ready.
   */
  async restartApiServer(): Promise<void> {
    const i = this.processes.findIndex((p) => p.name === 'kube-apiserver');
    const old = this.processes[i];
    if (!old) throw new Error('kube-apiserver is not running');
    await old.stop();
    this.processes[i] = await this.launchApiServer();
  }

  /** Stops everything this control plane started and removes its files. */
  async stop(): Promise<void> {
    for (const p of [...this.processes].reverse()) await p.stop();
    await this.plugin.stop();
    if (this.ownsWorkDir) rmSync(this.info.workDir, { recursive: true, force: true });
  }

  /**
   * Waits until the API server encrypts with `keyId`. The API server polls the plugin's Status about once a
   * minute; `/healthz/kms-providers` runs the same check when 20 s have passed since the last one, so poking
   * it every 2 s brings adoption down to ~20 s (docs/cloud-facts.md#kms-v2-internals).
   */
  async waitForAdoption(keyId: string, timeoutMs = 120_000): Promise<void> {
    let done = false;
    const adopted = this.plugin.waitForAdoption(keyId, timeoutMs).finally(() => {
      done = true;
    });
    const poke = (async () => {
      while (!done) {
        await httpsGet(
          this.info.apiServer,
          '/healthz/kms-providers',
          this.adminToken,
          this.info.caFile,
        ).catch(() => {});
        await Promise.race([new Promise((r) => setTimeout(r, 2_000)), adopted.catch(() => {})]);
      }
    })();
    await adopted;
    await poke;
    // `adopted` fires when the plugin answers the API server's Encrypt for the new key id, a moment before
    // the API server stores its new encryption state. It does that under the KMS health probe's lock, so an
    // answer to one more probe means the state is stored and every later write uses the new version.
    await httpsGet(this.info.apiServer, '/healthz/kms-providers', this.adminToken, this.info.caFile);
  }

  /** A raw admin request, for the harness's own setup and checks. */
  adminRequest(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    return httpsRequest(this.info.apiServer, method, path, this.adminToken, this.info.caFile, body);
  }

  private async applyRbac(): Promise<void> {
    const ns = this.info.stateNamespace;
    const objects = rbacObjects(ns);
    const steps: Array<[string, unknown]> = [
      ['/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }],
      ['/apis/rbac.authorization.k8s.io/v1/clusterroles', objects.clusterRole],
      ['/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', objects.clusterRoleBinding],
      [`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, objects.role],
      [`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, objects.roleBinding],
      ['/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles', objects.identityRole],
      ['/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings', objects.identityRoleBinding],
    ];
    for (const [path, body] of steps) {
      const res = await this.adminRequest('POST', path, body);
      if (res.status !== 201 && res.status !== 409)
        throw new Error(`creating ${path} failed: ${res.status} ${res.body}`);
    }
  }
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

function httpsRequest(
  base: string,
  method: string,
  path: string,
  token: string,
  caFile: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      `${base}${path}`,
      {
        method,
        ca: readFileSync(caFile),
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

const httpsGet = (base: string, path: string, token: string, caFile: string) =>
  httpsRequest(base, 'GET', path, token, caFile);

/** Starts kube-apiserver and waits until it is ready (the self-generated serving certificate holds its CA). */
async function launchApiServer(
  binary: string,
  args: string[],
  workDir: string,
  o: { apiServer: string; adminToken: string; caFile: string; timeoutMs: number },
): Promise<Managed> {
  const log = join(workDir, 'kube-apiserver.log');
  // On a loaded machine kube-apiserver has exited during start-up (seen once in CI, its log gone with the
  // sandbox): it gets three tries, and the error carries the end of its log.
  for (let attempt = 1; ; attempt++) {
    const apiserver = startProcess('kube-apiserver', binary, args, log);
    try {
      await waitFor(
        'kube-apiserver',
        async () => (await httpsGet(o.apiServer, '/readyz', o.adminToken, o.caFile)).status === 200,
        { timeoutMs: o.timeoutMs, intervalMs: 250, abort: apiserver.exited, logTail: () => apiserver.tail() },
      );
      return apiserver;
    } catch (err) {
      await apiserver.stop();
      if (!(err instanceof ExitedEarly) || /address already in use/.test(err.message) || attempt === 3)
        throw err;
      process.stderr.write(
        `sandbox: kube-apiserver exited during start-up, starting it again (${err.message})\n`,
      );
    }
  }
}

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindingOf, IDENTITY_ROLE, rbacManifest, SENTINEL_USER, suiteRoles } from '../../shared/cluster/rbac';
import { ensureBinaries } from '../k8s-bins';
import type { KeyProvider } from '../kms-plugin/key-provider';
import type { KmsV2Plugin } from '../kms-plugin/plugin';
import { type ApiServer, type ApiServerInfo, httpsRequest } from './apiserver';
import { apiServerFor, pluginsFor, startAll, startEtcd, writeCredentials, writeKubeconfigs } from './launch';
import { type BalancerMode, LoadBalancer } from './load-balancer';
import { ExitedEarly, freePort, type Managed } from './processes';

/**
 * A real Kubernetes control plane for tests and the demo, the way controller-runtime's envtest runs one:
 * etcd and kube-apiserver from the pinned build, on free loopback ports, with Secrets encrypted by a KMS v2
 * plugin on a unix socket (then `identity`, so pre-existing plaintext stays readable). Two kubeconfigs:
 * an admin one, and the suite's least-privileged identity (`shared/cluster/rbac.ts`).
 *
 * With `apiServers: N > 1` it is a managed control plane's shape: N kube-apiservers on the one etcd, each
 * with its own identity (host name), its own KMS plugin and its own port, behind a TCP load balancer that
 * every kubeconfig points at.
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
  /** The cluster's address: the API server's own when alone, the load balancer's in front of several. */
  apiServer: string;
  /** Every API server behind `apiServer`. */
  apiServers: ApiServerInfo[];
  /** The load balancer, with several API servers. */
  loadBalancer?: { url: string; mode: BalancerMode };
  /** Whether the suite's identity may list the API servers' identity leases in kube-system. */
  leaseAccess: boolean;
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
  /**
   * How many kube-apiservers share the etcd (default 1). Several run behind a load balancer, each in a UTS
   * and mount namespace of its own (`unshare`: root only), as `sandbox/controlplane/apiserver.ts` says.
   */
  apiServers?: number;
  /** How the load balancer spreads connections over several API servers (default `round-robin`). */
  loadBalancer?: BalancerMode;
  /** `false`: the suite's identity is not bound to the lease-reading Role (default true). */
  leaseAccess?: boolean;
  /** etcd's `--quota-backend-bytes` (etcd's own default, 2 GiB, when unset). */
  etcdQuotaBytes?: number;
  /** kube-apiserver's `--etcd-compaction-interval` in seconds (its default, 5 minutes, when unset). */
  compactionIntervalSeconds?: number;
}

const apiServerArgsOf = (options: ControlPlaneOptions): string[] => [
  ...(options.compactionIntervalSeconds === undefined
    ? []
    : [`--etcd-compaction-interval=${options.compactionIntervalSeconds}s`]),
  ...(options.apiServerArgs ?? []),
];

/** The most API servers a sandbox runs: each is ~200 MB of memory and a share of two cores. */
export const MAX_API_SERVERS = 5;

interface Parts {
  etcd: Managed;
  servers: ApiServer[];
  balancer?: LoadBalancer;
  adminToken: string;
  ownsWorkDir: boolean;
  writeEncryption: (mode: EncryptionMode) => void;
}

export class ControlPlane {
  private constructor(
    readonly info: ControlPlaneInfo,
    private readonly parts: Parts,
    private encryptionMode: EncryptionMode,
  ) {}

  /** The first API server's KMS plugin (the only one of a lone API server). */
  get plugin(): KmsV2Plugin {
    return this.server(0).plugin;
  }

  /** Each API server's KMS plugin, in the order of `info.apiServers`: one KeyProvider behind them all. */
  get plugins(): KmsV2Plugin[] {
    return this.parts.servers.map((s) => s.plugin);
  }

  /** The load balancer in front of several API servers. */
  get loadBalancer(): LoadBalancer | undefined {
    return this.parts.balancer;
  }

  /** Changes how the load balancer spreads new connections (`info.loadBalancer.mode` follows). */
  setLoadBalancerMode(mode: BalancerMode): void {
    const { balancer } = this.parts;
    if (!balancer || !this.info.loadBalancer) throw new Error('a lone API server has no load balancer');
    balancer.setMode(mode);
    this.info.loadBalancer.mode = mode;
  }

  /** How kube-apiserver writes Secrets now: sealed by the KMS v2 plugin, or in plaintext (`identity`). */
  get encryption(): EncryptionMode {
    return this.encryptionMode;
  }

  /**
   * Turns Secret encryption on or off as ACK's UpdateKMSEncryption does on a managed control plane: a new
   * EncryptionConfiguration, then every kube-apiserver restarted with it. Either way both providers stay
   * listed (the writing one first), so Secrets written before stay readable: plaintext ones after `kms`,
   * sealed ones after `identity`. Secrets already stored are not rewritten; that is the sweep's work.
   */
  async setEncryption(mode: EncryptionMode): Promise<void> {
    if (mode === this.encryptionMode) return;
    this.parts.writeEncryption(mode);
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
    const count = apiServerCount(options.apiServers);
    const binaries = ensureBinaries();
    const ownsWorkDir = !options.workDir;
    const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'ack-kms-sentinel-cp-'));
    mkdirSync(workDir, { recursive: true });
    const timeoutMs = options.startTimeoutMs ?? 120_000;
    const plugins = pluginsFor(options.provider, workDir, count);
    const started: { etcd?: Managed; servers: ApiServer[]; balancer?: LoadBalancer } = { servers: [] };

    const cleanup = async () => {
      for (const s of [...started.servers].reverse()) await s.stop();
      await started.etcd?.stop();
      for (const p of plugins) await p.stop();
      await started.balancer?.stop();
      if (ownsWorkDir) rmSync(workDir, { recursive: true, force: true });
    };

    try {
      for (const p of plugins) await p.start();
      const { etcd, etcdUrl } = await startEtcd(binaries, workDir, timeoutMs, options.etcdQuotaBytes);
      started.etcd = etcd;
      const ports = await Promise.all(plugins.map(() => freePort()));
      if (count > 1)
        started.balancer = await LoadBalancer.start(
          ports.map((port) => ({ host: '127.0.0.1', port })),
          options.loadBalancer ?? 'round-robin',
        );
      const apiServer = started.balancer?.url ?? `https://127.0.0.1:${ports[0]}`;
      const creds = writeCredentials(workDir);
      const kmsProviderName = options.kmsProviderName ?? 'ack-kms-sentinel';
      // One EncryptionConfiguration for every API server: alone, its plugin's socket; behind a balancer, the
      // path each one's mount namespace maps to its own plugin (sandbox/controlplane/apiserver.ts).
      const endpoint = count === 1 ? plugins[0]?.endpoint : `unix://${join(workDir, 'kms', 'kms.sock')}`;
      const encryptionConfig = join(workDir, 'encryption-config.json');
      const writeEncryption = (mode: EncryptionMode) =>
        writeEncryptionConfig(encryptionConfig, mode, kmsProviderName, endpoint ?? '');
      writeEncryption(options.encryption ?? 'kms');

      const launch = { binaries, workDir, etcdUrl, apiServer, encryptionConfig, timeoutMs, ...creds };
      started.servers = plugins.map((plugin, i) =>
        apiServerFor(plugin, i, ports[i] ?? 0, count, launch, apiServerArgsOf(options)),
      );
      await startAll(started.servers);

      const { kubeconfig, restrictedKubeconfig } = writeKubeconfigs(workDir, apiServer, creds);

      const { balancer } = started;
      const cp = new ControlPlane(
        {
          kubeconfig,
          restrictedKubeconfig,
          etcd: etcdUrl,
          kmsProviderName,
          apiServer,
          apiServers: started.servers.map((s) => s.info),
          ...(balancer ? { loadBalancer: { url: balancer.url, mode: balancer.mode } } : {}),
          leaseAccess: options.leaseAccess ?? true,
          caFile: creds.caFile,
          stateNamespace: options.stateNamespace ?? 'ack-kms-sentinel',
          workDir,
        },
        {
          etcd,
          servers: started.servers,
          adminToken: creds.adminToken,
          ownsWorkDir,
          writeEncryption,
          balancer,
        },
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
   * Restarts one kube-apiserver (by its index in `info.apiServers`), or every one, one after another, when
   * no index is given, as a managed control plane does on an upgrade: the new process generates a new
   * data-key seed (sealed by the plugin under the key's primary version then). A restarted server keeps its
   * host name, and so its identity. The load balancer sends it nothing while it is down, as its health check
   * would. Resolves once it is (they are) ready.
   */
  async restartApiServer(index?: number): Promise<void> {
    const targets = index === undefined ? this.parts.servers.map((_, i) => i) : [index];
    for (const i of targets) {
      const server = this.server(i);
      this.parts.balancer?.setInService(i, false);
      await server.restart();
      this.parts.balancer?.setInService(i, true);
    }
  }

  /** Stops everything this control plane started and removes its files. */
  async stop(): Promise<void> {
    await this.parts.balancer?.stop();
    for (const s of [...this.parts.servers].reverse()) await s.stop();
    await this.parts.etcd.stop();
    for (const p of this.plugins) await p.stop();
    if (this.parts.ownsWorkDir) rmSync(this.info.workDir, { recursive: true, force: true });
  }

  /**
   * Waits until every API server encrypts with `keyId` (each is poked into polling its plugin: `ApiServer`).
   */
  async waitForAdoption(keyId: string, timeoutMs = 120_000): Promise<void> {
    await Promise.all(this.parts.servers.map((s) => s.waitForAdoption(keyId, timeoutMs)));
  }

  /**
   * A raw admin request, for the harness's own setup and checks: to the cluster's address (through the load
   * balancer, if any), or to the API server of index `apiServer` alone.
   */
  adminRequest(
    method: string,
    path: string,
    body?: unknown,
    apiServer?: number,
  ): Promise<{ status: number; body: string }> {
    if (apiServer !== undefined) return this.server(apiServer).adminRequest(method, path, body);
    return httpsRequest(this.info.apiServer, method, path, this.parts.adminToken, this.info.caFile, body);
  }

  private server(index: number): ApiServer {
    const server = this.parts.servers[index];
    if (!server) throw new Error(`no API server ${index} (there are ${this.parts.servers.length})`);
    return server;
  }

  private async applyRbac(): Promise<void> {
    const ns = this.info.stateNamespace;
    const rbac = '/apis/rbac.authorization.k8s.io/v1';
    const pathOf = (o: Record<string, unknown>) => {
      const { namespace } = o.metadata as { namespace?: string };
      const plural = `${String(o.kind).toLowerCase()}s`;
      return o.kind === 'Namespace'
        ? '/api/v1/namespaces'
        : `${rbac}${namespace ? `/namespaces/${namespace}` : ''}/${plural}`;
    };
    // deploy/rbac.yaml, then the fixture person's bindings (`restrictedKubeconfig`). Without lease access it
    // keeps every other permission: the role that reads the leases exists, nothing binds it to it.
    const roles = suiteRoles(ns).filter((r) => this.info.leaseAccess || r.name !== IDENTITY_ROLE);
    const subject = { kind: 'User' as const, name: SENTINEL_USER };
    const objects = [...rbacManifest(ns), ...roles.map((r) => bindingOf(r, subject, r.name))];
    for (const body of objects) {
      const path = pathOf(body);
      const res = await this.adminRequest('POST', path, body);
      if (res.status !== 201 && res.status !== 409)
        throw new Error(`creating ${path} failed: ${res.status} ${res.body}`);
    }
  }
}

function apiServerCount(requested = 1): number {
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_API_SERVERS)
    throw new Error(`apiServers must be a whole number from 1 to ${MAX_API_SERVERS}, not ${requested}`);
  // Said here, not as three failed starts of `unshare` ("Operation not permitted") in a log tail.
  if (requested > 1 && process.getuid?.() !== 0)
    throw new Error(
      'several API servers need root: each runs in a UTS and mount namespace of its own (unshare), so that its host name, and so its identity, is its own',
    );
  return requested;
}

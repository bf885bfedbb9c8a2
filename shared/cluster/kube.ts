import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent, RequestOptions } from 'node:https';
import type { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, RequestContext } from '@kubernetes/client-node';
import { ConfigError } from '../errors';
import type { SecretStore } from '../reencrypt/secrets-api';
import { keepAliveAgent } from './agent';
import { isApiException, k8s, kubeConfigClass } from './k8s';
import { KubeHttp } from './kube-http';
import { secretStore } from './secret-store';

/** A KubeConfig whose API clients reuse connections (see `pooledKubeConfigClass`); close it when done. */
export type PooledKubeConfig = KubeConfig & { close(): void };

let pooledClass: (new () => PooledKubeConfig) | undefined;

/**
 * A KubeConfig whose API clients reuse connections. `@kubernetes/client-node` 1.4.0 builds a new
 * `https.Agent` (keep-alive off) for every request, so every call pays a TCP and TLS handshake; at the
 * sweep's concurrency that halves throughput and churns sockets. This keeps one keep-alive agent with the
 * same TLS material (CA, client certificate, skip-verify) for the life of the KubeConfig. Defined on first
 * use, so the Kubernetes client loads only when a cluster is read.
 */
function pooledKubeConfigClass(): new () => PooledKubeConfig {
  if (pooledClass) return pooledClass;
  pooledClass = class extends kubeConfigClass() {
    private agent?: HttpAgent | HttpsAgent;

    override async applySecurityAuthentication(context: RequestContext): Promise<void> {
      await super.applySecurityAuthentication(context);
      if (this.getCurrentCluster()?.proxyUrl) return; // keep the library's proxy agent
      context.setAgent(await this.pooledAgent());
    }

    /** Closes pooled connections (the CLI calls this before exiting). */
    close(): void {
      this.agent?.destroy();
      this.agent = undefined;
    }

    private async pooledAgent(): Promise<HttpAgent | HttpsAgent> {
      if (this.agent) return this.agent;
      const opts: RequestOptions = {};
      await this.applyToHTTPSOptions(opts);
      this.agent = keepAliveAgent(this.getCurrentCluster()?.server ?? '', opts);
      return this.agent;
    }
  };
  return pooledClass;
}

export interface KubeConfigSource {
  /** A kubeconfig file path. */
  path?: string;
  /** A kubeconfig as text (what `DescribeClusterUserKubeconfig` returns). */
  text?: string;
  context?: string;
}

/** What client-node says of a kubeconfig when the message names only fields and entry names, never values. */
const FIELD_MESSAGES = [
  /^(clusters|users|contexts)\[\d+\](\.[a-z-]+)* is missing$/,
  /^Duplicate (cluster|user|context): [\w.:@/-]{1,253}$/,
  /^No active cluster!$/,
];

/**
 * Why a kubeconfig could not be read, without a word of its content. The YAML parser's message quotes a
 * snippet of the file around the error (a `token:` line, or a cut-off part of `client-key-data`), so a
 * parse error is reported by its reason and position only, as configuration files are.
 */
export function kubeconfigProblem(err: unknown): string {
  const e = err as { name?: unknown; reason?: unknown; mark?: { line?: unknown; column?: unknown } } & Error;
  if (e?.name === 'YAMLException') {
    const line = typeof e.mark?.line === 'number' ? e.mark.line + 1 : undefined;
    const column = typeof e.mark?.column === 'number' ? e.mark.column + 1 : undefined;
    const reason =
      typeof e.reason === 'string' && /^[\w\s,.;'()-]{1,100}$/.test(e.reason) ? e.reason : 'bad YAML';
    return `not valid YAML: ${reason}${line ? ` at line ${line}, column ${column}` : ''}`;
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return `cannot be read (${code})`;
  const message = err instanceof Error ? err.message : '';
  if (FIELD_MESSAGES.some((p) => p.test(message))) return message;
  return 'not a kubeconfig (expected clusters, users and contexts)';
}

export function loadKubeConfig(source: KubeConfigSource): PooledKubeConfig {
  const kc = new (pooledKubeConfigClass())();
  try {
    if (source.text !== undefined) kc.loadFromString(source.text);
    else if (source.path) kc.loadFromFile(source.path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new ConfigError(
      `cannot read the kubeconfig${source.path ? ` ${source.path}` : ''}: ${kubeconfigProblem(err)}`,
      { path: 'kubeconfig' },
    );
  }
  if (source.context) {
    if (!kc.getContextObject(source.context)) {
      throw new ConfigError(
        `the kubeconfig has no context "${source.context}" (it has: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        })`,
        {
          path: 'context',
        },
      );
    }
    kc.setCurrentContext(source.context);
  }
  if (!kc.getCurrentCluster())
    throw new ConfigError('the kubeconfig names no current cluster', { path: 'kubeconfig' });
  return kc;
}

/** A cluster's Kubernetes clients; close it when done. */
export interface Cluster {
  core: CoreV1Api;
  rbac: RbacAuthorizationV1Api;
  /**
   * A GET of a non-resource path (`/metrics`) on a new connection each time (behind a load balancer, each
   * call may reach another API server), on the Secret store's client and timeout.
   */
  getRaw(path: string): Promise<{ status: number; body: string }>;
  /** The identities of the live API servers (their kube-system leases); undefined when not readable. */
  apiServerIdentities(): Promise<string[] | undefined>;
  /** Secrets as the sweep reads and marks them (metadata only, on the one Kubernetes HTTP client). */
  secrets: SecretStore;
  close(): void;
}

/** A Kubernetes client from a kubeconfig text (DescribeClusterUserKubeconfig); close it when done. */
export function openCluster(kubeconfig: string): Cluster {
  const kc = loadKubeConfig({ text: kubeconfig });
  const http = new KubeHttp(kc);
  const secrets = secretStore(http);
  return {
    core: kc.makeApiClient(k8s().CoreV1Api),
    rbac: kc.makeApiClient(k8s().RbacAuthorizationV1Api),
    getRaw: (path) => http.getRaw(path, { newConnection: true }),
    apiServerIdentities: () => apiServerIdentities(kc),
    secrets,
    close: () => {
      kc.close();
      secrets.close();
    },
  };
}

/**
 * Every API server keeps a lease named after its identity in kube-system (label
 * `apiserver.kubernetes.io/identity=kube-apiserver`, k8s.io/apiserver `pkg/server/config.go`); the live ones
 * are the API servers behind the cluster's address. Live means renewed within `LEASE_LIVE_MS`, not within the
 * lease's duration: kube-apiserver renews every 10 s (`--identity-lease-renew-interval-seconds`) but holds
 * the lease for an hour (`--identity-lease-duration-seconds`), so a server replaced or scaled in would count
 * for an hour. Undefined when the leases cannot be listed (no RBAC): the proof then needs a stated count.
 */
/** Four and a half renew intervals: a busy control plane renews late, a dead server stops at once. */
export const LEASE_LIVE_MS = 45_000;

export async function apiServerIdentities(kc: KubeConfig, now = Date.now()): Promise<string[] | undefined> {
  try {
    const leases = await kc.makeApiClient(k8s().CoordinationV1Api).listNamespacedLease({
      namespace: 'kube-system',
      labelSelector: 'apiserver.kubernetes.io/identity=kube-apiserver',
    });
    return leases.items
      .filter((l) => {
        const renewed = l.spec?.renewTime ? new Date(l.spec.renewTime).getTime() : 0;
        return now - renewed <= LEASE_LIVE_MS;
      })
      .map((l) => l.metadata?.name ?? '')
      .filter(Boolean);
  } catch (err) {
    if (isApiException(err) && (err.code === 403 || err.code === 404)) return undefined;
    throw err;
  }
}

/**
 * A GET of a non-resource path on a connection of its own (see `Cluster.getRaw`), for a caller holding only a
 * kubeconfig: the same client and timeout as the Secret store.
 */
export const getRaw = (kc: KubeConfig, path: string): Promise<{ status: number; body: string }> =>
  new KubeHttp(kc).getRaw(path, { newConnection: true });

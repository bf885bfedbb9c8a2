import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions } from 'node:https';
import { CoreV1Api, KubeConfig, type RequestContext } from '@kubernetes/client-node';
import { ConfigError } from '../errors';

/**
 * A KubeConfig whose API clients reuse connections. `@kubernetes/client-node` 1.4.0 builds a new
 * `https.Agent` (keep-alive off) for every request, so every call pays a TCP and TLS handshake; at the
 * sweep's concurrency that halves throughput and churns sockets. This keeps one keep-alive agent with the
 * same TLS material (CA, client certificate, skip-verify) for the life of the KubeConfig.
 */
export class PooledKubeConfig extends KubeConfig {
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
    const server = this.getCurrentCluster()?.server ?? '';
    const common = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64 };
    this.agent = server.startsWith('http:')
      ? new HttpAgent(common)
      : new HttpsAgent({
          ...common,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
          ...(opts.servername ? { servername: opts.servername } : {}),
        });
    return this.agent;
  }
}

export interface KubeConfigSource {
  /** A kubeconfig file path. */
  path?: string;
  /** A kubeconfig as text (what `DescribeClusterUserKubeconfig` returns). */
  text?: string;
  context?: string;
}

export function loadKubeConfig(source: KubeConfigSource): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  try {
    if (source.text !== undefined) kc.loadFromString(source.text);
    else if (source.path) kc.loadFromFile(source.path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new ConfigError(
      `cannot read the kubeconfig${source.path ? ` ${source.path}` : ''}: ${(err as Error).message}`,
      {
        path: 'kubeconfig',
      },
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

/** A Kubernetes client from a kubeconfig text (DescribeClusterUserKubeconfig); close it when done. */
export function openCluster(kubeconfig: string): { core: CoreV1Api; close(): void } {
  const kc = loadKubeConfig({ text: kubeconfig });
  return { core: kc.makeApiClient(CoreV1Api), close: () => kc.close() };
}

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'node:https';
import { type LoopbackServer, serveOnLoopback } from './loopback-server';

/**
 * Many clusters over one real API server, for a fleet of a thousand ACK clusters on one machine: each tenant
 * reaches the API server at `<url>/t/<tenant>` and sees its own namespaces, because every namespace it names
 * (in the path, and in a request body's `metadata.namespace`) is renamed `<namespace>--<tenant>` on the way.
 * So each tenant has its own suite state ConfigMap, as each ACK cluster has, while cluster-scoped reads
 * (`/metrics`, the Secrets of all namespaces) are shared. It counts the requests of each tenant: a test proves
 * that a tick read no cluster at all, not merely that it was fast.
 */
export class TenantProxy {
  /** Requests received, by tenant. */
  readonly requests = new Map<string, number>();
  private http?: LoopbackServer;

  private constructor(
    private readonly target: URL,
    private readonly agent: Agent,
    private readonly authorization: string,
  ) {}

  /** A proxy to the API server of `adminKubeconfigPath` (its server, CA and bearer token). */
  static async start(adminKubeconfigPath: string, caFile: string): Promise<TenantProxy> {
    const config = JSON.parse(readFileSync(adminKubeconfigPath, 'utf8')) as {
      clusters: Array<{ cluster: { server: string } }>;
      users: Array<{ user: { token: string } }>;
    };
    const agent = new Agent({ ca: readFileSync(caFile), keepAlive: true, maxSockets: 128 });
    const proxy = new TenantProxy(
      new URL(config.clusters[0]?.cluster.server ?? ''),
      agent,
      `Bearer ${config.users[0]?.user.token ?? ''}`,
    );
    proxy.http = await serveOnLoopback((req, res) => proxy.handle(req, res));
    return proxy;
  }

  /** The namespace a tenant's `namespace` is on the real API server. */
  static namespaceOf(namespace: string, tenant: string): string {
    return `${namespace}--${tenant}`;
  }

  /** A kubeconfig (JSON) that reaches the API server as `tenant`, with admin rights in its namespaces. */
  kubeconfig(tenant: string): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: tenant, cluster: { server: `${this.url}/t/${tenant}`, 'insecure-skip-tls-verify': true } },
      ],
      users: [{ name: 'admin', user: { token: this.authorization.slice('Bearer '.length) } }],
      contexts: [{ name: tenant, context: { cluster: tenant, user: 'admin' } }],
      'current-context': tenant,
    });
  }

  get url(): string {
    return this.http?.url ?? '';
  }

  /** Requests of all tenants. */
  get total(): number {
    let n = 0;
    for (const v of this.requests.values()) n += v;
    return n;
  }

  async stop(): Promise<void> {
    await this.http?.stop();
    this.agent.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/t\/([a-z0-9-]+)(\/.*)$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('tenant proxy: expected /t/<tenant>/...');
      return;
    }
    const tenant = m[1] ?? '';
    this.requests.set(tenant, (this.requests.get(tenant) ?? 0) + 1);
    const path = (m[2] ?? '/').replace(
      /\/namespaces\/([a-z0-9-]+)/,
      (_all, ns: string) => `/namespaces/${TenantProxy.namespaceOf(ns, tenant)}`,
    );
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => this.forward(req, res, path, renamed(Buffer.concat(chunks), tenant)));
  }

  private forward(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): void {
    const headers = {
      ...req.headers,
      host: this.target.host,
      authorization: req.headers.authorization ?? this.authorization,
      'content-length': String(body.length),
    };
    const upstream = request(
      new URL(path, this.target),
      { method: req.method, headers, agent: this.agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`tenant proxy: ${err.message}`);
    });
    upstream.end(body);
  }
}

/** A JSON body's `metadata.namespace`, renamed for the tenant (anything else passes unchanged). */
function renamed(body: Buffer, tenant: string): Buffer {
  if (body.length === 0) return body;
  try {
    const object = JSON.parse(body.toString('utf8')) as { metadata?: { namespace?: string } };
    if (typeof object.metadata?.namespace !== 'string') return body;
    object.metadata.namespace = TenantProxy.namespaceOf(object.metadata.namespace, tenant);
    return Buffer.from(JSON.stringify(object));
  } catch {
    return body;
  }
}

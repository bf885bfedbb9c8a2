import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * A stand-in for kube-apiserver's Secret metadata API, enough for the CLI's sweep and census (paged
 * `PartialObjectMetadataList`, JSON merge patches of annotations) and the state ConfigMap's GET: for tests of
 * the CLI's own behaviour (exit codes, terminal output) that need a cluster but not a control plane. It records
 * each patch's `fieldManager`, answers 403 for Secrets named `forbidden-*`, and can hold patches until released
 * (a run interrupted half-way, with no race).
 */
export interface StubSecret {
  namespace: string;
  name: string;
  resourceVersion: number;
  annotations: Record<string, string>;
}

export class StubApiServer {
  readonly secrets: StubSecret[] = [];
  readonly fieldManagers: string[] = [];
  /** The state ConfigMap's `data.state`, when the test sets one. */
  state?: string;
  private server?: Server;
  private held?: { after: number; waiting: Array<() => void> };
  url = '';

  constructor(count: number, namespaces = ['apps', 'batch', 'web']) {
    for (let i = 0; i < count; i++)
      this.secrets.push({
        namespace: namespaces[i % namespaces.length] ?? 'default',
        name: `secret-${String(i).padStart(4, '0')}`,
        resourceVersion: 100 + i,
        annotations: {},
      });
    this.secrets.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  /** A Secret more, in key order (the API server lists in key order, and the lister relies on it). */
  add(namespace: string, name: string): void {
    this.secrets.push({ namespace, name, resourceVersion: 1, annotations: {} });
    this.secrets.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  /** Patches after the first `after` wait until `release()`. */
  hold(after: number): void {
    this.held = { after, waiting: [] };
  }

  release(): void {
    const waiting = this.held?.waiting ?? [];
    this.held = undefined;
    for (const go of waiting) go();
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.answer(req, res).catch((err) => {
        res.writeHead(500);
        res.end(String(err));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.release();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** A kubeconfig for this server (no credentials: it answers anyone). */
  kubeconfig(dir: string): string {
    const file = join(dir, 'kubeconfig');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'stub', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'stub', user: {} }],
        contexts: [{ name: 'stub', context: { cluster: 'stub', user: 'stub' } }],
        'current-context': 'stub',
      }),
    );
    return file;
  }

  kubeconfigText(): string {
    return `apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: "${this.url}", insecure-skip-tls-verify: true}}]
users: [{name: stub, user: {}}]
contexts: [{name: stub, context: {cluster: stub, user: stub}}]
current-context: stub
`;
  }

  private meta(s: StubSecret) {
    return {
      kind: 'PartialObjectMetadata',
      apiVersion: 'meta.k8s.io/v1',
      metadata: {
        namespace: s.namespace,
        name: s.name,
        resourceVersion: String(s.resourceVersion),
        creationTimestamp: '2020-01-01T00:00:00Z',
        annotations: s.annotations,
      },
    };
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'GET' && url.pathname === '/api/v1/secrets') return this.list(res, url);
    const one = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'PATCH' && one) return this.patch(res, url, one, body);
    if (req.method === 'GET' && /\/configmaps\/ack-kms-sentinel-state$/.test(url.pathname) && this.state)
      return this.json(res, 200, {
        kind: 'ConfigMap',
        metadata: { name: 'ack-kms-sentinel-state', resourceVersion: '1' },
        data: { state: this.state },
      });
    this.json(res, 404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
  }

  private list(res: ServerResponse, url: URL): void {
    const limit = Number(url.searchParams.get('limit') ?? '500');
    const from = Number(url.searchParams.get('continue') ?? '0');
    const page = this.secrets.slice(from, from + limit);
    const next = from + page.length;
    this.json(res, 200, {
      kind: 'PartialObjectMetadataList',
      apiVersion: 'meta.k8s.io/v1',
      metadata: {
        resourceVersion: '1000',
        ...(next < this.secrets.length
          ? { continue: String(next), remainingItemCount: this.secrets.length - next }
          : {}),
      },
      items: page.map((s) => this.meta(s)),
    });
  }

  private async patch(res: ServerResponse, url: URL, m: RegExpExecArray, body: string): Promise<void> {
    const [, namespace, name] = m;
    const s = this.secrets.find((x) => x.namespace === namespace && x.name === name);
    if (!s) return this.json(res, 404, { kind: 'Status', code: 404, reason: 'NotFound' });
    this.fieldManagers.push(url.searchParams.get('fieldManager') ?? '(none)');
    if (this.held) {
      if (this.held.after > 0) this.held.after--;
      else await new Promise<void>((go) => this.held?.waiting.push(go));
    }
    if (name?.startsWith('forbidden-'))
      return this.json(res, 403, {
        kind: 'Status',
        code: 403,
        reason: 'Forbidden',
        message: `secrets "${name}" is forbidden`,
      });
    const patch = JSON.parse(body || '{}') as { metadata?: { annotations?: Record<string, string> } };
    Object.assign(s.annotations, patch.metadata?.annotations ?? {});
    s.resourceVersion += 1000;
    this.json(res, 200, this.meta(s));
  }
}

import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'node:https';
import { type LoopbackServer, serveOnLoopback } from './loopback-server';

/**
 * A proxy in front of the API server, for the clients under test, with scriptable faults per request kind:
 * 429 with Retry-After, 500/503, 409 conflict, 410 "Expired" on a list continue, connection resets and added
 * latency. It counts what it saw, so a test can assert that a client met (and survived) each fault.
 */
export type Verb = 'list' | 'watch' | 'get' | 'create' | 'update' | 'patch' | 'delete' | 'other';

export interface RequestKind {
  verb: Verb;
  resource?: string;
  namespace?: string;
  name?: string;
  /** A list that carries a continue token. */
  hasContinue: boolean;
}

export type Fault =
  | {
      type: 'status';
      code: 409 | 429 | 500 | 503 | number;
      retryAfterSeconds?: number;
      reason?: string;
      message?: string;
    }
  /** 410 Expired on a list; `offerContinue: false` leaves out the inconsistent continue token (forces a relist). */
  | { type: 'expired'; offerContinue?: boolean }
  | { type: 'reset' }
  | { type: 'latency'; ms: number };

export interface FaultRule {
  match: { verb?: Verb; resource?: string; namespace?: string; name?: string; continue?: boolean };
  fault: Fault;
  /** How many matching requests get the fault; every one by default. */
  times?: number;
  /** Skip this many matching requests before the fault applies. */
  after?: number;
}

export interface ProxyStats {
  /** Requests seen, by kind (`patch secrets`), whatever became of them. */
  requests: Record<string, number>;
  faults: Record<string, number>;
  /**
   * Answers the API server gave, by kind and status (`patch secrets 200`): what really happened upstream. A
   * request whose client died while a fault held it back shows in `requests` but may never reach the server.
   */
  answered: Record<string, number>;
}

const REASONS: Record<number, string> = {
  409: 'Conflict',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

export function classify(method: string, url: URL): RequestKind {
  const parts = url.pathname.split('/').filter(Boolean);
  // /api/v1/... or /apis/<group>/<version>/...
  const rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : [];
  let namespace: string | undefined;
  let resourceParts = rest;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    resourceParts = rest.slice(2);
  }
  const [resource, name] = resourceParts;
  const hasContinue = url.searchParams.has('continue');
  let verb: Verb = 'other';
  if (resource) {
    if (method === 'GET') verb = url.searchParams.get('watch') === 'true' ? 'watch' : name ? 'get' : 'list';
    else if (method === 'POST') verb = 'create';
    else if (method === 'PUT') verb = 'update';
    else if (method === 'PATCH') verb = 'patch';
    else if (method === 'DELETE') verb = 'delete';
  }
  return {
    verb,
    hasContinue,
    ...(resource ? { resource } : {}),
    ...(namespace ? { namespace } : {}),
    ...(name ? { name } : {}),
  };
}

interface ActiveRule extends FaultRule {
  seen: number;
  applied: number;
}

export class FaultProxy {
  readonly stats: ProxyStats = { requests: {}, faults: {}, answered: {} };
  private rules: ActiveRule[] = [];
  /** kubectl (client-go) never sends a bearer token over plain http; the proxy adds the kubeconfig's. */
  private fallbackAuthorization?: string;
  private http?: LoopbackServer;

  private constructor(
    private readonly target: URL,
    private readonly agent: Agent,
  ) {}

  static async start(apiServer: string, caFile: string): Promise<FaultProxy> {
    const agent = new Agent({ ca: readFileSync(caFile), keepAlive: true, maxSockets: 256 });
    const proxy = new FaultProxy(new URL(apiServer), agent);
    proxy.http = await serveOnLoopback((req, res) => proxy.handle(req, res));
    return proxy;
  }

  get url(): string {
    return this.http?.url ?? '';
  }

  /** Adds a fault rule; rules are tried in the order they were added. */
  inject(rule: FaultRule): this {
    this.rules.push({ ...rule, seen: 0, applied: 0 });
    return this;
  }

  clear(): this {
    this.rules = [];
    return this;
  }

  resetStats(): this {
    this.stats.requests = {};
    this.stats.faults = {};
    this.stats.answered = {};
    return this;
  }

  /** A copy of `kubeconfigPath` that reaches the API server through this proxy (plain HTTP on loopback). */
  kubeconfigFrom(kubeconfigPath: string, outPath: string): string {
    const config = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as {
      clusters: Array<{ cluster: Record<string, unknown> }>;
      users?: Array<{ user?: { token?: string } }>;
    };
    const token = config.users?.[0]?.user?.token;
    if (token) this.fallbackAuthorization = `Bearer ${token}`;
    for (const c of config.clusters) {
      c.cluster = { server: this.url, 'insecure-skip-tls-verify': true };
    }
    writeFileSync(outPath, JSON.stringify(config, null, 2), { mode: 0o600 });
    return outPath;
  }

  async stop(): Promise<void> {
    await this.http?.stop();
    this.agent.destroy();
  }

  private count(bucket: Record<string, number>, key: string): void {
    bucket[key] = (bucket[key] ?? 0) + 1;
  }

  private pick(kind: RequestKind): ActiveRule | undefined {
    for (const rule of this.rules) {
      const m = rule.match;
      if (m.verb && m.verb !== kind.verb) continue;
      if (m.resource && m.resource !== kind.resource) continue;
      if (m.namespace && m.namespace !== kind.namespace) continue;
      if (m.name && m.name !== kind.name) continue;
      if (m.continue !== undefined && m.continue !== kind.hasContinue) continue;
      rule.seen++;
      if (rule.seen <= (rule.after ?? 0)) continue;
      if (rule.applied >= (rule.times ?? Number.POSITIVE_INFINITY)) continue;
      rule.applied++;
      return rule;
    }
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.target);
    const kind = classify(req.method ?? 'GET', url);
    const label = `${kind.verb}${kind.resource ? ` ${kind.resource}` : ''}`;
    this.count(this.stats.requests, label);
    const rule = this.pick(kind);
    const fault = rule?.fault;
    if (!fault) {
      this.forward(req, res, url, label);
      return;
    }
    switch (fault.type) {
      case 'latency':
        this.count(this.stats.faults, `latency ${kind.verb}`);
        setTimeout(() => this.forward(req, res, url, label), fault.ms);
        return;
      case 'reset':
        this.count(this.stats.faults, `reset ${kind.verb}`);
        req.socket.resetAndDestroy();
        return;
      case 'expired': {
        this.count(this.stats.faults, `410 ${kind.verb}`);
        // The real server offers a continue token for an inconsistent list in the 410 Status; the token the
        // client sent is still valid upstream, so offering it back is a faithful stand-in.
        const token = url.searchParams.get('continue') ?? '';
        const offer = fault.offerContinue === false ? {} : { metadata: { continue: token } };
        this.status(
          res,
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result.',
          offer,
        );
        return;
      }
      case 'status': {
        this.count(this.stats.faults, `${fault.code} ${kind.verb}`);
        const headers: Record<string, string> =
          fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) };
        const reason = fault.reason ?? REASONS[fault.code] ?? 'InternalError';
        this.status(
          res,
          fault.code,
          reason,
          fault.message ?? `injected ${fault.code} ${reason}`,
          {},
          headers,
        );
        return;
      }
    }
  }

  private status(
    res: ServerResponse,
    code: number,
    reason: string,
    message: string,
    extra: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): void {
    const body = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
      ...extra,
    });
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end(body);
  }

  private forward(req: IncomingMessage, res: ServerResponse, url: URL, label: string): void {
    // The client went away while a fault held its request back: like a real network, nothing reaches the server.
    if (req.destroyed) return;
    const headers = {
      ...req.headers,
      host: this.target.host,
      ...(req.headers.authorization || !this.fallbackAuthorization
        ? {}
        : { authorization: this.fallbackAuthorization }),
    };
    const upstream = request(url, { method: req.method, headers, agent: this.agent }, (up) => {
      this.count(this.stats.answered, `${label} ${up.statusCode}`);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(upstream);
  }
}

import { type Agent as HttpAgent, request as httpRequest } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig, V1ObjectMeta } from '@kubernetes/client-node';
import { keepAliveAgent } from '../cluster/agent';
import { ConfigError } from '../errors';
import {
  type ListOptions,
  METADATA_LIST,
  METADATA_ONLY,
  type SecretStore,
  type SizedSecret,
  secretRef,
} from './secrets-api';

/**
 * The sweep's SecretStore on Node's own HTTP client: the sweep's hot path is thousands of tiny metadata
 * patches, and on a small machine the client's CPU is the API server's CPU. `@kubernetes/client-node` spends
 * most of a patch in its generated request pipeline (its object serializer, header handling, a promise chain
 * per middleware); this sends the same requests (a JSON merge patch of `metadata`, answers as
 * `PartialObjectMetadata`) over one keep-alive agent, with the kubeconfig's authentication and TLS as
 * client-node applies them (`applyToHTTPSOptions`, renewed every minute for expiring tokens). Errors keep
 * client-node's `ApiException` shape (numeric `code`, raw `body`, `headers`), so the retry table, the
 * 410-continue handling and error normalisation treat both stores alike.
 */
export class KubeHttpError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    readonly headers: Record<string, string | string[] | undefined>,
    what: string,
  ) {
    super(`HTTP-Code: ${code} ${what}`);
    this.name = 'KubeHttpError';
  }
}

const AUTH_TTL_MS = 60_000;
const REQUEST_TIMEOUT_MS = 60_000;

/** One kubeconfig's API server over one keep-alive agent: JSON requests, errors in ApiException's shape. */
class KubeHttp {
  private readonly server: string;
  private readonly plain: boolean;
  /** The server's address, parsed once: each request names it as options, not as a URL to parse again. */
  private readonly target: { host: string; port: string; base: string };
  private auth?: { headers: RequestOptions['headers']; at: number };
  private agent?: HttpAgent | HttpsAgent;

  constructor(
    private readonly kc: KubeConfig,
    private readonly timeoutMs: number,
  ) {
    this.server = (kc.getCurrentCluster()?.server ?? '').replace(/\/+$/, '');
    this.plain = this.server.startsWith('http:');
    let url: URL;
    try {
      url = new URL(this.server);
    } catch {
      throw new ConfigError(`the kubeconfig's cluster server is not a URL ("${this.server}")`, {
        path: 'kubeconfig',
      });
    }
    this.target = {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port || (this.plain ? '80' : '443'),
      base: url.pathname.replace(/\/+$/, ''),
    };
  }

  private async options(): Promise<{ headers: RequestOptions['headers']; agent: HttpAgent | HttpsAgent }> {
    if (!this.auth || !this.agent || Date.now() - this.auth.at > AUTH_TTL_MS) {
      const opts: RequestOptions = {};
      await this.kc.applyToHTTPSOptions(opts);
      this.auth = { headers: opts.headers ?? {}, at: Date.now() };
      // One agent for the store's life (made again only after close()): the TLS material never changes. Its
      // sockets carry the request timeout (set once per connection, not per request).
      this.agent ??= keepAliveAgent(this.server, opts, this.timeoutMs);
    }
    return { headers: this.auth.headers, agent: this.agent };
  }

  /** `answer: false`: a success's body is drained unread (resolves undefined); errors are read as always. */
  async call(method: string, path: string, accept: string, body?: string, answer = true): Promise<unknown> {
    const { headers, agent } = await this.options();
    const send = this.plain ? httpRequest : httpsRequest;
    const what = `${method} ${path.split('?')[0]}`;
    return new Promise((resolve, reject) => {
      const req = send(
        {
          host: this.target.host,
          port: this.target.port,
          path: `${this.target.base}${path}`,
          method,
          agent,
          headers: {
            ...headers,
            accept,
            ...(body === undefined
              ? {}
              : {
                  'content-type': 'application/merge-patch+json',
                  'content-length': Buffer.byteLength(body),
                }),
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (!answer && status >= 200 && status <= 299) {
            res.on('error', reject);
            res.on('end', () => resolve(undefined));
            res.resume();
            return;
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (status < 200 || status > 299)
              return reject(new KubeHttpError(status, text, res.headers, what));
            try {
              resolve(JSON.parse(text));
            } catch {
              // A broken answer is the server's trouble (retried), and its text (it may hold Secret data) is dropped.
              reject(new KubeHttpError(502, '', {}, `${what}: the answer is not JSON`));
            }
          });
        },
      );
      req.on('timeout', () =>
        // ETIMEDOUT: a transport error, retried with backoff like a reset (shared/retry.ts).
        req.destroy(
          Object.assign(new Error(`${what}: no answer within ${this.timeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        ),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}

/** A whole Secret reduced to what the estimate needs; its data does not outlive this call. */
function sized(s: { metadata?: V1ObjectMeta; type?: string; data?: Record<string, string> }): SizedSecret {
  let bytes = 0;
  for (const v of Object.values(s.data ?? {}))
    bytes += Math.floor((v.length * 3) / 4) - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0);
  const times = (s.metadata?.managedFields ?? [])
    .map((f) => (f.time ? new Date(f.time).getTime() : 0))
    .filter((t) => t > 0);
  return {
    ...secretRef(s.metadata),
    type: s.type ?? 'Opaque',
    bytes,
    ...(times.length ? { lastWrite: new Date(Math.max(...times)) } : {}),
  };
}

/** A list request's path: the scope, the page and the selectors, as the lister asks for them. */
function listPath(o: ListOptions): string {
  const query = new URLSearchParams({ limit: String(o.limit) });
  if (o.continueToken) query.set('continue', o.continueToken);
  if (o.labelSelector) query.set('labelSelector', o.labelSelector);
  if (o.fieldSelector) query.set('fieldSelector', o.fieldSelector);
  const base = o.namespace
    ? `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/secrets`
    : '/api/v1/secrets';
  return `${base}?${query}`;
}

export function httpSecretStore(
  kc: KubeConfig,
  /** A request with no byte from the server for this long fails as ETIMEDOUT (retried as a reset is). */
  requestTimeoutMs = REQUEST_TIMEOUT_MS,
): SecretStore & { close(): void } {
  const http = new KubeHttp(kc, requestTimeoutMs);
  const call = http.call.bind(http);
  const secretPath = (namespace: string, name: string) =>
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;

  return {
    async list(o) {
      const list = (await call('GET', listPath(o), METADATA_LIST)) as {
        items?: Array<{ metadata?: V1ObjectMeta }> | null;
        metadata?: { continue?: string; remainingItemCount?: number };
      };
      return {
        // An empty PartialObjectMetadataList comes back with `items: null`.
        items: (list.items ?? []).map((s) => secretRef(s.metadata)),
        ...(list.metadata?.continue ? { continueToken: list.metadata.continue } : {}),
        ...(list.metadata?.remainingItemCount === undefined
          ? {}
          : { remainingItemCount: list.metadata.remainingItemCount }),
      };
    },
    async listSizes(o) {
      const list = (await call('GET', listPath(o), 'application/json')) as {
        items?: Array<{ metadata?: V1ObjectMeta; type?: string; data?: Record<string, string> }> | null;
        metadata?: { continue?: string };
      };
      return {
        items: (list.items ?? []).map((s) => sized(s)),
        ...(list.metadata?.continue ? { continueToken: list.metadata.continue } : {}),
      };
    },
    async get(namespace, name) {
      const got = (await call('GET', secretPath(namespace, name), METADATA_ONLY)) as {
        metadata?: V1ObjectMeta;
      };
      return secretRef(got.metadata);
    },
    async patchMetadata(namespace, name, patch) {
      const got = (await call(
        'PATCH',
        secretPath(namespace, name),
        METADATA_ONLY,
        JSON.stringify(patch),
      )) as {
        metadata?: V1ObjectMeta;
      };
      return secretRef(got.metadata);
    },
    async writeMetadata(namespace, name, patch) {
      await call('PATCH', secretPath(namespace, name), METADATA_ONLY, JSON.stringify(patch), false);
    },
    close: () => http.close(),
  };
}

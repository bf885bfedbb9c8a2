import {
  type ClientRequest,
  type Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, RetryableError, SentinelError } from '../errors';
import { keepAliveAgent } from './agent';

/**
 * The one Kubernetes HTTP client for the calls client-node's generated clients are not made for: the Secret
 * store's metadata requests (`secret-store.ts`) and the raw GETs of non-resource paths (`/metrics`). The
 * sweep's hot path is thousands of tiny metadata patches, and on a small machine the client's CPU is the API
 * server's CPU: `@kubernetes/client-node` spends most of a patch in its generated request pipeline (its
 * object serializer, header handling, a promise chain per middleware); this sends the requests on Node's own
 * HTTP client over one keep-alive agent, with the kubeconfig's authentication and TLS as client-node applies
 * them (`applyToHTTPSOptions`, renewed every minute for expiring tokens).
 *
 * One timeout policy for every request it makes: no byte from the server for `timeoutMs` and the request
 * fails as ETIMEDOUT, a transport error the retry table retries as it does a reset. Errors keep client-node's
 * `ApiException` shape (numeric `code`, raw `body`, `headers`), so the retry table, the 410-continue handling
 * and error normalisation treat both clients alike.
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

/** The timeout of every request (a sweep's patch under load, a `/metrics` GET of a busy API server). */
export const REQUEST_TIMEOUT_MS = 60_000;
const AUTH_TTL_MS = 60_000;
/** A raw answer larger than this is refused (`/metrics` is a few MB at most). */
const RAW_MAX_BYTES = 32 * 1024 * 1024;

/** The kubeconfig's credentials as request options: headers, and the TLS material for a connection of its own. */
interface Credentials {
  headers: OutgoingHttpHeaders;
  tls: Pick<
    RequestOptions,
    'ca' | 'cert' | 'key' | 'pfx' | 'passphrase' | 'rejectUnauthorized' | 'servername'
  >;
  at: number;
}

/**
 * API Priority and Fairness: the flow schema that classified a request and the priority level that served it,
 * as the API server says in every answer's headers (their UIDs: names take a read of the objects).
 */
export interface FlowControl {
  flowSchemaUid: string;
  priorityLevelUid: string;
}

/** How an answer is read: parsed as JSON, drained unread, or kept as text whatever its status. */
type Read = 'json' | 'drain' | 'text';

export class KubeHttp {
  private readonly server: string;
  private readonly plain: boolean;
  /** The server's address, parsed once: each request names it as options, not as a URL to parse again. */
  private readonly target: { host: string; port: string; base: string };
  private credentials?: Credentials;
  private agent?: HttpAgent | HttpsAgent;
  /** The APF classification of the last answer that carried one. */
  flowControl?: FlowControl;

  constructor(
    private readonly kc: KubeConfig,
    readonly timeoutMs = REQUEST_TIMEOUT_MS,
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

  /**
   * A JSON request on the keep-alive connections; a JSON merge patch when `body` is given (or a body of
   * `contentType`: server-side apply). `answer: false`: a success's body is drained unread (resolves
   * undefined); errors are read as always.
   */
  async call(
    method: string,
    path: string,
    accept: string,
    body?: string,
    answer = true,
    contentType = 'application/merge-patch+json',
  ): Promise<unknown> {
    const credentials = await this.auth();
    return this.send(
      method,
      path,
      accept,
      body === undefined ? undefined : { body, contentType },
      credentials,
      this.pooled(credentials),
      answer ? 'json' : 'drain',
    );
  }

  /**
   * A GET of a non-resource path (`/metrics`), its answer as text whatever its status. `newConnection`: on a
   * connection of its own, closed after it, so that behind a load balancer each call may reach another API
   * server.
   */
  async getRaw(
    path: string,
    options: { newConnection?: boolean } = {},
  ): Promise<{ status: number; body: string }> {
    const credentials = await this.auth();
    const agent = options.newConnection ? false : this.pooled(credentials);
    return this.send('GET', path, undefined, undefined, credentials, agent, 'text') as Promise<{
      status: number;
      body: string;
    }>;
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  /**
   * One agent for the client's life (made again only after close()): the TLS material never changes. Its
   * sockets carry the timeout (set once per connection, not per request).
   */
  private pooled(credentials: Credentials): HttpAgent | HttpsAgent {
    if (!this.agent) this.agent = keepAliveAgent(this.server, credentials.tls, this.timeoutMs);
    return this.agent;
  }

  private noteFlowControl(res: IncomingMessage): void {
    const flowSchemaUid = res.headers['x-kubernetes-pf-flowschema-uid'];
    const priorityLevelUid = res.headers['x-kubernetes-pf-prioritylevel-uid'];
    if (typeof flowSchemaUid === 'string' && typeof priorityLevelUid === 'string')
      this.flowControl = { flowSchemaUid, priorityLevelUid };
  }

  private async auth(): Promise<Credentials> {
    if (this.credentials && Date.now() - this.credentials.at <= AUTH_TTL_MS) return this.credentials;
    const opts: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(opts.headers ?? {})) headers[name] = value;
    // A kubeconfig user with a username and password: client-node hands them over as `auth`.
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = opts;
    const credentials = {
      headers,
      tls: { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername },
      at: Date.now(),
    };
    this.credentials = credentials;
    return credentials;
  }

  private send(
    method: string,
    path: string,
    accept: string | undefined,
    sent: { body: string; contentType: string } | undefined,
    credentials: Credentials,
    agent: HttpAgent | HttpsAgent | false,
    read: Read,
  ): Promise<unknown> {
    const send = this.plain ? httpRequest : httpsRequest;
    const what = `${method} ${path.split('?')[0]}`;
    const headers: OutgoingHttpHeaders = { ...credentials.headers };
    if (accept) headers.accept = accept;
    if (sent) {
      headers['content-type'] = sent.contentType;
      headers['content-length'] = Buffer.byteLength(sent.body);
    }
    const options: RequestOptions = {
      host: this.target.host,
      port: this.target.port,
      path: `${this.target.base}${path}`,
      method,
      headers,
      agent,
    };
    // A connection of its own carries the timeout itself, and the TLS material the agent would have.
    if (agent === false) Object.assign(options, { timeout: this.timeoutMs }, credentials.tls);
    return new Promise((resolve, reject) => {
      const req = send(options, (res) => {
        this.noteFlowControl(res);
        answer(res, req, read, what, resolve, reject);
      });
      req.on('timeout', () =>
        // ETIMEDOUT: a transport error, retried with backoff like a reset (shared/retry.ts).
        req.destroy(
          new RetryableError(`${what}: no answer within ${this.timeoutMs} ms`, {
            code: 'ETIMEDOUT',
            service: 'kubernetes',
          }),
        ),
      );
      req.on('error', reject);
      if (sent) req.end(sent.body);
      else req.end();
    });
  }
}

/** Reads an answer as `read` says; an error status is a KubeHttpError unless the text itself is asked for. */
function answer(
  res: IncomingMessage,
  req: ClientRequest,
  read: Read,
  what: string,
  resolve: (value: unknown) => void,
  reject: (err: unknown) => void,
): void {
  const status = res.statusCode ?? 0;
  const ok = status >= 200 && status <= 299;
  res.on('error', reject);
  if (read === 'drain' && ok) {
    res.on('end', () => resolve(undefined));
    res.resume();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (read === 'text' && size > RAW_MAX_BYTES)
      req.destroy(
        new SentinelError('permanent', `${what}: answer over ${RAW_MAX_BYTES} bytes`, {
          code: 'AnswerTooLarge',
        }),
      );
    else chunks.push(c);
  });
  res.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    if (read === 'text') return resolve({ status, body: text });
    if (!ok) return reject(new KubeHttpError(status, text, res.headers, what));
    try {
      resolve(JSON.parse(text));
    } catch {
      // A broken answer is the server's trouble (retried), and its text (it may hold Secret data) is dropped.
      reject(new KubeHttpError(502, '', {}, `${what}: the answer is not JSON`));
    }
  });
}

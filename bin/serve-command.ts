import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_BODY_BYTES, createHandler as webhook } from '../functions/webhook';
import { readConfigFile } from '../shared/config';
import type { HttpTriggerResponse } from '../shared/events';
import { redactString } from '../shared/log';
import type { FcContext } from '../shared/runtime/handler';
import { forRequest, localContext } from './local-context';
import { UsageError } from './output';

/**
 * `ack-kms-sentinel serve`: the webhook function behind a local HTTP server, like `s local start`. Each
 * request becomes the FC 3.0 HTTP trigger event FC would hand the function, so the signed API can be tried
 * with curl against the sandbox (or real cloud credentials; none are needed for what is refused before the cloud).
 */
export interface ServeFlags {
  port: string;
  host: string;
  config?: string;
}

const TEXT = /^(application\/(json|x-www-form-urlencoded|xml)|text\/)/;

const decodedPath = (p: string): string => {
  try {
    return decodeURIComponent(p);
  } catch {
    return p; // a malformed escape: the handler answers it (the signature covers the raw path)
  }
};

/** The FC 3.0 HTTP trigger event FC would build for this request. */
export function httpTriggerEvent(req: IncomingMessage, body: Buffer, accountId?: string) {
  const url = new URL(req.url ?? '/', 'http://local');
  const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  const queryParameters: Record<string, string> = {};
  for (const k of new Set(url.searchParams.keys())) queryParameters[k] = url.searchParams.getAll(k).join(',');
  const binary = body.length > 0 && !TEXT.test(String(req.headers['content-type'] ?? 'text/plain'));
  const now = Date.now();
  return {
    version: 'v1',
    rawPath,
    body: binary ? body.toString('base64') : body.toString('utf8'),
    isBase64Encoded: binary,
    headers,
    queryParameters,
    requestContext: {
      ...(accountId ? { accountId } : {}),
      domainName: String(req.headers.host ?? 'localhost'),
      requestId: randomUUID(),
      time: new Date(now).toISOString(),
      timeEpoch: String(now),
      http: {
        method: req.method ?? 'GET',
        path: decodedPath(url.pathname),
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: String(req.headers['user-agent'] ?? ''),
      },
    },
  };
}

/**
 * How long a client may take: its headers, and its whole request. A request of the signed API is at most
 * MAX_BODY_BYTES and sent at once; a client slower than this holds a connection for nothing.
 */
export const SERVE_TIMEOUTS = { headersMs: 10_000, requestMs: 30_000 };

const tooLarge = JSON.stringify({
  error: { code: 'PayloadTooLarge', message: `the body is larger than ${MAX_BODY_BYTES} bytes` },
});

/**
 * Reads a request's body up to MAX_BODY_BYTES, the webhook's own limit. Past it (or when Content-Length
 * announces more) the request is answered 413 at once and its connection closed: nothing more is read, so an
 * unsigned client cannot make the server hold more than the limit (a 128 MiB body grew it by ~570 MiB before).
 */
function readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const refuse = () => {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(tooLarge, () => req.destroy());
      resolve(undefined);
    };
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return refuse();
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(c);
      req.off('data', onData);
      req.pause();
      refuse();
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(undefined));
  });
}

export async function startServer(
  env: Record<string, string | undefined>,
  options: {
    port: number;
    host: string;
    context: Omit<FcContext, 'requestId'>;
    timeouts?: typeof SERVE_TIMEOUTS;
  },
): Promise<{ url: string; server: Server }> {
  const handler = webhook({ env, sink: (line) => process.stderr.write(`${line}\n`) });
  const timeouts = options.timeouts ?? SERVE_TIMEOUTS;
  const server = createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // How often Node looks for clients past those timeouts (30 s by default, longer than both).
      connectionsCheckingInterval: Math.min(1000, timeouts.headersMs / 2),
    },
    async (req, res) => {
      const body = await readBody(req, res);
      if (!body) return;
      try {
        const event = httpTriggerEvent(req, body, options.context.accountId);
        const context = forRequest(options.context, event.requestContext.requestId);
        const out = (await handler(Buffer.from(JSON.stringify(event)), context)) as HttpTriggerResponse;
        res.writeHead(out.statusCode ?? 200, out.headers ?? {});
        res.end(Buffer.from(out.body ?? '', out.isBase64Encoded ? 'base64' : 'utf8'));
      } catch (err) {
        // What FC answers when a function throws: the server stays up for the next request.
        process.stderr.write(`webhook invocation failed: ${redactString((err as Error).message)}\n`);
        res.writeHead(502, {
          'content-type': 'application/json',
          'x-fc-error-type': 'UnhandledInvocationError',
        });
        res.end(JSON.stringify({ errorMessage: 'the function failed; see its log' }));
      }
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new UsageError(`cannot listen on ${options.host}:${options.port} (${err.code ?? err.message})`)),
    );
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://${options.host}:${port}`, server };
}

export async function serveCommand(flags: ServeFlags): Promise<number> {
  if (!/^\d{1,5}$/.test(flags.port))
    throw new UsageError(`--port must be a port number (got "${flags.port}")`);
  const env = { ...(flags.config ? readConfigFile(flags.config) : {}), ...process.env };
  const { url } = await startServer(env, {
    port: Number(flags.port),
    host: flags.host,
    context: await localContext({
      function: { name: 'ack-kms-sentinel-webhook', handler: 'index.handler', memory: 512, timeout: 30 },
      region: env.SENTINEL_REGION ?? '',
      ...(env.SENTINEL_ACCOUNT_ID ? { accountId: env.SENTINEL_ACCOUNT_ID } : {}),
    }),
  });
  process.stderr.write(`webhook listening on ${url} (Ctrl-C to stop)\n`);
  await new Promise(() => undefined);
  return 0;
}

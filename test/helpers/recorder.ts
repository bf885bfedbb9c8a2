import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Reply = (req: RecordedRequest, res: ServerResponse) => void;

/** A local HTTP server that records each request and answers from a script: for SDK wire tests. */
export class Recorder {
  readonly requests: RecordedRequest[] = [];
  private replies: Reply[] = [];
  private fallback: Reply = (_req, res) => json(res, 200, {});
  private server: Server;
  url = '';
  host = '';

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const recorded: RecordedRequest = {
          method: req.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.requests.push(recorded);
        (this.replies.shift() ?? this.fallback)(recorded, res);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.host = `127.0.0.1:${port}`;
    this.url = `http://${this.host}`;
    return this;
  }

  reply(...replies: Reply[]): this {
    this.replies.push(...replies);
    return this;
  }

  /** Drops replies queued and not used, so one test's leftovers never answer the next test's requests. */
  dropQueuedReplies(): this {
    this.replies.length = 0;
    return this;
  }

  always(reply: Reply): this {
    this.fallback = reply;
    return this;
  }

  last(): RecordedRequest {
    const r = this.requests.at(-1);
    if (!r) throw new Error('no request recorded');
    return r;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export const replyJson =
  (status: number, body: unknown, headers: Record<string, string> = {}): Reply =>
  (_req, res) =>
    json(res, status, body, headers);

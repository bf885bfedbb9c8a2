import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A network between the clients and the API server: a TCP relay on loopback that holds every chunk of bytes
 * `oneWayMs` before passing it on, in both directions, so a request and its answer take one round trip of
 * 2 × `oneWayMs` more, and so does each round trip of a TLS handshake, as across a real network (the TCP
 * handshake itself is the one thing not delayed: the kernel completes it with the relay). TLS stays
 * end to end (the relay never decrypts), so the relay costs next to no CPU: on a small machine a TLS-terminating
 * proxy takes its share from the API server and the clients it is meant to measure. (The fault proxy, which
 * must read requests to fault them, is for the fault-injection suites.)
 */
export class DelayLine {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly target: URL,
    private readonly oneWayMs: number,
  ) {}

  /** `apiServer`: the API server's URL (`https://127.0.0.1:6443`); `roundTripMs`: the round trip it adds. */
  static async start(apiServer: string, roundTripMs: number): Promise<DelayLine> {
    const target = new URL(apiServer);
    let line: DelayLine | undefined;
    const server = createServer({ allowHalfOpen: true }, (client) => line?.relay(client));
    line = new DelayLine(server, target, roundTripMs / 2);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return line;
  }

  /** The API server's URL through the line (the same host, so its serving certificate still matches). */
  get url(): string {
    return `${this.target.protocol}//${this.target.hostname}:${(this.server.address() as AddressInfo).port}`;
  }

  /** A copy of `kubeconfigPath` whose clusters reach the API server through this line; nothing else changes. */
  kubeconfigFrom(kubeconfigPath: string, outPath: string): string {
    const config = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as {
      clusters: Array<{ cluster: { server?: string } }>;
    };
    for (const c of config.clusters) c.cluster.server = this.url;
    writeFileSync(outPath, JSON.stringify(config, null, 2), { mode: 0o600 });
    return outPath;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket): void {
    const upstream = connect({
      port: Number(this.target.port),
      host: this.target.hostname,
      allowHalfOpen: true,
    });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => this.sockets.delete(s));
    }
    this.pipeDelayed(client, upstream);
    this.pipeDelayed(upstream, client);
  }

  /**
   * Every chunk is written `oneWayMs` after it arrived. Timers of one duration fire in the order they were
   * set, so the byte stream keeps its order; the end and errors travel the same way.
   */
  private pipeDelayed(from: Socket, to: Socket): void {
    const later = (fn: () => void) => setTimeout(fn, this.oneWayMs);
    from.on('data', (chunk: Buffer) =>
      later(() => {
        if (to.destroyed) return;
        if (!to.write(chunk) && !from.isPaused()) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      }),
    );
    // Half-open sockets (both ends): an end is passed on after the data before it, not at once.
    from.on('end', () => later(() => to.end()));
    // A reset (no end first) resets the other side.
    from.on('close', () =>
      later(() => {
        if (!to.writableEnded) to.destroy();
      }),
    );
    // A peer gone while this side waits for it to drain: nothing will drain, so this side goes too.
    to.on('close', () => {
      if (from.isPaused()) from.destroy();
    });
    from.on('error', () => {});
  }
}

import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP load balancer in front of the control plane's API servers, as every managed ACK control plane has
 * (a CLB/NLB listener with the API servers as its backends). TLS passes through untouched: the client checks
 * the API servers' own certificate and authenticates to them, so the balancer sees nothing but connections.
 * It picks a server per connection, never per request, like the real thing: a client that keeps its
 * connection alive keeps its API server.
 *
 * - `round-robin`: each new connection goes to the next server.
 * - `random`: each new connection goes to a server picked at random.
 * - `sticky`: by the client's address (a source-IP-persistent listener): an address's first connection is
 *   placed round-robin, every later one goes to the same server. On one machine every client is 127.0.0.1,
 *   so every connection reaches one server (the first one, on a fresh balancer): the case where a client
 *   that samples `/metrics` on new connections never sees the other API servers.
 *
 * A server out of service (being restarted: a real balancer's health check takes it out) gets no new
 * connections; a server that refuses one hands it to the next in order, as a health-checked balancer does.
 */
export type BalancerMode = 'round-robin' | 'random' | 'sticky';
export const BALANCER_MODES: readonly BalancerMode[] = ['round-robin', 'random', 'sticky'];

export interface Backend {
  host: string;
  port: number;
}

/**
 * The server the mode picks for a new connection. `turn` counts connections (round-robin), `random` is in
 * [0, 1), `pinned` is where earlier connections from the same address went (sticky): the first connection
 * from an address is placed round-robin and pins it, as a persistence table (LVS, CLB session persistence by
 * source IP) does.
 */
export function pickBackend(
  mode: BalancerMode,
  servers: number,
  client: { turn: number; random: number; pinned?: number },
): number {
  if (mode === 'random') return Math.floor(client.random * servers) % servers;
  if (mode === 'sticky' && client.pinned !== undefined) return client.pinned;
  return client.turn % servers;
}

/** The servers to try, in order: the pick, then the others after it, skipping those out of service. */
export function backendOrder(first: number, inService: readonly boolean[]): number[] {
  const all = Array.from({ length: inService.length }, (_, k) => (first + k) % inService.length);
  const serving = all.filter((i) => inService[i]);
  // With every server out of service a connection still tries them all: refusing outright would turn a
  // rolling restart's last step into an outage the real control plane does not have.
  return serving.length > 0 ? serving : all;
}

export class LoadBalancer {
  /** Connections handed to each server since the start. */
  readonly connections: number[];
  private readonly inService: boolean[];
  private readonly open = new Set<Socket>();
  /** Sticky mode's persistence table: client address → server. */
  private readonly pins = new Map<string, number>();
  private turn = 0;

  private constructor(
    private readonly server: Server,
    private readonly backends: readonly Backend[],
    private currentMode: BalancerMode,
  ) {
    this.connections = backends.map(() => 0);
    this.inService = backends.map(() => true);
  }

  /** Listens on a free loopback port. */
  static async start(backends: readonly Backend[], mode: BalancerMode): Promise<LoadBalancer> {
    if (backends.length === 0) throw new Error('a load balancer needs at least one backend');
    // Half-open allowed both ways: an end from one side is passed on, and the other side may still answer.
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true });
    const lb = new LoadBalancer(server, backends, mode);
    server.on('connection', (client) => lb.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return lb;
  }

  get url(): string {
    const address = this.server.address();
    return `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  get mode(): BalancerMode {
    return this.currentMode;
  }

  /** Changes how new connections are spread; open ones stay where they are, as on a real listener. */
  setMode(mode: BalancerMode): void {
    this.currentMode = mode;
  }

  /** Takes a server out of service (no new connections) or puts it back. */
  setInService(index: number, inService: boolean): void {
    if (index < 0 || index >= this.backends.length) throw new Error(`no backend ${index}`);
    this.inService[index] = inService;
  }

  async stop(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.track(client);
    // A client that resets while its server is being picked must not take the sandbox down.
    client.on('error', () => client.destroy());
    const address = client.remoteAddress ?? '';
    const pinned = this.pins.get(address);
    const first = pickBackend(this.currentMode, this.backends.length, {
      turn: this.turn++,
      random: Math.random(),
      ...(pinned === undefined ? {} : { pinned }),
    });
    if (this.currentMode === 'sticky' && pinned === undefined) this.pins.set(address, first);
    this.forward(client, backendOrder(first, this.inService));
  }

  /** Connects `client` to the first server of `order` that accepts, then pipes both ways. */
  private forward(client: Socket, order: number[]): void {
    const [index, ...rest] = order;
    const backend = index === undefined ? undefined : this.backends[index];
    if (index === undefined || !backend) {
      client.destroy();
      return;
    }
    const upstream = connect({ port: backend.port, host: backend.host, allowHalfOpen: true });
    this.track(upstream);
    const refused = () => {
      upstream.destroy();
      if (!client.destroyed) this.forward(client, rest);
    };
    upstream.once('error', refused);
    upstream.once('connect', () => {
      upstream.off('error', refused);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      this.connections[index] = (this.connections[index] ?? 0) + 1;
      // Either side's end or failure ends both: a half-open TLS connection is of no use to anyone.
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }

  private track(socket: Socket): void {
    this.open.add(socket);
    socket.on('close', () => this.open.delete(socket));
  }
}

import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backendOrder, LoadBalancer, pickBackend } from '../../sandbox/controlplane/load-balancer';

// The sandbox's load balancer in front of several API servers: which server each new connection reaches.

describe('pickBackend and backendOrder', () => {
  it('round-robin takes the next server per connection; random follows its draw', () => {
    expect([0, 1, 2, 3, 4].map((turn) => pickBackend('round-robin', 3, { turn, random: 0.9 }))).toEqual([
      0, 1, 2, 0, 1,
    ]);
    expect([0, 0.34, 0.67, 0.99].map((random) => pickBackend('random', 3, { turn: 7, random }))).toEqual([
      0, 1, 2, 2,
    ]);
  });

  it('sticky places an unknown address round-robin and keeps a pinned one where it is', () => {
    expect(pickBackend('sticky', 3, { turn: 4, random: 0 })).toBe(1);
    expect(pickBackend('sticky', 3, { turn: 4, random: 0, pinned: 2 })).toBe(2);
    expect(pickBackend('round-robin', 3, { turn: 4, random: 0, pinned: 2 }), 'only sticky pins').toBe(1);
  });

  it('tries the pick first, then the others after it, skipping those out of service', () => {
    expect(backendOrder(1, [true, true, true])).toEqual([1, 2, 0]);
    expect(backendOrder(1, [true, false, true])).toEqual([2, 0]);
    expect(backendOrder(2, [false, false, false]), 'none in service: try them all').toEqual([2, 0, 1]);
  });
});

/** A TCP server that answers every connection with `name` and ends it. */
async function namedServer(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Which server answered a new connection through `url`. */
function reached(url: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    let got = '';
    const socket = connect({ port: Number(port), host: '127.0.0.1' });
    socket.on('data', (c: Buffer) => {
      got += c.toString();
    });
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

const servers: Server[] = [];
let lb: LoadBalancer | undefined;

async function balancer(mode: 'round-robin' | 'random' | 'sticky'): Promise<LoadBalancer> {
  const started = await Promise.all(['a', 'b', 'c'].map(namedServer));
  servers.push(...started.map((s) => s.server));
  lb = await LoadBalancer.start(
    started.map((s) => ({ host: '127.0.0.1', port: s.port })),
    mode,
  );
  return lb;
}

const inTurn = async (url: string, n: number) => {
  const got: string[] = [];
  for (let i = 0; i < n; i++) got.push(await reached(url));
  return got;
};

afterEach(async () => {
  await lb?.stop();
  lb = undefined;
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

describe('LoadBalancer', () => {
  it('spreads connections round-robin, then randomly, then keeps one client on one server', async () => {
    const b = await balancer('round-robin');
    expect(await inTurn(b.url, 6)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    b.setMode('random');
    expect(new Set(await inTurn(b.url, 30)).size).toBeGreaterThan(1);
    b.setMode('sticky');
    expect(new Set(await inTurn(b.url, 10)).size).toBe(1);
    expect(b.connections.reduce((x, y) => x + y, 0)).toBe(46);
  });

  it('pins a fresh sticky balancer to the first server; sends nothing to one out of service', async () => {
    const b = await balancer('sticky');
    expect(await inTurn(b.url, 3)).toEqual(['a', 'a', 'a']);
    b.setInService(0, false);
    expect(await inTurn(b.url, 2)).toEqual(['b', 'b']);
    b.setInService(0, true);
    expect(await reached(b.url)).toBe('a');
  });

  it('hands a refused connection to the next server, as a health-checked balancer does', async () => {
    const b = await balancer('round-robin');
    await new Promise((r) => servers[0]?.close(r));
    expect(await inTurn(b.url, 3)).toEqual(['b', 'b', 'c']);
  });
});

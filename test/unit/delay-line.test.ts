import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DelayLine } from '../../sandbox/controlplane/delay-line';

// The bench's "API server 10 ms away": a TCP relay that delays bytes, both ways, without reading them.

/** A TCP echo server on loopback that ends its side when the client ends (half-open sockets). */
async function echoServer(): Promise<{ server: Server; url: string; peers: Socket[] }> {
  const peers: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    peers.push(s);
    s.on('data', (c) => s.write(c));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, peers };
}

/** Sends `chunks` through a new connection to `url`, and resolves with all it got back once the far side ends. */
function exchange(url: string, chunks: string[]): Promise<{ got: string; firstByteMs: number }> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let firstByteMs = -1;
    let got = '';
    const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true }, () => {
      for (const c of chunks) socket.write(c);
      socket.end();
    });
    socket.on('data', (c) => {
      if (firstByteMs < 0) firstByteMs = performance.now() - started;
      got += c.toString();
    });
    socket.on('end', () => resolve({ got, firstByteMs }));
    socket.on('error', reject);
  });
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('the delay line', () => {
  it('adds its round trip to an exchange and passes every byte, in order, then the end', async () => {
    const echo = await echoServer();
    const line = await DelayLine.start(echo.url, 60);
    cleanups.push(
      () => line.stop(),
      () => new Promise<void>((r) => echo.server.close(() => r())),
    );
    const chunks = Array.from({ length: 500 }, (_, i) => `${i};`);
    const { got, firstByteMs } = await exchange(line.url, chunks);
    expect(got).toBe(chunks.join(''));
    // At least one round trip before the first answer byte (timers may fire a millisecond early).
    expect(firstByteMs).toBeGreaterThanOrEqual(55);
  });

  it('keeps the scheme and host, so the API server certificate still matches, and rewrites only the server', async () => {
    const line = await DelayLine.start('https://127.0.0.1:6443', 10);
    cleanups.push(() => line.stop());
    expect(line.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(line.url).not.toBe('https://127.0.0.1:6443');
    const dir = mkdtempSync(join(tmpdir(), 'delay-line-'));
    const source = join(dir, 'admin.kubeconfig');
    const config = {
      clusters: [
        { name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': 'Q0E=' } },
      ],
      users: [{ name: 'u', user: { token: 't' } }],
    };
    writeFileSync(source, JSON.stringify(config));
    const copy = JSON.parse(readFileSync(line.kubeconfigFrom(source, join(dir, 'far.kubeconfig')), 'utf8'));
    expect(copy).toEqual({
      ...config,
      clusters: [{ name: 'c', cluster: { server: line.url, 'certificate-authority-data': 'Q0E=' } }],
    });
  });

  it('resets the client when the server side is reset, and stop() ends what is open', async () => {
    const echo = await echoServer();
    const line = await DelayLine.start(echo.url, 10);
    let stopped = false;
    cleanups.push(
      () => (stopped ? undefined : line.stop()),
      () => new Promise<void>((r) => echo.server.close(() => r())),
    );
    const { port } = new URL(line.url);
    const client = connect({ port: Number(port), host: '127.0.0.1' });
    client.on('error', () => {});
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    client.write('hello');
    await new Promise<void>((resolve) => client.once('data', () => resolve()));
    // A reset (RST), not an orderly end: the client's connection is closed too.
    echo.peers[0]?.resetAndDestroy();
    await closed;
    const open = connect({ port: Number(port), host: '127.0.0.1' });
    open.on('error', () => {});
    const ended = new Promise<void>((resolve) => open.on('close', () => resolve()));
    await new Promise<void>((resolve) => open.on('connect', () => resolve()));
    await line.stop();
    stopped = true;
    await ended;
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ControlPlane, type ControlPlaneInfo } from './controlplane/controlplane';
import { InProcessKeyProvider } from './kms-plugin/key-provider';

/**
 * The local sandbox: a real control plane whose Secrets are encrypted by the KMS v2 plugin, plus a small
 * control API on loopback for what tests and people do to it from another process (rotate the key, wait
 * until the API server adopts the new version).
 */
export interface SandboxInfo extends ControlPlaneInfo {
  /** The control API: `GET /kms`, `POST /kms/rotate`, `POST /kms/wait-adoption`. */
  control: string;
  /** The KMS key the plugin encrypts with, and its current key id (`<key>/<version>`). */
  kmsKeyId: string;
  kmsKeyIdWithVersion: string;
}

export interface Sandbox {
  info: SandboxInfo;
  controlPlane: ControlPlane;
  stop(): Promise<void>;
}

export async function startSandbox(options: { workDir?: string } = {}): Promise<Sandbox> {
  const provider = new InProcessKeyProvider();
  const controlPlane = await ControlPlane.start({
    provider,
    ...(options.workDir ? { workDir: options.workDir } : {}),
  });
  const server = controlServer(controlPlane, provider);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const info: SandboxInfo = {
    ...controlPlane.info,
    control: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    kmsKeyId: provider.keyId,
    kmsKeyIdWithVersion: await provider.currentKeyId(),
  };
  return {
    info,
    controlPlane,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await controlPlane.stop();
    },
  };
}

function controlServer(cp: ControlPlane, provider: InProcessKeyProvider): Server {
  return createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = chunks.length
          ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
          : {};
        const route = `${req.method} ${req.url}`;
        if (route === 'GET /kms') {
          return reply(200, {
            keyId: await provider.currentKeyId(),
            adoptedKeyId: cp.plugin.adoptedKeyId,
            stats: cp.plugin.stats,
          });
        }
        if (route === 'POST /kms/rotate') return reply(200, { keyId: provider.rotate() });
        if (route === 'POST /kms/wait-adoption') {
          const keyId = typeof body.keyId === 'string' ? body.keyId : await provider.currentKeyId();
          const timeoutMs = typeof body.timeoutMs === 'number' ? body.timeoutMs : 120_000;
          await cp.waitForAdoption(keyId, timeoutMs);
          return reply(200, { adoptedKeyId: cp.plugin.adoptedKeyId });
        }
        return reply(404, { error: `no route ${route}` });
      } catch (err) {
        return reply(500, { error: (err as Error).message });
      }
    });
  });
}

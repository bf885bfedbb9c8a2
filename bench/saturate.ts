import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

/**
 * The API server's ceiling on this machine: raw merge patches (annotation only, metadata-only responses) at
 * high concurrency over keep-alive connections, after one metadata list. No paging, no retries, no
 * checkpoints: what a client that does nothing else could reach.
 *
 * usage: saturate <kubeconfig> <concurrency>
 */
interface Kubeconfig {
  clusters: Array<{ cluster: { server: string; 'certificate-authority-data'?: string } }>;
  users: Array<{ user: { token: string } }>;
}

const [kubeconfigPath = '', concurrencyArg = '64'] = process.argv.slice(2);
const config = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as Kubeconfig;
const server = new URL(config.clusters[0]?.cluster.server ?? '');
const ca = Buffer.from(config.clusters[0]?.cluster['certificate-authority-data'] ?? '', 'base64');
const token = config.users[0]?.user.token ?? '';
const plain = server.protocol === 'http:';
const agent = plain
  ? new http.Agent({ keepAlive: true, maxSockets: 512 })
  : new https.Agent({ ca, keepAlive: true, maxSockets: 512 });
const request = plain ? http.request : https.request;

const LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const ONE = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

function call(method: string, path: string, body?: string, contentType?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: server.hostname,
        port: server.port,
        path,
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          accept: method === 'GET' ? LIST : ONE,
          ...(body
            ? { 'content-type': contentType ?? 'application/json', 'content-length': Buffer.byteLength(body) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode && res.statusCode < 300
            ? resolve(Buffer.concat(chunks).toString())
            : reject(new Error(`${res.statusCode} ${path}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const list = JSON.parse(await call('GET', '/api/v1/secrets')) as {
    items: Array<{ metadata: { namespace: string; name: string } }>;
  };
  const stamp = new Date().toISOString();
  const body = JSON.stringify({ metadata: { annotations: { 'bench.ack-kms-sentinel.io/saturate': stamp } } });
  let next = 0;
  const workers = Array.from({ length: Number(concurrencyArg) }, async () => {
    while (next < list.items.length) {
      const { namespace, name } = (list.items[next++] as { metadata: { namespace: string; name: string } })
        .metadata;
      await call(
        'PATCH',
        `/api/v1/namespaces/${namespace}/secrets/${name}`,
        body,
        'application/merge-patch+json',
      );
    }
  });
  await Promise.all(workers);
  process.stdout.write(`${JSON.stringify({ patched: list.items.length })}\n`);
  agent.destroy();
}

main().catch((err: Error) => {
  process.stderr.write(`saturate: ${err.message}\n`);
  process.exit(1);
});

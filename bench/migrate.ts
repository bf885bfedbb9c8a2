import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';

/**
 * The in-tree contender: Kubernetes' own storage version migrator, a kube-controller-manager controller behind
 * the `StorageVersionMigrator` feature gate (beta, off by default in 1.36; ACK managed clusters do not let
 * users set controller-manager gates). Run by the benchmark as one command:
 *
 *   node dist/migrate.js <kube-controller-manager> <admin kubeconfig> <ca file>
 *
 * It starts kube-controller-manager with only the controllers the migrator needs (it reads the garbage
 * collector's graph), creates a `StorageVersionMigration` of `secrets`, and waits for `Succeeded`. A
 * metadata-only watch of Secrets times the migrator's first and last patch, so its rate can be read "from its
 * first patch" (without its start-up and informer sync). Prints one JSON object: times and the controller
 * manager's own peak RSS (sampled from /proc), then stops it.
 */
const [kcm, kubeconfigPath, caFile] = process.argv.slice(2);
if (!kcm || !kubeconfigPath || !caFile) {
  process.stderr.write('usage: migrate <kube-controller-manager> <kubeconfig> <ca>\n');
  process.exit(2);
}
const config = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as {
  clusters: Array<{ cluster: { server: string } }>;
  users: Array<{ user: { token: string } }>;
};
const server = new URL(config.clusters[0]?.cluster.server ?? '');
const token = config.users[0]?.user.token ?? '';
const ca = readFileSync(caFile);
// The remote scenario reaches the API server through a latency proxy over plain HTTP.
const plain = server.protocol === 'http:';
const request = plain ? httpRequest : httpsRequest;
const newAgent = (keepAlive: boolean) =>
  plain ? new HttpAgent({ keepAlive }) : new Agent({ ca, keepAlive });
const agent = newAgent(true);

function call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, server),
      {
        method,
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Times of the first and last MODIFIED Secret after `since` (a metadata-only watch: no Secret data). */
function watchPatches(resourceVersion: string): {
  first?: number;
  last?: number;
  count: number;
  stop(): void;
} {
  const seen: { first?: number; last?: number; count: number; stop(): void } = {
    count: 0,
    stop: () => undefined,
  };
  const req = request(
    new URL(
      `/api/v1/secrets?watch=true&resourceVersion=${resourceVersion}&allowWatchBookmarks=false`,
      server,
    ),
    {
      agent: newAgent(false),
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
      },
    },
    (res) => {
      let buffered = '';
      res.on('data', (c: Buffer) => {
        buffered += c.toString();
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.startsWith('{"type":"MODIFIED"')) {
            const now = performance.now();
            seen.first ??= now;
            seen.last = now;
            seen.count++;
          }
          nl = buffered.indexOf('\n');
        }
      });
    },
  );
  req.on('error', () => undefined);
  req.end();
  seen.stop = () => req.destroy();
  return seen;
}

function peakRss(child: ChildProcess): { peak: number; stop(): void } {
  const out = { peak: 0, stop: () => clearInterval(timer) };
  const timer = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      out.peak = Math.max(out.peak, Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024);
    } catch {
      // not started yet, or gone
    }
  }, 20);
  return out;
}

async function main(): Promise<void> {
  const started = performance.now();
  const list = JSON.parse((await call('GET', '/api/v1/secrets?limit=1')).text) as {
    metadata: { resourceVersion: string };
  };
  const patches = watchPatches(list.metadata.resourceVersion);
  const manager = spawn(
    kcm as string,
    [
      `--kubeconfig=${kubeconfigPath}`,
      '--controllers=garbage-collector-controller,storage-version-migrator-controller',
      '--feature-gates=StorageVersionMigrator=true',
      '--leader-elect=false',
      '--secure-port=0',
      '--v=1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  manager.stderr?.on('data', (c: Buffer) => {
    log = (log + c.toString()).slice(-4000);
  });
  const rss = peakRss(manager);
  const name = `bench-secrets-${Date.now()}`;
  const created = await call('POST', '/apis/storagemigration.k8s.io/v1beta1/storageversionmigrations', {
    apiVersion: 'storagemigration.k8s.io/v1beta1',
    kind: 'StorageVersionMigration',
    metadata: { name },
    spec: { resource: { group: '', resource: 'secrets' } },
  });
  if (created.status !== 201) throw new Error(`creating the migration: ${created.status} ${created.text}`);
  let outcome = '';
  for (let i = 0; i < 6000 && !outcome; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const got = JSON.parse(
      (await call('GET', `/apis/storagemigration.k8s.io/v1beta1/storageversionmigrations/${name}`)).text,
    ) as { status?: { conditions?: Array<{ type: string; status: string }> } };
    const done = got.status?.conditions?.find(
      (c) => ['Succeeded', 'Failed'].includes(c.type) && c.status === 'True',
    );
    if (done) outcome = done.type;
    if (manager.exitCode !== null) throw new Error(`kube-controller-manager exited: ${log}`);
  }
  const finished = performance.now();
  manager.kill('SIGTERM');
  rss.stop();
  patches.stop();
  await call('DELETE', `/apis/storagemigration.k8s.io/v1beta1/storageversionmigrations/${name}`);
  if (outcome !== 'Succeeded') throw new Error(`the migration ended ${outcome || 'never'}: ${log}`);
  process.stdout.write(
    `${JSON.stringify({
      wallMs: finished - started,
      fromFirstPatchMs: patches.first === undefined ? undefined : finished - patches.first,
      patchPhaseMs:
        patches.first === undefined || patches.last === undefined ? undefined : patches.last - patches.first,
      patched: patches.count,
      peakRssBytes: rss.peak,
    })}\n`,
  );
  agent.destroy();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`migrate: ${(err as Error).message}\n`);
    process.exit(1);
  },
);

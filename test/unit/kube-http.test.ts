import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { openCluster } from '../../shared/cluster/kube';
import { KubeHttp } from '../../shared/cluster/kube-http';
import { httpSecretStore } from '../../shared/cluster/secret-store';
import { KEY_VERSION_ANNOTATION, SEALED_UNDER_ANNOTATION } from '../../shared/reencrypt/annotations';
import { estimateSweep } from '../../shared/reencrypt/estimate';
import { keyVersionCensus } from '../../shared/reencrypt/secrets-api';

/**
 * The one Kubernetes HTTP client (`shared/cluster/kube-http.ts`) under the Secret store and the raw GETs of
 * `/metrics`, against stand-in API servers.
 */
describe('the Secret store', () => {
  /** A stand-in API server that answers one list, and records what it was asked. */
  async function server(answer: unknown): Promise<{ url: string; asked: string[]; close(): Promise<void> }> {
    const asked: string[] = [];
    const srv = createServer((req, res) => {
      asked.push(`${req.method} ${req.url} accept=${req.headers.accept} auth=${req.headers.authorization}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/prefix`,
      asked,
      close: () => new Promise((r) => srv.close(() => r())),
    };
  }

  it('keeps only the suite annotation of what the API server lists, and asks for metadata only', async () => {
    const lastApplied = '{"apiVersion":"v1","data":{"password":"c2VjcmV0"},"kind":"Secret"}';
    const api = await server({
      items: [
        {
          metadata: {
            namespace: 'app',
            name: 'db',
            resourceVersion: '7',
            annotations: {
              'kubectl.kubernetes.io/last-applied-configuration': lastApplied,
              [KEY_VERSION_ANNOTATION]: 'v1',
              [SEALED_UNDER_ANNOTATION]: 'a1b2c3',
            },
          },
        },
        { metadata: { namespace: 'app', name: 'plain', resourceVersion: '8' } },
      ],
      metadata: {},
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: api.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'the-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const store = httpSecretStore(kc);
    try {
      const page = await store.list({ limit: 10 });
      expect(page.items).toEqual([
        {
          namespace: 'app',
          name: 'db',
          resourceVersion: '7',
          annotations: { [KEY_VERSION_ANNOTATION]: 'v1', [SEALED_UNDER_ANNOTATION]: 'a1b2c3' },
        },
        { namespace: 'app', name: 'plain', resourceVersion: '8' },
      ]);
      expect(JSON.stringify(page).includes('c2VjcmV0'), 'last-applied data kept').toBe(false);
      const census = await keyVersionCensus(store);
      expect(census).toEqual({
        total: 2,
        byVersion: new Map([
          ['v1', 1],
          [undefined, 1],
        ]),
        provenByVersion: new Map([['v1', 1]]),
      });
      // The estimate's list asks for the same selection as the sweep's (the excluded namespaces too).
      await store.listSizes?.({ limit: 5, fieldSelector: 'metadata.namespace!=kube-system' });
      expect(api.asked.at(-1)).toMatch(
        /^GET \/prefix\/api\/v1\/secrets\?limit=5&fieldSelector=metadata.namespace%21%3Dkube-system accept=application\/json /,
      );
      // The server URL's path is kept (a proxy's /k8s/clusters/<id>); the kubeconfig's token is sent.
      expect(api.asked[0]).toBe(
        'GET /prefix/api/v1/secrets?limit=10 accept=application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1 auth=Bearer the-token',
      );
    } finally {
      store.close();
      await api.close();
    }
  });

  it("estimates from the API server's table (type and metadata, never a value) unless sizes are asked for", async () => {
    const meta = (name: string) => ({
      namespace: 'app',
      name,
      resourceVersion: '9',
      managedFields: [{ manager: 'kubectl', time: '2026-11-30T08:00:00Z' }],
    });
    const whole = {
      items: [{ metadata: meta('db'), type: 'kubernetes.io/tls', data: { 'tls.key': 'c2VjcmV0LWtleQ==' } }],
      metadata: {},
    };
    // What a table answer holds: the columns kubectl prints (no value), the metadata of each row.
    const table = {
      kind: 'Table',
      columnDefinitions: [{ name: 'Name' }, { name: 'Type' }, { name: 'Data' }, { name: 'Age' }],
      rows: [{ cells: ['db', 'kubernetes.io/tls', 1, '5m'], object: { metadata: meta('db') } }],
      metadata: {},
    };
    const api = await server(whole);
    const tableApi = await server(table);
    const storeOf = (url: string) => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
        users: [{ name: 'u', token: 't' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      return httpSecretStore(kc);
    };
    const byTable = storeOf(tableApi.url);
    const whole$ = storeOf(api.url);
    try {
      const estimate = await estimateSweep(byTable, { targetKeyVersionId: 'v2' });
      expect(tableApi.asked).toHaveLength(1);
      expect(tableApi.asked[0]).toMatch(
        /^GET \/prefix\/api\/v1\/secrets\?limit=\d+&includeObject=Metadata accept=application\/json;as=Table;g=meta.k8s.io;v=v1 /,
      );
      expect(estimate).toMatchObject({ secrets: 1, toRewrite: 1, sizesRead: false });
      expect(estimate.bytes).toBeUndefined();
      expect(estimate.blastRadius.byType).toEqual({ TLS: 1 });
      expect(estimate.cannotKnow[0]).toMatch(/^Secret sizes: .*--read-secret-sizes/);
      const sized = await estimateSweep(whole$, { targetKeyVersionId: 'v2', readSizes: true });
      expect(api.asked[0]).toMatch(/accept=application\/json /);
      expect(sized).toMatchObject({ sizesRead: true, bytes: 10, bytesToRewrite: 10 });
      expect(JSON.stringify(sized)).not.toContain('c2VjcmV0');
    } finally {
      byTable.close();
      whole$.close();
      await api.close();
      await tableApi.close();
    }
  });

  it("says so when the kubeconfig's server is not a URL", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'not a url', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    expect(() => httpSecretStore(kc)).toThrow(/the kubeconfig's cluster server is not a URL \("not a url"\)/);
  });

  it('fails a request the server leaves unanswered as ETIMEDOUT (the connection carries the timeout)', async () => {
    const held: Array<import('node:http').ServerResponse> = [];
    const srv = createServer((req, res) => {
      req.resume();
      held.push(res); // never answered
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'c', server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, skipTLSVerify: true },
      ],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const store = httpSecretStore(kc, 200);
    try {
      await expect(store.list({ limit: 1 })).rejects.toMatchObject({
        code: 'ETIMEDOUT',
        message: expect.stringMatching(/GET \/api\/v1\/secrets: no answer within 200 ms/),
      });
      // A second request on a new connection times out the same way, and so does a raw GET (one policy).
      await expect(store.get('app', 'db')).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      await expect(new KubeHttp(kc, 200).getRaw('/metrics', { newConnection: true })).rejects.toMatchObject({
        code: 'ETIMEDOUT',
        message: 'GET /metrics: no answer within 200 ms',
      });
    } finally {
      store.close();
      for (const res of held) res.destroy();
      await new Promise((r) => srv.close(r));
    }
  });

  it("writes a mark without reading the server's answer, and still reads an error's", async () => {
    const asked: string[] = [];
    const srv = createServer((req, res) => {
      asked.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      req.resume();
      if (req.url?.includes('/denied?')) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'denied by policy' }),
        );
        return;
      }
      // Not JSON: whoever reads this answer fails.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('not json {');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/prefix/`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const store = httpSecretStore(kc);
    const patch = { metadata: { annotations: { [KEY_VERSION_ANNOTATION]: 'v2' } } };
    try {
      await expect(store.writeMetadata?.('app', 'db', patch)).resolves.toBeUndefined();
      await expect(store.patchMetadata('app', 'db', patch)).rejects.toMatchObject({ code: 502 });
      await expect(store.writeMetadata?.('app', 'denied', patch)).rejects.toMatchObject({
        code: 403,
        body: expect.stringContaining('denied by policy'),
      });
      expect(asked[0]).toBe(
        'PATCH /prefix/api/v1/namespaces/app/secrets/db?fieldManager=ack-kms-sentinel application/merge-patch+json',
      );
    } finally {
      store.close();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe('raw GETs', () => {
  it("on a cluster, go on a connection of their own each (the store's requests share one), whatever their status", async () => {
    const asked: string[] = [];
    let connections = 0;
    const srv = createServer((req, res) => {
      asked.push(`${req.url} auth=${req.headers.authorization}`);
      req.resume();
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('process_start_time_seconds 1\n');
      } else if (req.url === '/metrics/slis') {
        res.writeHead(403, { 'content-type': 'text/plain' });
        res.end('forbidden');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ items: [], metadata: {} }));
      }
    });
    srv.on('connection', () => connections++);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const cluster = openCluster(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'c',
            cluster: {
              server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
              'insecure-skip-tls-verify': true,
            },
          },
        ],
        users: [{ name: 'u', user: { token: 'the-token' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    try {
      for (let i = 0; i < 3; i++)
        expect(await cluster.getRaw('/metrics')).toEqual({
          status: 200,
          body: 'process_start_time_seconds 1\n',
        });
      expect(connections, 'behind a load balancer, each may reach another API server').toBe(3);
      expect(await cluster.getRaw('/metrics/slis')).toEqual({ status: 403, body: 'forbidden' });
      for (let i = 0; i < 3; i++) await cluster.secrets.list({ limit: 1 });
      expect(connections, "the store's requests share one keep-alive connection").toBe(5);
      expect(asked[0]).toBe('/metrics auth=Bearer the-token');
    } finally {
      cluster.close();
      await new Promise((r) => srv.close(r));
    }
  });

  it("send a kubeconfig user's name and password, as the store does", async () => {
    const auth: Array<string | undefined> = [];
    const srv = createServer((req, res) => {
      auth.push(req.headers.authorization);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ metadata: { namespace: 'app', name: 'db', resourceVersion: '1' } }));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'c', server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, skipTLSVerify: true },
      ],
      users: [{ name: 'u', username: 'admin', password: 'pw' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const http = new KubeHttp(kc);
    const store = httpSecretStore(kc);
    try {
      await http.getRaw('/metrics', { newConnection: true });
      await store.get('app', 'db');
      const basic = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
      expect(auth).toEqual([basic, basic]);
    } finally {
      store.close();
      http.close();
      await new Promise((r) => srv.close(r));
    }
  });
});

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { KEY_VERSION_ANNOTATION } from '../../shared/reencrypt/annotations';
import { httpSecretStore } from '../../shared/reencrypt/http-store';
import { keyVersionCensus } from '../../shared/reencrypt/secrets-api';
import { sweep } from '../../shared/reencrypt/sweep';
import { memoryStore } from '../helpers/memory-store';

/**
 * The sweep's control flow against an in-memory store, for what a real API server cannot be made to do on
 * cue. (Its behaviour against the real one, faults included, is in test/integration/reencrypt-*.suite.ts.)
 */
const status = (code: number, reason: string, extra: Record<string, unknown> = {}) =>
  new ApiException(
    code,
    `HTTP-Code: ${code}`,
    JSON.stringify({ kind: 'Status', code, reason, ...extra }),
    {},
  );

describe('the sweep', () => {
  it('on a fatal error starts none of the queued Secrets, then throws', async () => {
    const { store, patched, hooks } = memoryStore(50);
    hooks.beforePatch = (name) => {
      if (name === 's-002') throw status(401, 'Unauthorized');
    };
    await expect(sweep({ store, targetKeyVersionId: 'v2', pageSize: 50, concurrency: 2 })).rejects.toThrow(
      /Unauthorized/,
    );
    const atRejection = patched.length;
    await sleep(50);
    expect(patched.length, 'nothing runs on in the background').toBe(atRejection);
    expect(atRejection).toBeLessThanOrEqual(3);
  });

  it('after a 410 with no token to go on, relists from the start and visits each Secret once', async () => {
    const { store, patched, hooks } = memoryStore(100);
    let expired = false;
    hooks.beforeList = (token) => {
      if (token === '60' && !expired) {
        expired = true;
        throw status(410, 'Expired');
      }
    };
    const report = await sweep({ store, targetKeyVersionId: 'v2', pageSize: 20, concurrency: 4 });
    expect(expired).toBe(true);
    expect(report).toMatchObject({
      complete: true,
      total: 100,
      rewritten: 100,
      alreadyCurrent: 0,
      relists: 1,
    });
    expect(new Set(patched).size).toBe(100);
    expect(patched).toHaveLength(100);
  });
});

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
          annotations: { [KEY_VERSION_ANNOTATION]: 'v1' },
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
        provenByVersion: new Map(),
      });
      // The server URL's path is kept (a proxy's /k8s/clusters/<id>); the kubeconfig's token is sent.
      expect(api.asked[0]).toBe(
        'GET /prefix/api/v1/secrets?limit=10 accept=application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1 auth=Bearer the-token',
      );
    } finally {
      store.close();
      await api.close();
    }
  });
});

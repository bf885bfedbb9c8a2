import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../sandbox/controlplane/fault-proxy';
import { normalizeError } from '../../shared/errors';
import { thrown as failure } from '../helpers/failures';
import { coreApi, sandboxInfo } from '../helpers/sandbox';

const NS = 'faults';

describe('the fault-injecting proxy', () => {
  let proxy: FaultProxy;
  let viaProxy: ReturnType<typeof coreApi>;

  beforeAll(async () => {
    const info = sandboxInfo();
    const admin = coreApi(info.kubeconfig);
    await admin.createNamespace({ body: { metadata: { name: NS } } });
    for (let i = 0; i < 5; i++) {
      await admin.createNamespacedSecret({
        namespace: NS,
        body: { metadata: { name: `f-${i}` }, stringData: { k: `v${i}` } },
      });
    }
    proxy = await FaultProxy.start(info.apiServer, info.caFile);
    const dir = mkdtempSync(join(tmpdir(), 'proxy-'));
    viaProxy = coreApi(proxy.kubeconfigFrom(info.restrictedKubeconfig, join(dir, 'kubeconfig')));
  });
  afterEach(() => {
    proxy.clear().resetStats();
  });
  afterAll(async () => {
    await proxy.stop();
  });

  it('forwards untouched requests and counts them by kind', async () => {
    const list = await viaProxy.listNamespacedSecret({ namespace: NS });
    expect(list.items).toHaveLength(5);
    await viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-0' });
    expect(proxy.stats.requests).toEqual({ 'list secrets': 1, 'get secrets': 1 });
    expect(proxy.stats.faults).toEqual({});
  });

  it('answers 429 with Retry-After, which the client sees and the taxonomy turns into a wait', async () => {
    proxy.inject({
      match: { verb: 'list', resource: 'secrets' },
      fault: { type: 'status', code: 429, retryAfterSeconds: 3 },
      times: 1,
    });
    const err = await failure(viaProxy.listNamespacedSecret({ namespace: NS }));
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(429);
    expect(normalizeError(err)).toMatchObject({
      kind: 'retryable',
      code: 'TooManyRequests',
      retryAfterMs: 3000,
    });
    // times: 1 — the next call goes through
    expect((await viaProxy.listNamespacedSecret({ namespace: NS })).items).toHaveLength(5);
    expect(proxy.stats.faults).toEqual({ '429 list': 1 });
  });

  it.each([500, 503])('answers %i', async (code) => {
    proxy.inject({ match: { verb: 'get' }, fault: { type: 'status', code } });
    const err = await failure(viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-1' }));
    expect((err as ApiException<unknown>).code).toBe(code);
    expect(normalizeError(err).kind).toBe('retryable');
    expect(proxy.stats.faults).toEqual({ [`${code} get`]: 1 });
  });

  it('answers 409 Conflict to a patch', async () => {
    proxy.inject({ match: { verb: 'patch', name: 'f-2' }, fault: { type: 'status', code: 409 }, times: 1 });
    const patch = () =>
      viaProxy.patchNamespacedSecret(
        { namespace: NS, name: 'f-2', body: { metadata: { annotations: { a: 'b' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    const err = await failure(patch());
    expect(normalizeError(err)).toMatchObject({ code: 'Conflict', statusCode: 409 });
    expect((await patch()).metadata?.annotations?.a).toBe('b');
  });

  it('resets the connection', async () => {
    proxy.inject({ match: { verb: 'get', name: 'f-3' }, fault: { type: 'reset' }, times: 1 });
    const err = await failure(viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-3' }));
    expect(normalizeError(err)).toMatchObject({ kind: 'retryable', code: 'ECONNRESET' });
    expect(proxy.stats.faults).toEqual({ 'reset get': 1 });
  });

  it('adds latency and still forwards', async () => {
    proxy.inject({ match: { verb: 'get' }, fault: { type: 'latency', ms: 300 }, times: 1 });
    const started = performance.now();
    const secret = await viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-4' });
    expect(secret.metadata?.name).toBe('f-4');
    expect(performance.now() - started).toBeGreaterThanOrEqual(295);
    expect(proxy.stats.faults).toEqual({ 'latency get': 1 });
  });

  it('answers 410 Expired to a list continue, offering a token that resumes the list', async () => {
    proxy.inject({ match: { verb: 'list', continue: true }, fault: { type: 'expired' }, times: 1 });
    const first = await viaProxy.listNamespacedSecret({ namespace: NS, limit: 2 });
    const token = first.metadata?._continue;
    expect(token).toBeTruthy();
    const err = await failure(viaProxy.listNamespacedSecret({ namespace: NS, limit: 2, _continue: token }));
    expect((err as ApiException<string>).code).toBe(410);
    const status = JSON.parse((err as ApiException<string>).body);
    expect(status.reason).toBe('Expired');
    const offered = status.metadata.continue;
    const names = first.items.map((s) => s.metadata?.name);
    let next: string | undefined = offered;
    while (next) {
      const page = await viaProxy.listNamespacedSecret({ namespace: NS, limit: 2, _continue: next });
      names.push(...page.items.map((s) => s.metadata?.name));
      next = page.metadata?._continue;
    }
    expect(names).toEqual(['f-0', 'f-1', 'f-2', 'f-3', 'f-4']);
    expect(proxy.stats.faults).toEqual({ '410 list': 1 });
  });

  it('applies a fault only after the first N matching requests', async () => {
    proxy.inject({ match: { verb: 'get' }, fault: { type: 'status', code: 503 }, after: 2, times: 1 });
    await viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-0' });
    await viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-0' });
    await expect(viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-0' })).rejects.toBeInstanceOf(
      ApiException,
    );
    await viaProxy.readNamespacedSecret({ namespace: NS, name: 'f-0' });
    expect(proxy.stats).toEqual({
      requests: { 'get secrets': 4 },
      faults: { '503 get': 1 },
      answered: { 'get secrets 200': 3 },
    });
  });
});

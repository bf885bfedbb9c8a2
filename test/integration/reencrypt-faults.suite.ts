import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy, type FaultRule } from '../../sandbox/controlplane/fault-proxy';
import { loadKubeConfig } from '../../shared/cluster/kube';
import { httpSecretStore } from '../../shared/cluster/secret-store';
import { keyVersionCensus, type SecretStore, type SweepOptions, sweep } from '../../shared/reencrypt';
import { coreApi, sandboxInfo } from '../helpers/sandbox';
import { seedSecrets, snapshot } from '../helpers/secrets';

/** The sweep against the real API server through the fault proxy, with the least-privileged identity. */
const NAMESPACES = ['rx-a', 'rx-b', 'rx-c'];
const COUNT = 90;
const FAST = { maxAttempts: 8, baseDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 1_500 };

describe('the sweep under faults', () => {
  let proxy: FaultProxy;
  let store: SecretStore;
  let created: Map<string, string>;
  let version = 0;
  const admin = () => coreApi(sandboxInfo().kubeconfig);

  beforeAll(async () => {
    created = await seedSecrets(admin(), { namespaces: NAMESPACES, count: COUNT, immutable: [4, 50] });
    const info = sandboxInfo();
    proxy = await FaultProxy.start(info.apiServer, info.caFile);
    const kubeconfig = proxy.kubeconfigFrom(
      info.restrictedKubeconfig,
      join(mkdtempSync(join(tmpdir(), 'rx-')), 'kubeconfig'),
    );
    store = httpSecretStore(loadKubeConfig({ path: kubeconfig }));
  });
  afterEach(() => {
    proxy.clear().resetStats();
  });
  afterAll(async () => {
    await proxy.stop();
  });

  async function run(faults: FaultRule[], extra: Partial<SweepOptions> = {}) {
    const target = `v-${++version}`;
    proxy.clear().resetStats();
    for (const f of faults) proxy.inject(f);
    const report = await sweep({
      store,
      targetKeyVersionId: target,
      selection: { namespaces: NAMESPACES },
      pageSize: 20,
      concurrency: 8,
      retryPolicy: FAST,
      ...extra,
    });
    const after = await snapshot(admin(), NAMESPACES);
    return { target, report, after };
  }

  function expectAllDone(
    target: string,
    after: Map<string, { version?: string; digest: string }>,
    except: string[] = [],
  ) {
    expect(after.size).toBe(COUNT);
    for (const [key, s] of after) {
      expect(s.digest, `${key}: data unchanged`).toBe(created.get(key));
      if (!except.includes(key)) expect(s.version, `${key} rewritten for ${target}`).toBe(target);
    }
  }

  it('rewrites everything when nothing goes wrong, and a rerun writes nothing', async () => {
    const { target, report, after } = await run([]);
    expect(report).toMatchObject({
      complete: true,
      total: COUNT,
      rewritten: COUNT,
      alreadyCurrent: 0,
      failed: 0,
      gone: 0,
    });
    expectAllDone(target, after);
    expect(proxy.stats.requests['patch secrets']).toBe(COUNT);
    proxy.resetStats();
    const again = await sweep({
      store,
      targetKeyVersionId: target,
      selection: { namespaces: NAMESPACES },
      pageSize: 20,
    });
    expect(again).toMatchObject({ total: COUNT, rewritten: 0, alreadyCurrent: COUNT });
    expect(proxy.stats.requests['patch secrets']).toBeUndefined();
  });

  it('429 with Retry-After: waits, lowers its concurrency, and finishes', async () => {
    const { target, report, after } = await run([
      {
        match: { verb: 'patch' },
        fault: { type: 'status', code: 429, retryAfterSeconds: 1 },
        after: 10,
        times: 6,
      },
    ]);
    expect(report).toMatchObject({ complete: true, rewritten: COUNT, failed: 0 });
    expect(report.throttled).toBe(6);
    expect(report.durationMs, 'it waited out the 1 s Retry-After').toBeGreaterThanOrEqual(990);
    expect(report.concurrency.final).toBeLessThan(8);
    expect(proxy.stats.faults['429 patch']).toBe(6);
    expectAllDone(target, after);
  });

  it.each([500, 503])('%i: retries with backoff and finishes', async (code) => {
    const { target, report, after } = await run([
      { match: { verb: 'patch' }, fault: { type: 'status', code }, times: 15 },
    ]);
    expect(report).toMatchObject({ complete: true, rewritten: COUNT, failed: 0, retries: 15 });
    expectAllDone(target, after);
  });

  it('connection resets and latency: retries and finishes', async () => {
    const { target, report, after } = await run([
      { match: { verb: 'patch' }, fault: { type: 'reset' }, times: 5 },
      { match: { verb: 'patch' }, fault: { type: 'latency', ms: 150 }, times: 10 },
      { match: { verb: 'list' }, fault: { type: 'reset' }, times: 1 },
    ]);
    expect(report).toMatchObject({ complete: true, rewritten: COUNT, failed: 0 });
    expect(proxy.stats.faults).toMatchObject({ 'reset patch': 5, 'latency patch': 10, 'reset list': 1 });
    expectAllDone(target, after);
  });

  it('409: refetches and retries', async () => {
    const { target, report, after } = await run([
      { match: { verb: 'patch', name: 's-00010' }, fault: { type: 'status', code: 409 }, times: 2 },
    ]);
    expect(report).toMatchObject({ complete: true, rewritten: COUNT, failed: 0 });
    expect(proxy.stats.requests['get secrets']).toBe(2);
    expectAllDone(target, after);
  });

  it('404: counts the Secret as gone', async () => {
    const { target, report, after } = await run([
      { match: { verb: 'patch', name: 's-00020' }, fault: { type: 'status', code: 404, reason: 'NotFound' } },
    ]);
    expect(report).toMatchObject({ complete: true, rewritten: COUNT - 1, gone: 1, failed: 0 });
    expectAllDone(target, after, ['rx-c/s-00020']);
  });

  it('403, 422 and an admission denial: skips each with its reason and goes on', async () => {
    const { target, report, after } = await run([
      {
        match: { verb: 'patch', name: 's-00001' },
        fault: { type: 'status', code: 403, reason: 'Forbidden' },
      },
      {
        match: { verb: 'patch', name: 's-00002' },
        fault: { type: 'status', code: 422, reason: 'Invalid', message: 'Secret "s-00002" is invalid' },
      },
      {
        match: { verb: 'patch', name: 's-00003' },
        fault: {
          type: 'status',
          code: 400,
          reason: 'BadRequest',
          message: 'admission webhook "freeze.example.com" denied the request: change freeze',
        },
      },
    ]);
    expect(report).toMatchObject({ complete: true, rewritten: COUNT - 3, failed: 3 });
    expect(report.failures.map((f) => [`${f.namespace}/${f.name}`, f.code])).toEqual(
      expect.arrayContaining([
        ['rx-b/s-00001', 'Forbidden'],
        ['rx-c/s-00002', 'Invalid'],
        ['rx-a/s-00003', 'BadRequest'],
      ]),
    );
    expect(report.failures.find((f) => f.name === 's-00003')?.reason).toContain(
      'denied the request: change freeze',
    );
    expectAllDone(target, after, ['rx-b/s-00001', 'rx-c/s-00002', 'rx-a/s-00003']);
  });

  it('410 on a continue token: resumes with the inconsistent token, or relists, and misses nothing', async () => {
    const withToken = await run([
      { match: { verb: 'list', continue: true }, fault: { type: 'expired' }, times: 2 },
    ]);
    expect(withToken.report).toMatchObject({ complete: true, total: COUNT, rewritten: COUNT, relists: 2 });
    expectAllDone(withToken.target, withToken.after);

    const relist = await run([
      {
        match: { verb: 'list', continue: true },
        fault: { type: 'expired', offerContinue: false },
        after: 1,
        times: 1,
      },
    ]);
    expect(relist.report).toMatchObject({
      complete: true,
      total: COUNT,
      rewritten: COUNT,
      alreadyCurrent: 0,
      relists: 1,
    });
    expect(proxy.stats.requests['patch secrets']).toBe(COUNT);
    expectAllDone(relist.target, relist.after);
  });

  it('the census retries a 503 and a 429 and follows a 410 both ways, counting each Secret once', async () => {
    const byVersion = new Map<string | undefined, number>();
    for (const s of (await snapshot(admin(), NAMESPACES)).values())
      byVersion.set(s.version, (byVersion.get(s.version) ?? 0) + 1);
    proxy
      .inject({ match: { verb: 'list', continue: false }, fault: { type: 'status', code: 503 }, times: 1 })
      .inject({
        match: { verb: 'list', continue: false },
        fault: { type: 'status', code: 429, retryAfterSeconds: 1 },
        after: 2,
        times: 1,
      })
      .inject({ match: { verb: 'list', continue: true }, fault: { type: 'expired' }, times: 1 })
      .inject({
        match: { verb: 'list', continue: true },
        fault: { type: 'expired', offerContinue: false },
        after: 2,
        times: 1,
      });
    // Ten a page: three pages a namespace, so both 410s land on a continue token (the second one relists a
    // namespace whose first page was counted already).
    const census = await keyVersionCensus(store, { pageSize: 10, selection: { namespaces: NAMESPACES } });
    expect(proxy.stats.faults).toEqual({ '503 list': 1, '429 list': 1, '410 list': 2 });
    expect(census.total).toBe(COUNT);
    expect(census.byVersion).toEqual(byVersion);
  });

  it('everything at once', async () => {
    const { target, report, after } = await run([
      {
        match: { verb: 'patch' },
        fault: { type: 'status', code: 429, retryAfterSeconds: 1 },
        after: 5,
        times: 3,
      },
      { match: { verb: 'patch' }, fault: { type: 'status', code: 503 }, after: 20, times: 5 },
      { match: { verb: 'patch' }, fault: { type: 'reset' }, after: 40, times: 3 },
      { match: { verb: 'patch', name: 's-00077' }, fault: { type: 'status', code: 409 }, times: 1 },
      { match: { verb: 'list', continue: true }, fault: { type: 'expired' }, after: 1, times: 1 },
      { match: { verb: 'patch' }, fault: { type: 'latency', ms: 50 }, times: 20 },
    ]);
    expect(report).toMatchObject({ complete: true, total: COUNT, rewritten: COUNT, failed: 0, relists: 1 });
    expect(report.throttled).toBe(3);
    expectAllDone(target, after);
  });

  it('finishes at once on a selection without Secrets (the API answers items: null)', async () => {
    const report = await sweep({
      store,
      targetKeyVersionId: 'v-empty',
      selection: { namespaces: ['rx-empty-namespace'] },
    });
    expect(report).toMatchObject({ complete: true, total: 0, rewritten: 0, pages: 1 });
  });

  it('stops at its deadline or on request, and resumes exactly from the checkpoint', async () => {
    const target = `v-${++version}`;
    const abort = new AbortController();
    let patches = 0;
    const count = () => {
      if (++patches === 33) abort.abort();
    };
    // Both ways to write (the annotate sweep writes its marks with writeMetadata).
    const counting: SecretStore = {
      ...store,
      patchMetadata: async (ns, name, patch) => {
        count();
        return store.patchMetadata(ns, name, patch);
      },
      writeMetadata: async (ns, name, patch) => {
        count();
        return store.writeMetadata?.(ns, name, patch);
      },
    };
    const first = await sweep({
      store: counting,
      targetKeyVersionId: target,
      selection: { namespaces: NAMESPACES },
      pageSize: 20,
      concurrency: 4,
      signal: abort.signal,
    });
    expect(first.complete).toBe(false);
    expect(first.checkpoint).toBeDefined();
    expect(first.rewritten).toBeGreaterThanOrEqual(33);
    expect(first.rewritten).toBeLessThan(COUNT);

    const second = await sweep({
      store: counting,
      targetKeyVersionId: target,
      checkpoint: first.checkpoint,
      selection: { namespaces: NAMESPACES },
      pageSize: 20,
      deadline: Date.now() - 1,
    });
    // A deadline already past still moves the job forward, by exactly one Secret: no livelock.
    expect(second).toMatchObject({ complete: false, total: first.total + 1, pages: 1 });
    expect(second.rewritten).toBe(first.rewritten + 1);

    const third = await sweep({
      store: counting,
      targetKeyVersionId: target,
      checkpoint: second.checkpoint,
      selection: { namespaces: NAMESPACES },
      pageSize: 20,
    });
    expect(third).toMatchObject({ complete: true, total: COUNT, rewritten: COUNT, alreadyCurrent: 0 });
    expect(patches, 'no Secret was written twice').toBe(COUNT);
    expectAllDone(target, await snapshot(admin(), NAMESPACES));
    await expect(
      sweep({ store, targetKeyVersionId: 'other', checkpoint: third.checkpoint ?? second.checkpoint }),
    ).rejects.toThrow(/checkpoint is for key version/);
  });
});

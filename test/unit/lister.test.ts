import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { KEY_VERSION_ANNOTATION } from '../../shared/reencrypt/annotations';
import { keyVersionCensus, type ListOptions } from '../../shared/reencrypt/secrets-api';
import { sweep } from '../../shared/reencrypt/sweep';
import { memoryStore } from '../helpers/memory-store';

/**
 * The one paged lister, through the census: the listing that had no retry and no 410 handling before it
 * shared the sweep's.
 */
const status = (code: number, reason: string, extra: Record<string, unknown> = {}, headers = {}) =>
  new ApiException(
    code,
    `HTTP-Code: ${code}`,
    JSON.stringify({ kind: 'Status', code, reason, ...extra }),
    headers,
  );

/** 120 Secrets, every third marked for v1: the census a clean listing gives. */
function marked() {
  const m = memoryStore(120);
  m.secrets.forEach((s, i) => {
    if (i % 3 === 0) s.annotations = { [KEY_VERSION_ANNOTATION]: 'v1' };
  });
  return m;
}
const CLEAN = {
  total: 120,
  byVersion: new Map([
    ['v1', 40],
    [undefined, 80],
  ]),
};

describe('the census', () => {
  it('retries a 503 and a 429 as the decision table says, counting each Secret once', async () => {
    const { store, hooks } = marked();
    const faults = [
      status(503, 'ServiceUnavailable'),
      status(429, 'TooManyRequests', {}, { 'retry-after': '0' }),
    ];
    const asked: Array<string | undefined> = [];
    hooks.beforeList = (token) => {
      asked.push(token);
      if (token === '40' && faults.length) throw faults.shift();
    };
    const census = await keyVersionCensus(store, { pageSize: 20 });
    expect(faults).toHaveLength(0);
    expect(asked.filter((t) => t === '40')).toHaveLength(3);
    expect(census).toMatchObject(CLEAN);
  });

  it.each([
    ['with the inconsistent continue token the 410 offers', '40'],
    ['from the start, when the 410 offers none', undefined],
  ])('after an expired continue token goes on %s, and counts each Secret once', async (_how, offered) => {
    const { store, hooks } = marked();
    let expired = 0;
    hooks.beforeList = (token) => {
      if (token === '80' && expired++ === 0)
        throw status(410, 'Expired', offered ? { metadata: { continue: offered } } : {});
    };
    const census = await keyVersionCensus(store, { pageSize: 20 });
    expect(expired).toBeGreaterThan(0);
    expect(census).toMatchObject(CLEAN);
  });

  it('stops with a clear error on a denial, past its deadline, and when asked to', async () => {
    const { store, hooks } = marked();
    hooks.beforeList = () => {
      throw status(403, 'Forbidden', { message: 'secrets is forbidden: cannot list resource "secrets"' });
    };
    await expect(keyVersionCensus(store)).rejects.toThrow(
      /listing Secrets for the census failed: .*forbidden/i,
    );
    hooks.beforeList = (token) => {
      if (token === '20') throw status(429, 'TooManyRequests', {}, { 'retry-after': '30' });
    };
    const started = Date.now();
    await expect(
      keyVersionCensus(store, { pageSize: 20, deadline: Date.now() + 1_000 }),
    ).rejects.toMatchObject({
      kind: 'retryable',
      message: expect.stringMatching(/listing Secrets for the census failed: .*\(no time left to retry\)/),
    });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    await expect(keyVersionCensus(store, { pageSize: 20, signal: abort.signal })).rejects.toThrow(
      /listing Secrets for the census was interrupted/,
    );
    expect(Date.now() - started, 'no 30 s Retry-After was waited out').toBeLessThan(5_000);
  });

  it('counts only Secrets created before the job', async () => {
    const { store, secrets } = marked();
    secrets.forEach((s, i) => {
      s.createdAt = new Date(Date.UTC(2026, 0, 1, 0, i));
    });
    const before = new Date(Date.UTC(2026, 0, 1, 0, 60));
    expect((await keyVersionCensus(store, { pageSize: 20, createdBefore: before })).total).toBe(60);
  });

  it('honours a selection as the sweep does: the same scopes and selectors asked for', async () => {
    const { store } = memoryStore(5);
    const asked = (into: string[]) => ({
      ...store,
      list: (o: ListOptions) => {
        into.push(`${o.namespace ?? '*'} ${o.labelSelector ?? ''} ${o.fieldSelector ?? ''}`);
        return store.list(o);
      },
    });
    for (const selection of [
      { namespaces: ['b', 'a', 'b', 'x'], excludeNamespaces: ['x'], labelSelector: 'app=web' },
      { excludeNamespaces: ['kube-system', 'x'] },
      {},
    ]) {
      const bySweep: string[] = [];
      const byCensus: string[] = [];
      await sweep({ store: asked(bySweep), targetKeyVersionId: 'v2', selection, dryRun: true });
      await keyVersionCensus(asked(byCensus), { selection });
      expect(byCensus).toEqual(bySweep);
    }
  });
});

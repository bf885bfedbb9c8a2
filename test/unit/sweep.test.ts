import { setTimeout as sleep } from 'node:timers/promises';
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { estimateSweep } from '../../shared/reencrypt/estimate';
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

  it("queues the next page behind the last Secrets of this one (no drain at page boundaries), and saves a page's checkpoint once its last write finished", async () => {
    const { store, patched } = memoryStore(10);
    const events: string[] = [];
    const saved: Array<Record<string, number>> = [];
    const slow: typeof store = {
      ...store,
      async patchMetadata(ns, name, patch) {
        events.push(`start ${name}`);
        // The last Secret of the first page is slow: the second page must not wait for it.
        if (name === 's-004') await sleep(60);
        const got = await store.patchMetadata(ns, name, patch);
        events.push(`end ${name}`);
        return got;
      },
    };
    const report = await sweep({
      store: slow,
      targetKeyVersionId: 'v2',
      pageSize: 5,
      concurrency: 3,
      onCheckpoint: (c) => {
        events.push(`checkpoint ${c.continueToken}`);
        saved.push(c.counters);
      },
    });
    // The first page's counters only, though the second page's Secrets were under way (a resumed sweep
    // visits that page again, and must not count them twice).
    expect(saved[0]).toEqual({ total: 5, rewritten: 5, alreadyCurrent: 0, gone: 0, failed: 0 });
    expect(report).toMatchObject({ complete: true, total: 10, rewritten: 10 });
    expect(new Set(patched).size).toBe(10);
    expect(events.indexOf('end s-005')).toBeLessThan(events.indexOf('end s-004'));
    // The first page's checkpoint (resume at the second page) only after its last write, s-004, finished.
    expect(events.indexOf('checkpoint 5')).toBeGreaterThan(events.indexOf('end s-004'));
    // First in, first out: every Secret started in key order.
    const starts = events.filter((e) => e.startsWith('start ')).map((e) => e.slice(6));
    expect(starts).toEqual([...starts].sort());
  });

  it('a fatal error on one page starts nothing more on the next, and is thrown once both pages are quiet', async () => {
    const { store, patched, hooks } = memoryStore(20);
    let inFlight = 0;
    const counted: typeof store = {
      ...store,
      async patchMetadata(ns, name, patch) {
        inFlight++;
        try {
          if (name === 's-003') await sleep(30);
          return await store.patchMetadata(ns, name, patch);
        } finally {
          inFlight--;
        }
      },
    };
    hooks.beforePatch = (name) => {
      if (name === 's-003') throw status(401, 'Unauthorized');
    };
    await expect(
      sweep({ store: counted, targetKeyVersionId: 'v2', pageSize: 4, concurrency: 3 }),
    ).rejects.toThrow(/Unauthorized/);
    expect(inFlight, 'nothing in flight when it throws').toBe(0);
    const atRejection = patched.length;
    await sleep(50);
    expect(patched.length, 'nothing runs on in the background').toBe(atRejection);
    expect(
      patched.every((n) => n < 's-008'),
      'nothing of the third page',
    ).toBe(true);
  });

  it('a checkpoint that cannot be saved ends the sweep with nothing left writing in the background', async () => {
    const { store, patched } = memoryStore(20);
    const slow: typeof store = {
      ...store,
      async patchMetadata(ns, name, patch) {
        // Each write takes a while, the first page's last one longest: the second page is under way when
        // the first page's checkpoint fails.
        await sleep(name === 's-004' ? 40 : 10);
        return store.patchMetadata(ns, name, patch);
      },
    };
    await expect(
      sweep({
        store: slow,
        targetKeyVersionId: 'v2',
        pageSize: 5,
        concurrency: 2,
        onCheckpoint: () => {
          throw new Error('the state store is down');
        },
      }),
    ).rejects.toThrow(/state store is down/);
    const atRejection = patched.length;
    await sleep(80);
    expect(patched.length, 'nothing runs on in the background').toBe(atRejection);
    expect(atRejection).toBeLessThan(20);
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

describe("the dry run's estimate", () => {
  it('follows an expired continue token, with the token the 410 gives or from the start, and counts each Secret once', async () => {
    for (const token of ['60', undefined]) {
      const { store, hooks } = memoryStore(120);
      let expired = 0;
      hooks.beforeList = (asked) => {
        if (asked === '100' && expired === 0) {
          expired++;
          throw status(410, 'Expired', token ? { metadata: { continue: token } } : {});
        }
      };
      const estimate = await estimateSweep(store, { targetKeyVersionId: 'v2', readSizes: true });
      expect(expired).toBe(1);
      // From token 60 the Secrets 60–99 are listed again, and from the start all of them: the lister's floor
      // leaves out what was counted already.
      expect(estimate.secrets).toBe(120);
      expect(estimate.bytes).toBe(120 * 100);
    }
  });

  it('retries what the retry table retries (a 429, a 503), and stops with a clear error on a denial', async () => {
    const { store, hooks } = memoryStore(120);
    const faults = [status(429, 'TooManyRequests'), status(503, 'ServiceUnavailable')];
    hooks.beforeList = (asked) => {
      if (asked === '50' && faults.length) throw faults.shift();
    };
    expect((await estimateSweep(store, { targetKeyVersionId: 'v2', pageSize: 50 })).secrets).toBe(120);
    expect(faults).toHaveLength(0);
    hooks.beforeList = () => {
      throw status(403, 'Forbidden', { message: 'secrets is forbidden: cannot list resource "secrets"' });
    };
    await expect(estimateSweep(store, { targetKeyVersionId: 'v2', pageSize: 50 })).rejects.toThrow(
      /listing Secrets for the estimate failed: .*forbidden/i,
    );
  });

  it('waits for no retry past its deadline, and stops when asked to, even while it waits', async () => {
    const { store, hooks } = memoryStore(120);
    const throttled = new ApiException(
      429,
      'HTTP-Code: 429',
      JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests' }),
      { 'retry-after': '30' },
    );
    hooks.beforeList = (asked) => {
      if (asked === '50') throw throttled;
    };
    const started = Date.now();
    await expect(
      estimateSweep(store, { targetKeyVersionId: 'v2', pageSize: 50, deadline: Date.now() + 1_000 }),
    ).rejects.toThrow(/listing Secrets for the estimate failed: .*\(no time left to retry\)/);
    expect(Date.now() - started, 'a Retry-After of 30 s past the deadline is not waited for').toBeLessThan(
      5_000,
    );
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    await expect(
      estimateSweep(store, { targetKeyVersionId: 'v2', pageSize: 50, signal: abort.signal }),
    ).rejects.toThrow(/the estimate was interrupted/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

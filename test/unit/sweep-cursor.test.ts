import { describe, expect, it } from 'vitest';
import { KEY_VERSION_ANNOTATION } from '../../shared/reencrypt/annotations';
import {
  type Cursor,
  isDone,
  pageDone,
  relisted,
  startCursor,
  stoppedIn,
  toCheckpoint,
} from '../../shared/reencrypt/cursor';
import type { SecretRef } from '../../shared/reencrypt/secrets-api';
import { sweep } from '../../shared/reencrypt/sweep';
import { Tally } from '../../shared/reencrypt/tally';
import { memoryStore } from '../helpers/memory-store';

const ref = (name: string, namespace = 'ns'): SecretRef => ({ namespace, name, resourceVersion: '1' });
const base = { targetKeyVersionId: 'v2', strategy: 'annotate' as const, counters: new Tally().snapshot() };

describe('the sweep cursor', () => {
  it('starts at the beginning, or exactly where a checkpoint says', () => {
    expect(startCursor()).toEqual({ namespaceIndex: 0, recheck: false });
    const c: Cursor = { namespaceIndex: 2, continueToken: 't', resumeAfter: 'ns/b', recheck: true };
    expect(startCursor(toCheckpoint(c, base, { whileRunning: true }))).toEqual({ ...c, recheckNext: true });
    const settled: Cursor = { ...c, recheck: false };
    expect(startCursor(toCheckpoint(settled, base))).toEqual(settled);
    // Saved after the sweep ended, a recheck still owed to a dead sweep's writes is kept.
    expect(startCursor(toCheckpoint(c, base))).toEqual({ ...c, recheckNext: true });
  });

  it('resumed from a checkpoint saved while running, the page after it is read again too (pages overlap by one), then no more', () => {
    const c: Cursor = { namespaceIndex: 0, continueToken: 't', recheck: true };
    const resumed = startCursor(toCheckpoint(c, base, { whileRunning: true }));
    const second = pageDone(resumed, { items: [ref('a')], continueToken: 't2' });
    expect(second).toMatchObject({ continueToken: 't2', recheck: true });
    expect(second.recheckNext).toBeUndefined();
    expect(pageDone(second, { items: [ref('b')], continueToken: 't3' })).toMatchObject({ recheck: false });
    // A new scope starts with a new list, which shows every earlier write.
    expect(pageDone(resumed, { items: [ref('a')] })).toEqual({ namespaceIndex: 1, recheck: false });
    // Stopped inside the page, the recheck it owes is still owed, and so is the next page's.
    expect(stoppedIn(resumed, 'ns/a')).toMatchObject({
      recheck: true,
      recheckNext: true,
      resumeAfter: 'ns/a',
    });
  });

  it('after a page: the floor rises to its last Secret, the token moves on; at the end, the next scope', () => {
    const c = pageDone(startCursor(), { items: [ref('a'), ref('b')], continueToken: 't1' });
    expect(c).toEqual({ namespaceIndex: 0, continueToken: 't1', resumeAfter: 'ns/b', recheck: false });
    expect(isDone(c, ref('a'))).toBe(true);
    expect(isDone(c, ref('b'))).toBe(true);
    expect(isDone(c, ref('c'))).toBe(false);
    expect(pageDone(c, { items: [ref('c')] })).toEqual({ namespaceIndex: 1, recheck: false });
  });

  it('after a relist from the start, the floor never falls: pages below it are skipped, not done again', () => {
    const deep: Cursor = { namespaceIndex: 0, continueToken: 't9', resumeAfter: 'ns/m', recheck: false };
    const fromStart = relisted(deep, undefined);
    expect(fromStart).toEqual({ namespaceIndex: 0, resumeAfter: 'ns/m', recheck: false });
    expect(relisted(deep, 'inconsistent')).toMatchObject({
      continueToken: 'inconsistent',
      resumeAfter: 'ns/m',
    });
    const after = pageDone(fromStart, { items: [ref('a'), ref('c')], continueToken: 't1' });
    expect(after.resumeAfter).toBe('ns/m');
  });

  it('a stop resumes with the same page after the last Secret started', () => {
    const c: Cursor = { namespaceIndex: 0, continueToken: 't3', resumeAfter: 'ns/f', recheck: true };
    expect(stoppedIn(c, 'ns/h')).toEqual({
      namespaceIndex: 0,
      continueToken: 't3',
      resumeAfter: 'ns/h',
      recheck: true,
    });
    expect(stoppedIn(c, undefined)).toEqual(c);
  });
});

describe('the tally', () => {
  it('counts each Secret once in one outcome, and lists only the first 1,000 failures', () => {
    const t = new Tally({ total: 5, rewritten: 5, alreadyCurrent: 0, gone: 0, failed: 0 });
    for (let i = 0; i < 1003; i++) {
      t.visited();
      t.failed(ref(`f${i}`), 'Forbidden', 'denied');
    }
    t.visited();
    t.gone();
    expect(t.snapshot()).toEqual({ total: 1009, rewritten: 5, alreadyCurrent: 0, gone: 1, failed: 1003 });
    expect(t.failures).toHaveLength(1000);
    expect(t.failuresNotListed).toBe(3);
    const snap = t.snapshot();
    t.visited();
    expect(snap.total, 'a snapshot is a copy').toBe(1009);
  });

  it('against the in-memory store: stopped anywhere and resumed, every Secret is written exactly once', async () => {
    for (const stopAfter of [1, 7, 20, 33]) {
      const { store, patched, secrets } = memoryStore(97);
      secrets[10]!.annotations = { [KEY_VERSION_ANNOTATION]: 'v2' };
      let checkpoint: Awaited<ReturnType<typeof sweep>>['checkpoint'];
      let report: Awaited<ReturnType<typeof sweep>> | undefined;
      for (let call = 0; call < 100 && report?.complete !== true; call++) {
        const abort = new AbortController();
        let started = 0;
        report = await sweep({
          store: {
            ...store,
            patchMetadata: (ns, name, patch) => {
              if (++started >= stopAfter) abort.abort();
              return store.patchMetadata(ns, name, patch);
            },
          },
          targetKeyVersionId: 'v2',
          pageSize: 10,
          concurrency: 3,
          signal: abort.signal,
          ...(checkpoint ? { checkpoint } : {}),
        });
        checkpoint = report.checkpoint;
      }
      expect(report?.complete, `stop after ${stopAfter}`).toBe(true);
      expect(patched.length, `stop after ${stopAfter}`).toBe(96);
      expect(new Set(patched).size).toBe(96);
      expect(report).toMatchObject({ total: 97, rewritten: 96, alreadyCurrent: 1, gone: 0, failed: 0 });
    }
  });
});

import { describe, expect, it } from 'vitest';
import {
  emptyRecord,
  fullCheckDue,
  onlyKeys,
  vouchesDone,
  withOutcomes,
  withoutClusters,
} from '../../shared/jobs/done-record';

/**
 * rotation-watch's account-level record: a cluster is skipped only when the record names the key's current
 * primary version and the cluster was read as done with it. Everything else is read again.
 */
describe('the done record', () => {
  const v1 = 'v-0001';
  const v2 = 'v-0002';
  const ids = ['c-a', 'c-b', 'c-c'];

  it('vouches only for clusters read as current with the same primary version', () => {
    const record = withOutcomes(emptyRecord(), 'key-1', v1, ids, [
      { clusterId: 'c-a', outcome: 'current', settled: true },
      { clusterId: 'c-b', outcome: 'started' },
      { clusterId: 'c-c', outcome: 'waiting-for-new-seed' },
    ]);
    expect(record.keys['key-1']).toEqual({ primaryKeyVersion: v1, done: ['c-a'] });
    expect(vouchesDone(record, 'key-1', v1, 'c-a')).toBe(true);
    expect(vouchesDone(record, 'key-1', v1, 'c-b'), 'a job under way is read again').toBe(false);
    expect(vouchesDone(record, 'key-1', v2, 'c-a'), 'a rotation makes every cluster due').toBe(false);
    expect(vouchesDone(record, 'key-2', v1, 'c-a'), 'another key says nothing').toBe(false);
  });

  it('never vouches for a completion left unproven: it is read again each tick', () => {
    const record = withOutcomes(emptyRecord(), 'key-1', v1, ids, [{ clusterId: 'c-a', outcome: 'current' }]);
    expect(vouchesDone(record, 'key-1', v1, 'c-a')).toBe(false);
  });

  it('keeps what it knew for the version, and forgets it on a new version', () => {
    let record = withOutcomes(emptyRecord(), 'key-1', v1, ids, [
      { clusterId: 'c-a', outcome: 'current', settled: true },
    ]);
    record = withOutcomes(record, 'key-1', v1, ids, [
      { clusterId: 'c-b', outcome: 'current', settled: true },
    ]);
    expect(record.keys['key-1']?.done).toEqual(['c-a', 'c-b']);
    record = withOutcomes(record, 'key-1', v2, ids, [{ clusterId: 'c-c', outcome: 'started' }]);
    expect(record.keys['key-1']).toEqual({ primaryKeyVersion: v2, done: [] });
  });

  it('drops a cluster found not done any more, or no longer using the key', () => {
    let record = withOutcomes(emptyRecord(), 'key-1', v1, ids, [
      { clusterId: 'c-a', outcome: 'current', settled: true },
      { clusterId: 'c-b', outcome: 'current', settled: true },
    ]);
    // A full check finds c-a's job restarted (its completion was unproven and the API servers now disagree).
    record = withOutcomes(record, 'key-1', v1, ['c-a'], [{ clusterId: 'c-a', outcome: 'restarted' }]);
    expect(record.keys['key-1']?.done).toEqual([]);
  });

  it('forgets keys no longer watched', () => {
    const record = withOutcomes(emptyRecord(), 'key-1', v1, ids, [
      { clusterId: 'c-a', outcome: 'current', settled: true },
    ]);
    expect(onlyKeys(record, ['key-2']).keys).toEqual({});
    expect(onlyKeys(record, ['key-1']).keys['key-1']?.done).toEqual(['c-a']);
  });

  it('asks for a full check when none was made, or the last is older than the interval', () => {
    const now = Date.parse('2026-12-02T00:00:00Z');
    const day = 86_400_000;
    expect(fullCheckDue(emptyRecord(), now, day)).toBe(true);
    const checked = (at: number) => ({ ...emptyRecord(), fullCheckAt: new Date(at).toISOString() });
    expect(fullCheckDue(checked(now - day + 1), now, day)).toBe(false);
    expect(fullCheckDue(checked(now - day), now, day)).toBe(true);
    expect(fullCheckDue(checked(now + day), now, day), 'a time in the future postpones nothing').toBe(true);
  });

  it('drops clusters from every key when encryption went off on them', () => {
    const record = {
      version: 1 as const,
      keys: {
        'key-1': { primaryKeyVersion: 'v1', done: ['c-a', 'c-b'] },
        'key-2': { primaryKeyVersion: 'v7', done: ['c-b', 'c-c'] },
      },
    };
    expect(withoutClusters(record, ['c-b']).keys).toEqual({
      'key-1': { primaryKeyVersion: 'v1', done: ['c-a'] },
      'key-2': { primaryKeyVersion: 'v7', done: ['c-c'] },
    });
  });
});

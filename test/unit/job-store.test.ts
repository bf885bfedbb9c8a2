import { describe, expect, it } from 'vitest';
import { SentinelError } from '../../shared/errors';
import type { ClusterState, StateAdapter } from '../../shared/jobs/store';
import { clusterStore, jobStore } from '../../shared/jobs/store';
import { createLogger } from '../../shared/log';

/** The job store's transitions against an in-memory state store that can lose a race to another writer. */
function memoryState(initial: ClusterState = {}) {
  let stored = structuredClone(initial);
  let version = 0;
  let loadedAt = -1;
  const conflicts = { next: 0 };
  const writes: ClusterState[] = [];
  const store: StateAdapter = {
    async load() {
      loadedAt = version;
      return structuredClone(stored);
    },
    async save(s) {
      if (conflicts.next > 0) {
        conflicts.next--;
        version++; // another writer got there first
        throw new SentinelError('permanent', 'Conflict', { code: 'Conflict', statusCode: 409 });
      }
      if (loadedAt !== version)
        throw new SentinelError('permanent', 'stale', { code: 'Conflict', statusCode: 409 });
      version++;
      stored = structuredClone(s);
      writes.push(stored);
    },
  };
  return { store, conflicts, writes, get: () => stored };
}

const lines: string[] = [];
const log = createLogger({ level: 'debug', sink: (l) => lines.push(l) });
const ref = { jobId: 'rj-c1-0000000000000001', keyId: 'key-1', keyVersionId: 'v2', attempt: 1 };
const checkpoint = {
  targetKeyVersionId: 'v2',
  strategy: 'annotate' as const,
  namespaceIndex: 0,
  counters: { total: 10, rewritten: 9, alreadyCurrent: 1, gone: 0, failed: 0 },
};

describe('the job store', () => {
  it('records progress over what is stored now, keeping the completed version, and retries a conflict', async () => {
    const m = memoryState({ completedKeyVersion: 'v1', completedAt: '2026-11-01T00:00:00.000Z' });
    const store = jobStore(m.store, ref, { log, now: () => Date.parse('2026-12-01T00:00:00Z') });
    m.conflicts.next = 2;
    await store.progress('sweeping', 3, checkpoint);
    expect(m.get()).toEqual({
      completedKeyVersion: 'v1',
      completedAt: '2026-11-01T00:00:00.000Z',
      job: { ...ref, phase: 'sweeping', invocation: 3, updatedAt: '2026-12-01T00:00:00.000Z', checkpoint },
    });
  });

  it('never throws from a progress save that keeps failing: it logs, and the sweep goes on', async () => {
    const m = memoryState();
    m.conflicts.next = 10;
    lines.length = 0;
    await expect(
      jobStore(m.store, ref, { log }).progress('sweeping', 1, checkpoint),
    ).resolves.toBeUndefined();
    expect(m.writes).toEqual([]);
    expect(lines.some((l) => l.includes('could not save progress'))).toBe(true);
  });

  it('completes with the version and the report; a completion that keeps conflicting is thrown', async () => {
    const m = memoryState({ job: { ...ref, phase: 'sweeping', invocation: 2, updatedAt: 'x', checkpoint } });
    await jobStore(m.store, ref, { log, now: () => 0 }).complete(2, { rewritten: 9 }, 'proven');
    expect(m.get()).toMatchObject({
      completedKeyVersion: 'v2',
      completedProof: 'proven',
      job: { phase: 'completed', invocation: 2, report: { rewritten: 9 } },
    });
    expect(m.get().job?.checkpoint).toBeUndefined();
    m.conflicts.next = 10;
    await expect(jobStore(m.store, ref, { log }).complete(3, {}, 'unproven')).rejects.toMatchObject({
      statusCode: 409,
    });
  });

  it('parks a job that cannot take effect yet, keeping the last completion and dropping the checkpoint', async () => {
    const m = memoryState({
      completedKeyVersion: 'v1',
      completedProof: 'proven',
      job: { ...ref, phase: 'waiting-for-adoption', invocation: 1, updatedAt: 'x', checkpoint },
    });
    await jobStore(m.store, ref, { log, now: () => 0 }).awaitNewSeed(2, { reason: 'stale seed' });
    expect(m.get()).toMatchObject({
      completedKeyVersion: 'v1',
      completedProof: 'proven',
      job: { phase: 'waiting-for-new-seed', invocation: 2, report: { reason: 'stale seed' } },
    });
    expect(m.get().job?.checkpoint).toBeUndefined();
  });

  it('fails without the checkpoint, and revokes a completion claimed for this version only when asked', async () => {
    const claimed = {
      completedKeyVersion: 'v2',
      completedAt: 'then',
      job: { ...ref, phase: 'sweeping' as const, invocation: 1, updatedAt: 'x', checkpoint },
    };
    const kept = memoryState(claimed);
    await jobStore(kept.store, ref, { log }).fail(1, 'superseded by v3');
    expect(kept.get()).toMatchObject({
      completedKeyVersion: 'v2',
      job: { phase: 'failed', report: { reason: 'superseded by v3' } },
    });
    expect(kept.get().job?.checkpoint).toBeUndefined();
    const revoked = memoryState(claimed);
    await jobStore(revoked.store, ref, { log }).fail(1, 'census', { revokeCompletion: true });
    expect(revoked.get().completedKeyVersion).toBeUndefined();
    const older = memoryState({ ...claimed, completedKeyVersion: 'v1' });
    await jobStore(older.store, ref, { log }).fail(1, 'census', { revokeCompletion: true });
    expect(older.get().completedKeyVersion, "another version's completion stands").toBe('v1');
  });

  it('encryption off drops the completion and says since when (once); on again moves the marks boundary', async () => {
    const m = memoryState({
      completedKeyVersion: 'v1',
      completedAt: '2026-11-01T00:00:00.000Z',
      completedProof: 'proven',
    });
    const store = clusterStore(m.store, { log });
    await store.recordEncryptionOff(Date.parse('2026-12-01T00:00:00Z'));
    expect(m.get()).toEqual({ encryptionOffSince: '2026-12-01T00:00:00.000Z' });
    await store.recordEncryptionOff(Date.parse('2026-12-02T00:00:00Z'));
    expect(m.writes, 'a second tick that sees it off writes nothing').toHaveLength(1);
    await store.recordEncryptionOn(Date.parse('2026-12-03T00:00:00Z'));
    expect(m.get()).toEqual({ marksSince: '2026-12-03T00:00:00.000Z' });
    await store.recordEncryptionOn(Date.parse('2026-12-02T00:00:00Z'));
    expect(m.writes, 'an earlier "on" does not move the boundary back').toHaveLength(2);
  });

  it('a status is derived: a job under way that saved nothing for the stale period reads as stale', async () => {
    const updatedAt = '2026-12-01T00:00:00.000Z';
    const m = memoryState({ job: { ...ref, phase: 'sweeping', invocation: 2, updatedAt } });
    const at = (iso: string) =>
      clusterStore(m.store, { log, now: () => Date.parse(iso), staleAfterMs: 3_600_000 });
    expect(await at('2026-12-01T00:30:00Z').status(ref.jobId, 'c1')).toMatchObject({
      phase: 'sweeping',
      stale: false,
    });
    expect(await at('2026-12-01T01:00:00Z').status(ref.jobId, 'c1')).toMatchObject({
      phase: 'sweeping',
      stale: true,
      lastError: expect.stringMatching(/no progress since/),
    });
  });

  it('completing or failing a job keeps the encryption records', async () => {
    const m = memoryState({ marksSince: '2026-12-03T00:00:00.000Z' });
    await jobStore(m.store, ref, { log, now: () => 0 }).complete(
      1,
      { rewritten: 3, marksSince: '2026-12-03T00:00:00.000Z' },
      'proven',
    );
    expect(m.get()).toMatchObject({ marksSince: '2026-12-03T00:00:00.000Z', completedKeyVersion: 'v2' });
    await jobStore(m.store, ref, { log }).fail(2, 'census', { revokeCompletion: true });
    expect(m.get()).toMatchObject({ marksSince: '2026-12-03T00:00:00.000Z', job: { phase: 'failed' } });
    expect(m.get().completedKeyVersion).toBeUndefined();
  });

  it('no completion stands when encryption went off, or on again, while the job ran', async () => {
    const off = memoryState({ encryptionOffSince: '2026-12-03T00:00:00.000Z' });
    await jobStore(off.store, ref, { log }).complete(1, { rewritten: 3 }, 'proven');
    expect(off.get()).toMatchObject({
      encryptionOffSince: '2026-12-03T00:00:00.000Z',
      job: { phase: 'failed' },
    });
    expect(off.get().completedKeyVersion).toBeUndefined();
    const moved = memoryState({ marksSince: '2026-12-04T00:00:00.000Z' });
    await jobStore(moved.store, ref, { log }).complete(
      1,
      { marksSince: '2026-12-03T00:00:00.000Z' },
      'proven',
    );
    expect(moved.get().completedKeyVersion).toBeUndefined();
    // On again never moves the boundary before the off it ends.
    const back = memoryState({ encryptionOffSince: '2026-12-05T00:00:00.000Z' });
    await clusterStore(back.store, { log }).recordEncryptionOn(Date.parse('2026-12-01T00:00:00Z'));
    expect(back.get()).toEqual({ marksSince: '2026-12-05T00:00:00.000Z' });
  });

  it('an attempt presumed dead writes nothing once a newer attempt of its job was claimed', async () => {
    const newer = {
      ...ref,
      phase: 'sweeping' as const,
      attempt: 2,
      invocation: 1,
      updatedAt: '2026-12-01T00:00:00.000Z',
    };
    const m = memoryState({ job: newer });
    const old = jobStore(m.store, { ...ref, attempt: 1 }, { log });
    await old.progress('sweeping', 4, checkpoint);
    await old.complete(4, { rewritten: 1 }, 'proven');
    expect(m.get()).toEqual({ job: newer });
    expect(m.writes).toHaveLength(0);
  });
});

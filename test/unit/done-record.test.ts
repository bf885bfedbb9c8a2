import OSS from 'ali-oss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import type { OssBucket } from '../../shared/cloud/oss';
import {
  DONE_RECORD_OBJECT,
  type DoneRecord,
  emptyRecord,
  fullCheckDue,
  MAX_RECORD_BYTES,
  onlyKeys,
  ossDoneRecord,
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

/**
 * The record in OSS (the emulated bucket, through ali-oss): anyone else who can write the bucket must not be
 * able to make rotation-watch skip clusters. Only a record signed with the state secret, within the size bound,
 * vouches for anything; one that fails is reported once.
 */
describe('the done record in the bucket', () => {
  const SECRET = 'state-secret-0123456789abcdef0123456789';
  let cloud: CloudEmulator;
  let bucket: OssBucket;
  let writer: OSS;
  const lines: string[] = [];
  const log = {
    error: (msg: string, f?: Record<string, unknown>) => lines.push(`${msg} ${JSON.stringify(f)}`),
    warn: (msg: string, f?: Record<string, unknown>) => lines.push(`${msg} ${JSON.stringify(f)}`),
    info: () => undefined,
    debug: () => undefined,
  } as unknown as Parameters<typeof ossDoneRecord>[1];
  /** Every cluster done, and a full check just made: what a forger writes to keep jobs from starting. */
  const forged: DoneRecord = {
    version: 1,
    fullCheckAt: new Date().toISOString(),
    keys: { 'key-1': { primaryKeyVersion: 'v-0002', done: ['c-a', 'c-b'] } },
  };

  beforeAll(async () => {
    resolveLoopbackSubdomains();
    cloud = await CloudEmulator.start();
    cloud.createBucket('reports-done');
    bucket = {
      bucket: 'reports-done',
      accountId: cloud.state.accountId,
      region: cloud.state.region,
      credentials: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
      endpoints: { oss: { protocol: 'http', host: cloud.host, url: cloud.url } },
    };
    writer = new OSS({
      accessKeyId: cloud.user.accessKeyId,
      accessKeySecret: cloud.user.accessKeySecret,
      bucket: 'reports-done',
      endpoint: cloud.url,
      secure: false,
    });
  });
  afterAll(async () => {
    await cloud.stop();
  });

  const store = (secrets = [SECRET]) => ossDoneRecord(bucket, log, async () => secrets);

  it('reads back what it signed, and a rotated state secret still reads the record signed before', async () => {
    await store().save(forged);
    expect(await store().load()).toEqual(forged);
    expect(await store(['state-secret-rotated-0123456789abcdef01', SECRET]).load()).toEqual(forged);
  });

  it('neither reads nor writes a bucket of its name that another account owns', async () => {
    cloud.createBucket('reports-squatted', '999999999999');
    const squatted = ossDoneRecord({ ...bucket, bucket: 'reports-squatted' }, log, async () => [SECRET]);
    await expect(squatted.save(forged)).rejects.toThrow(
      /bucket reports-squatted is not owned by account \d+ \(its owner is 999999999999\)/,
    );
    await expect(squatted.load()).rejects.toThrow(/not owned by account/);
    expect(cloud.state.buckets['reports-squatted']).toEqual({});
  });

  it.each([
    ['written without the secret', () => JSON.stringify(forged)],
    [
      'signed with another key',
      () =>
        JSON.stringify({
          record: JSON.stringify(forged),
          mac: 'ab'.repeat(32),
        }),
    ],
    [
      'larger than the bound',
      () => JSON.stringify({ record: 'x'.repeat(MAX_RECORD_BYTES), mac: 'ab'.repeat(32) }),
    ],
  ])('a record %s vouches for nothing, and is reported once', async (_name, body) => {
    lines.length = 0;
    await writer.put(DONE_RECORD_OBJECT, Buffer.from(body()));
    const first = await store().load();
    expect(first).toEqual(emptyRecord());
    expect(vouchesDone(first, 'key-1', 'v-0002', 'c-a')).toBe(false);
    expect(await store().load()).toEqual(emptyRecord());
    expect(lines.filter((l) => l.includes('fails its integrity check'))).toHaveLength(1);
    expect(lines.join('\n')).not.toContain(SECRET);
  });
});

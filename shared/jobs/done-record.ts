import { z } from 'zod';
import { type OssBucket, ossClient } from '../cloud/oss';
import { normalizeError } from '../errors';
import type { Logger } from '../log';

/**
 * rotation-watch's memory at account level: for each watched key, the primary version it last saw and the
 * clusters whose own state said they were done with it ("current"). A tick reads the clusters' states only
 * where this record cannot vouch for them: a key whose primary version moved, a cluster new to the key, a
 * cluster not yet done (a job under way, failed, or waiting for a new seed), and every cluster once per
 * full-check interval. So a tick with no rotation costs the cluster listing, one DescribeKey per key and this
 * one object, whatever the size of the fleet.
 *
 * Why OSS (the suite's bucket, `state/done.json`), not a database or the clusters: rotation-watch already
 * holds no state of its own, the bucket exists for the audit reports, and one small object read per tick is
 * the cheapest record the account has. The record is only ever a shortcut: the truth stays in each cluster's
 * state ConfigMap. A lost update (two ticks saving at once) only makes a later tick read a few clusters again;
 * a cluster is skipped only when the record names the key's *current* primary version and the cluster was
 * read as done with exactly that version, which no interleaving of writes can make false.
 */
export const DONE_RECORD_OBJECT = 'state/done.json';

const recordSchema = z.object({
  version: z.literal(1),
  fullCheckAt: z.iso.datetime().optional(),
  keys: z.record(z.string(), z.object({ primaryKeyVersion: z.string(), done: z.array(z.string()) })),
});
export type DoneRecord = z.output<typeof recordSchema>;

export const emptyRecord = (): DoneRecord => ({ version: 1, keys: {} });

export interface DoneRecordStore {
  /** Where the record lives, for logs (`oss://bucket/state/done.json`, or `none`). */
  readonly where: string;
  load(): Promise<DoneRecord>;
  save(record: DoneRecord): Promise<void>;
}

/** Without a bucket: nothing remembered, every tick reads every cluster (as before the record existed). */
export const noDoneRecord: DoneRecordStore = {
  where: 'none',
  load: async () => emptyRecord(),
  save: async () => undefined,
};

/** The record in the suite's OSS bucket (ali-oss, loaded on first use). An unreadable record is an empty one. */
export function ossDoneRecord(options: OssBucket, log: Logger): DoneRecordStore {
  let client: ReturnType<typeof ossClient> | undefined;
  const oss = () => {
    client ??= ossClient(options);
    return client;
  };
  return {
    where: `oss://${options.bucket}/${DONE_RECORD_OBJECT}`,
    async load() {
      let text: string;
      try {
        const client = oss();
        text = String((await client.get(DONE_RECORD_OBJECT)).content ?? '');
      } catch (err) {
        const e = normalizeError(err, { service: 'oss', operation: 'GetObject' });
        if (e.code === 'NoSuchKey') return emptyRecord();
        throw e;
      }
      try {
        return recordSchema.parse(JSON.parse(text));
      } catch {
        // A record no one can read costs one full tick, never a missed rotation.
        log.warn('the done record is not readable; reading every cluster this tick', {
          object: DONE_RECORD_OBJECT,
        });
        return emptyRecord();
      }
    },
    async save(record) {
      try {
        const client = oss();
        await client.put(DONE_RECORD_OBJECT, Buffer.from(JSON.stringify(record)), {
          mime: 'application/json',
        });
      } catch (err) {
        throw normalizeError(err, { service: 'oss', operation: 'PutObject' });
      }
    },
  };
}

/** Whether the record vouches that `clusterId` is done with the key's current primary version. */
export const vouchesDone = (
  record: DoneRecord,
  keyId: string,
  primaryKeyVersion: string,
  clusterId: string,
): boolean => {
  const entry = record.keys[keyId];
  return entry?.primaryKeyVersion === primaryKeyVersion && entry.done.includes(clusterId);
};

/** Whether this tick reads every cluster whatever the record says. */
export function fullCheckDue(record: DoneRecord, now: number, intervalMs: number): boolean {
  const at = record.fullCheckAt === undefined ? Number.NaN : Date.parse(record.fullCheckAt);
  // A time that does not parse, or lies in the future, can never postpone a full check.
  return Number.isNaN(at) || at > now || now - at >= intervalMs;
}

/**
 * The record after a key's clusters were read: the clusters found settled (outcome `current` with nothing left
 * to prove) join the key's list for that version (a new primary version starts a new list); clusters that are
 * not, or no longer use the key, leave it.
 */
export function withOutcomes(
  record: DoneRecord,
  keyId: string,
  primaryKeyVersion: string,
  keyClusters: readonly string[],
  outcomes: ReadonlyArray<{ clusterId: string; outcome: string; settled?: boolean }>,
): DoneRecord {
  const prior = record.keys[keyId];
  const kept = prior?.primaryKeyVersion === primaryKeyVersion ? prior.done : [];
  const done = new Set(kept.filter((id) => keyClusters.includes(id)));
  for (const o of outcomes) {
    if (o.settled === true) done.add(o.clusterId);
    else done.delete(o.clusterId);
  }
  return { ...record, keys: { ...record.keys, [keyId]: { primaryKeyVersion, done: [...done].sort() } } };
}

/** The record without keys no longer watched. */
export const onlyKeys = (record: DoneRecord, keyIds: readonly string[]): DoneRecord => ({
  ...record,
  keys: Object.fromEntries(Object.entries(record.keys).filter(([k]) => keyIds.includes(k))),
});

/** The record without these clusters, for every key: encryption went off on them, so nothing vouches for them. */
export const withoutClusters = (record: DoneRecord, clusterIds: readonly string[]): DoneRecord => ({
  ...record,
  keys: Object.fromEntries(
    Object.entries(record.keys).map(([keyId, k]) => [
      keyId,
      { ...k, done: k.done.filter((id) => !clusterIds.includes(id)) },
    ]),
  ),
});

import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { checkBucketOwner, type OssBucket, ossClient } from '../cloud/oss';
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
 *
 * Anyone else who can write the bucket (an OSS administrator, a broad OSS policy) could otherwise keep every
 * job from starting until the next full check (a record naming each cluster done, and a full check just now).
 * So the record carries an HMAC-SHA256 under a key derived from the state secret (`SENTINEL_STATE_SECRET`,
 * which only rotation-watch's role reads) and is read only up to `MAX_RECORD_BYTES`: a record that is larger,
 * unsigned or signed with another key vouches for nothing, is reported once, and is replaced by the tick's
 * own record.
 */
export const DONE_RECORD_OBJECT = 'state/done.json';

/** A thousand clusters on a thousand keys take about 100 KiB. */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** What the object holds: the record's JSON text as signed, and its HMAC (hex). */
const signedSchema = z.object({ record: z.string(), mac: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

/** The MAC key, derived so the state secret's value is never itself a MAC key of anything else. */
const macKey = (secret: string): Buffer =>
  Buffer.from(hkdfSync('sha256', secret, 'ack-kms-sentinel', 'done record v1', 32));

const macOf = (secret: string, text: string): string =>
  createHmac('sha256', macKey(secret)).update(text).digest('hex');

/** Records already reported as failing, by content hash: each is reported once per instance. */
const reported = new Set<string>();

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

/**
 * The record in the suite's OSS bucket (ali-oss, loaded on first use). `secrets`: the state secret's accepted
 * values, the current one first (it signs). A missing record is an empty one; one that fails its check too.
 */
export function ossDoneRecord(
  options: OssBucket,
  log: Logger,
  secrets: () => Promise<string[]>,
): DoneRecordStore {
  let client: ReturnType<typeof ossClient> | undefined;
  const oss = () => {
    client ??= ossClient(options);
    return client;
  };
  return {
    where: `oss://${options.bucket}/${DONE_RECORD_OBJECT}`,
    async load() {
      let content: Buffer;
      try {
        // The range keeps a planted giant from being downloaded; one byte more tells it is too large.
        const client = oss();
        await checkBucketOwner(client, options);
        const got = await client.get(DONE_RECORD_OBJECT, {
          headers: { Range: `bytes=0-${MAX_RECORD_BYTES}` },
        });
        content = Buffer.from(got.content ?? '');
      } catch (err) {
        const e = normalizeError(err, { service: 'oss', operation: 'GetObject' });
        if (e.code === 'NoSuchKey') return emptyRecord();
        throw e;
      }
      const verdict = verifyRecord(content, await secrets());
      if ('record' in verdict) return verdict.record;
      const hash = createHash('sha256').update(content).digest('hex');
      if (!reported.has(hash)) {
        reported.add(hash);
        // Not a secret value: what is wrong with the object, so someone looks at who wrote it.
        log.error(
          'the done record fails its integrity check and vouches for nothing; reading every cluster',
          {
            object: DONE_RECORD_OBJECT,
            reason: verdict.problem,
          },
        );
      }
      return emptyRecord();
    },
    async save(record) {
      const text = JSON.stringify(record);
      const [secret] = await secrets();
      if (!secret) throw new Error('the done record has no key to be signed with');
      const body = JSON.stringify({ record: text, mac: macOf(secret, text) });
      if (Buffer.byteLength(body) > MAX_RECORD_BYTES)
        throw new Error(`the done record would exceed ${MAX_RECORD_BYTES} bytes; not saved`);
      try {
        const client = oss();
        await checkBucketOwner(client, options);
        await client.put(DONE_RECORD_OBJECT, Buffer.from(body), { mime: 'application/json' });
      } catch (err) {
        throw normalizeError(err, { service: 'oss', operation: 'PutObject' });
      }
    },
  };
}

/** The record, when the object is within the bound and its HMAC matches one of `secrets`; else what is wrong. */
export function verifyRecord(
  content: Buffer,
  secrets: readonly string[],
): { record: DoneRecord } | { problem: string } {
  if (content.length > MAX_RECORD_BYTES) return { problem: `larger than ${MAX_RECORD_BYTES} bytes` };
  let signed: z.output<typeof signedSchema>;
  try {
    signed = signedSchema.parse(JSON.parse(content.toString('utf8')));
  } catch {
    return { problem: 'not a signed record' };
  }
  const given = Buffer.from(signed.mac, 'hex');
  const matches = secrets.some((secret) =>
    timingSafeEqual(Buffer.from(macOf(secret, signed.record), 'hex'), given),
  );
  if (!matches) return { problem: 'its HMAC does not match the state secret' };
  try {
    return { record: recordSchema.parse(JSON.parse(signed.record)) };
  } catch {
    return { problem: 'signed, but not a record this version reads' };
  }
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

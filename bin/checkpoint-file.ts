import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { type Continuation, continuationSchema } from '../shared/jobs/payload';
import type { JobStore } from '../shared/jobs/store';
import type { Strategy } from '../shared/reencrypt/defaults';
import { UsageError } from './output';

/**
 * The CLI's `--checkpoint FILE`: the job's store for a sweep run from a laptop. The file holds the job's
 * continuation (where the sweep is, its counters, when the job started: the census counts only Secrets that
 * predate it); it is written after every page, removed once the job completes (or fails: the next run starts
 * over), and read back by the next run.
 *
 * A checkpoint tells a run what it need not do, so the file is trusted only as far as it proves itself: it is
 * opened without following a symbolic link (a link planted at its name, or at the temporary name it is written
 * through, cannot send the write to another file or the read to another checkpoint); it names the cluster, key
 * version and strategy it belongs to and is refused for any other; and it carries an HMAC-SHA256 under a key
 * only this user can read (`checkpoint.key` in the user's configuration directory, made on first use), so a
 * checkpoint someone else wrote (a planted one claiming the sweep done) does not verify and is refused.
 */
export interface CheckpointBinding {
  /** The cluster: its id with --cluster-id, else the API server the kubeconfig points at. */
  cluster: string;
  strategy: Strategy;
}

/** The file's fields beside the continuation's. */
interface Seal extends CheckpointBinding {
  mac: string;
}

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

export function checkpointFile(
  file: string,
  fresh: Continuation,
  binding: CheckpointBinding,
): { from: Continuation; store: JobStore } {
  const key = checkpointKey();
  const saved = readContinuation(file, key, fresh.targetKeyVersionId, binding);
  let at = saved ?? fresh;
  const write = (next: Continuation) => {
    at = next;
    // Progress is advice for a resume: a save that fails (a full disk) is said, and the sweep goes on.
    try {
      const seal: Seal = { ...binding, mac: macOf(key, binding, next) };
      writeNew(file, `${JSON.stringify({ ...next, ...seal }, null, 2)}\n`);
    } catch (err) {
      process.stderr.write(`could not save the checkpoint ${file}: ${(err as Error).message}\n`);
    }
  };
  const remove = async () => rmSync(file, { force: true });
  return {
    from: at,
    store: {
      get: async () => ({}),
      progress: async (phase, invocation, checkpoint) => {
        if (
          phase === 'queued' ||
          phase === 'waiting-for-new-seed' ||
          phase === 'completed' ||
          phase === 'failed'
        )
          return;
        write({ ...at, phase, invocation, ...(checkpoint ? { sweep: checkpoint } : {}) });
      },
      complete: remove,
      awaitNewSeed: async () => {},
      fail: remove,
    },
  };
}

const macOf = (key: Buffer, binding: CheckpointBinding, continuation: unknown): string =>
  createHmac('sha256', key)
    .update(JSON.stringify({ cluster: binding.cluster, strategy: binding.strategy, continuation }))
    .digest('hex');

/**
 * Writes `text` to a new file beside `file` (a random name, created exclusively, never through a link) and
 * renames it over `file`: a rename replaces a link at `file` itself, never what it points to.
 */
function writeNew(file: string, text: string): void {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * The file's bytes, or undefined when there is none. A link at its name is refused, and so is a file `refuse`
 * objects to (it says why), checked on the descriptor that is read, not on the name.
 */
function readNoFollow(
  file: string,
  what: string,
  refuse: (stat: Stats) => string | undefined = (stat) =>
    stat.isFile() ? undefined : `${what} is not a regular file`,
): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' || code === 'EMLINK')
      throw new UsageError(`${what} is a symbolic link; give the file itself`);
    throw new UsageError(`${what}: ${(err as Error).message}`);
  }
  try {
    const refused = refuse(fstatSync(fd));
    if (refused) throw new UsageError(refused);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readContinuation(
  file: string,
  key: Buffer,
  keyVersion: string,
  binding: CheckpointBinding,
): Continuation | undefined {
  const what = `--checkpoint ${file}`;
  const text = readNoFollow(file, what)?.toString('utf8');
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what} is not JSON: ${(err as Error).message}`);
  }
  const { mac, cluster, strategy, ...continuation } = (parsed ?? {}) as Partial<Seal>;
  const expected = Buffer.from(
    macOf(key, { cluster: String(cluster), strategy: strategy as Strategy }, continuation),
  );
  const given = Buffer.from(typeof mac === 'string' ? mac : '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw new UsageError(
      `${what} does not verify: it was not written by this user's ack-kms-sentinel (its HMAC does not match ${checkpointKeyFile()}); remove it to start over`,
    );
  if (cluster !== binding.cluster)
    throw new UsageError(
      `${what} belongs to cluster ${cluster}, not ${binding.cluster}; remove it to start over`,
    );
  if (strategy !== binding.strategy)
    throw new UsageError(
      `${what} belongs to --strategy ${strategy}, not ${binding.strategy}; remove it to start over`,
    );
  const result = continuationSchema.safeParse(continuation);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new UsageError(
      `${what}: ${issue?.path.join('.')}: ${issue?.message} (a file from an older version: remove it to start over)`,
    );
  }
  if (result.data.targetKeyVersionId !== keyVersion) {
    throw new UsageError(
      `${what} belongs to key version ${result.data.targetKeyVersionId}, not ${keyVersion}; remove it to start over`,
    );
  }
  return result.data;
}

/** Where the key that seals checkpoint files is kept: the user's configuration directory (XDG). */
export function checkpointKeyFile(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'ack-kms-sentinel', 'checkpoint.key');
}

const KEY_BYTES = 32;

/**
 * This user's checkpoint key, made on first use: 32 random bytes, readable by the user alone. It is published
 * with a link from a complete temporary file, so a run starting at the same time reads the whole key or makes
 * its own attempt fail and read the winner's. A key file another user owns, or that others may read, seals
 * nothing and is refused.
 */
function checkpointKey(): Buffer {
  const file = checkpointKeyFile();
  const what = `the checkpoint key ${file}`;
  const existing = readKey(file, what);
  if (existing) return existing;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, randomBytes(KEY_BYTES));
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  const made = readKey(file, what);
  if (!made) throw new UsageError(`${what} could not be made`);
  return made;
}

function readKey(file: string, what: string): Buffer | undefined {
  const uid = process.getuid?.();
  const key = readNoFollow(file, what, (stat) =>
    !stat.isFile() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o077) !== 0
      ? `${what} must be a file of this user's that no one else can read or write`
      : undefined,
  );
  if (key && key.length !== KEY_BYTES) throw new UsageError(`${what} is not a key of ${KEY_BYTES} bytes`);
  return key;
}

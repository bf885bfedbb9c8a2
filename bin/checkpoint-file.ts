import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { type Continuation, continuationSchema } from '../shared/jobs/payload';
import type { JobStore } from '../shared/jobs/store';
import { UsageError } from './output';

/**
 * The CLI's `--checkpoint FILE`: the job's store for a sweep run from a laptop. The file holds the job's
 * continuation (where the sweep is, its counters, when the job started: the census counts only Secrets that
 * predate it); it is written after every page, removed once the job completes (or fails: the next run starts
 * over), and read back by the next run.
 */
export function checkpointFile(file: string, fresh: Continuation): { from: Continuation; store: JobStore } {
  const saved = readContinuation(file, fresh.targetKeyVersionId);
  let at = saved ?? fresh;
  const write = (next: Continuation) => {
    at = next;
    // Progress is advice for a resume: a save that fails (a full disk) is said, and the sweep goes on.
    try {
      writeFileSync(`${file}.tmp`, `${JSON.stringify(next, null, 2)}\n`);
      renameSync(`${file}.tmp`, file);
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

function readContinuation(file: string, keyVersion: string): Continuation | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--checkpoint ${file} is not JSON: ${(err as Error).message}`);
  }
  const result = continuationSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new UsageError(
      `--checkpoint ${file}: ${issue?.path.join('.')}: ${issue?.message} (a file from an older version: remove it to start over)`,
    );
  }
  if (result.data.targetKeyVersionId !== keyVersion) {
    throw new UsageError(
      `--checkpoint ${file} belongs to key version ${result.data.targetKeyVersionId}, not ${keyVersion}; remove it to start over`,
    );
  }
  return result.data;
}

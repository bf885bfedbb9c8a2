import type { SweepCheckpoint, SweepCounters } from './checkpoint';
import type { Strategy } from './defaults';
import type { SecretRef } from './secrets-api';

/**
 * Where a sweep is, as a value: which namespace scope, the continue token of the page in progress, and the
 * last Secret done. Secrets are listed in key order (namespace/name), so "everything at or before
 * `resumeAfter` is done" is exact: a resumed sweep skips nothing and repeats nothing. The sweep's loop only
 * moves from one cursor to the next through the transitions below, each a pure function.
 */
export interface Cursor {
  /** With named namespaces: the index of the scope in progress (sorted order); 0 for the whole cluster. */
  readonly namespaceIndex: number;
  /** The continue token that lists the page in progress; absent for a scope's first page. */
  readonly continueToken?: string;
  /** `namespace/name` of the last Secret done: a page showing it (or anything before it) again skips it. */
  readonly resumeAfter?: string;
  /**
   * The next page may list Secrets that a sweep which died wrote after its last checkpoint (a continue token
   * lists from the snapshot the sweep began with): read each one again before writing it.
   */
  readonly recheck: boolean;
  /**
   * The page after it too: pages overlap by one (the next page's writes start before this one's last write
   * finished, `sweep.ts`), so a sweep that died after a checkpoint may have written Secrets of both.
   */
  readonly recheckNext?: boolean;
}

export const keyOf = (secret: Pick<SecretRef, 'namespace' | 'name'>): string =>
  `${secret.namespace}/${secret.name}`;

/** Where a sweep begins: at the start, or where a checkpoint says. */
export function startCursor(checkpoint?: SweepCheckpoint): Cursor {
  return {
    namespaceIndex: checkpoint?.namespaceIndex ?? 0,
    ...(checkpoint?.continueToken ? { continueToken: checkpoint.continueToken } : {}),
    ...(checkpoint?.resumeAfter ? { resumeAfter: checkpoint.resumeAfter } : {}),
    recheck: checkpoint?.recheck === true,
    ...(checkpoint?.recheck === true ? { recheckNext: true } : {}),
  };
}

/** Whether a Secret a page shows is already done by this sweep (or the one it resumes). */
export const isDone = (c: Cursor, secret: Pick<SecretRef, 'namespace' | 'name'>): boolean =>
  c.resumeAfter !== undefined && keyOf(secret) <= c.resumeAfter;

/**
 * The continue token expired (410): go on with the server's inconsistent token, or list the scope again from
 * its start; either way `resumeAfter` skips what is done.
 */
export const relisted = (c: Cursor, token: string | undefined): Cursor => {
  const { continueToken: _expired, ...rest } = c;
  return token ? { ...rest, continueToken: token } : rest;
};

/**
 * A page is done: the floor rises to its last Secret (it only rises: after a relist from the start, pages
 * below it are skipped, not done again), and the cursor moves to the next page, or to the next scope.
 */
export function pageDone(c: Cursor, page: { items: SecretRef[]; continueToken?: string }): Cursor {
  // A scope's first page is a new list, which shows every write before it: nothing to read again.
  if (!page.continueToken) return { namespaceIndex: c.namespaceIndex + 1, recheck: false };
  const last = page.items.at(-1);
  const floor =
    last && (c.resumeAfter === undefined || keyOf(last) > c.resumeAfter) ? keyOf(last) : c.resumeAfter;
  return {
    namespaceIndex: c.namespaceIndex,
    continueToken: page.continueToken,
    ...(floor ? { resumeAfter: floor } : {}),
    // The next page is listed from the same snapshot (its continue token): read again if it may hold writes.
    recheck: c.recheckNext === true,
  };
}

/**
 * The sweep stopped (deadline, abort, fatal error) inside the page this cursor lists: resume with the same
 * page after the last Secret started (every one started before it is done: they start in order and finish).
 * A recheck the page owes (a dead sweep's writes) is still owed: the rest of the page and the next are read
 * again first.
 */
export const stoppedIn = (c: Cursor, lastStarted: string | undefined): Cursor => ({
  ...c,
  ...(lastStarted ? { resumeAfter: lastStarted } : {}),
});

/**
 * What is saved to resume from. Saved while the sweep goes on, `recheck` is set: the sweep may write more
 * Secrets of the next two pages (the one saved and the one after it, pages overlap by one) before it dies,
 * and the resumed one must not write them again.
 */
export function toCheckpoint(
  c: Cursor,
  job: {
    targetKeyVersionId: string;
    strategy: Strategy;
    counters: SweepCounters;
    expected?: number | undefined;
  },
  options: { whileRunning?: boolean } = {},
): SweepCheckpoint {
  return {
    targetKeyVersionId: job.targetKeyVersionId,
    strategy: job.strategy,
    namespaceIndex: c.namespaceIndex,
    ...(c.continueToken ? { continueToken: c.continueToken } : {}),
    ...(c.resumeAfter ? { resumeAfter: c.resumeAfter } : {}),
    // A recheck still owed (to the writes of a sweep that died before this one) is kept.
    ...(options.whileRunning || c.recheck || c.recheckNext ? { recheck: true } : {}),
    counters: { ...job.counters },
    ...(job.expected !== undefined ? { expected: job.expected } : {}),
  };
}

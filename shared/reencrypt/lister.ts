import { isApiException } from '../cluster/k8s';
import { normalizeError, SentinelError } from '../errors';
import {
  DEFAULT_RETRY_POLICY,
  type Decision,
  decide,
  type Next,
  type Retried,
  type RetryLimits,
  type RetryPolicy,
  retrying,
} from '../retry';
import { type Cursor, isDone, pageDone, relisted, startCursor } from './cursor';
import type { ListOptions, Page, SecretRef } from './secrets-api';

/**
 * The one paged Secret lister: the sweep, the estimate and the census list Secrets through it, so each
 * listing meets the same faults the same way, as kube-storage-version-migrator's does:
 *
 * - a failed page is retried as the decision table says (`shared/retry.ts`: 429 with its Retry-After, 5xx,
 *   resets), within a deadline (a wait that would end past it is not waited) and until an abort;
 * - an expired continue token (410) is followed: with the inconsistent continue token the server offers, or
 *   by listing the scope again from its start;
 * - each page comes without what the cursor has done already, so after a relist from the start (or a resume
 *   from a checkpoint) nothing is counted twice and nothing is missed: Secrets are listed in key order, and
 *   the cursor's floor (`resumeAfter`) only rises.
 */
export interface Selection {
  namespaces?: string[];
  excludeNamespaces?: string[];
  labelSelector?: string;
}

/** A page as the lister hands it on: without what was done before it, with the cursor it was listed at. */
export interface Listed<T> {
  page: Page<T>;
  /** The cursor the page was listed with: an expired continue token moves it (`relisted`). */
  cursor: Cursor;
}

export interface ListerOptions {
  pageSize: number;
  selection?: Selection;
  /** What the listing is for, in its errors: "listing Secrets for the estimate failed: …". */
  purpose?: string;
  retryPolicy?: RetryPolicy;
  random?: () => number;
  /** Epoch ms: no retry waits past it; the failure is thrown. */
  deadline?: number;
  /** Stops the listing between pages and during a retry's wait. */
  signal?: AbortSignal;
  /** Each retry as decided (the sweep counts it, and lowers its concurrency when throttled). */
  onRetry?: (decision: Extract<Decision, { action: 'retry' }>) => void;
}

/** Expired continue tokens a listing follows before it gives up. */
export const MAX_RELISTS = 20;

/**
 * A 410 on a continue token: the server's Status may carry a continue token for an inconsistent list that
 * resumes after the same key, which is how kube-storage-version-migrator goes on without missing an object.
 */
export function expiredContinueToken(err: unknown): { expired: boolean; token?: string } {
  if (!isApiException(err) || err.code !== 410) return { expired: false };
  try {
    const status = JSON.parse(String(err.body)) as { metadata?: { continue?: string } };
    return { expired: true, ...(status.metadata?.continue ? { token: status.metadata.continue } : {}) };
  } catch {
    return { expired: true };
  }
}

/**
 * What a selection lists: named namespaces one scope each (sorted, the cursor's `namespaceIndex`; listed one
 * by one, which namespace-scoped RBAC allows), or the whole cluster as one scope with the excluded namespaces
 * as a field selector.
 */
export function listScopes(selection: Selection = {}): {
  scopes: Array<string | undefined>;
  filter: { labelSelector?: string; fieldSelector?: string };
} {
  const named = selection.namespaces?.length
    ? [...new Set(selection.namespaces)].filter((n) => !selection.excludeNamespaces?.includes(n)).sort()
    : undefined;
  const fieldSelector =
    !named && selection.excludeNamespaces?.length
      ? selection.excludeNamespaces.map((n) => `metadata.namespace!=${n}`).join(',')
      : undefined;
  return {
    scopes: named ?? [undefined],
    filter: {
      ...(selection.labelSelector ? { labelSelector: selection.labelSelector } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
    },
  };
}

export class SecretLister<T extends SecretRef> {
  /** Sorted named namespaces, or one scope for the whole cluster. */
  readonly scopes: ReadonlyArray<string | undefined>;
  /** Expired continue tokens followed so far. */
  relists = 0;
  private readonly filter: { labelSelector?: string; fieldSelector?: string };
  private readonly call: Retried<Cursor, Page<T>, Listed<T>>;
  private readonly limits: RetryLimits;

  constructor(
    list: (options: ListOptions) => Promise<Page<T>>,
    private readonly options: ListerOptions,
  ) {
    ({ scopes: this.scopes, filter: this.filter } = listScopes(options.selection));
    this.call = {
      attempt: (cursor) => list(this.request(cursor)),
      succeeded: (cursor, page) => ({ page: undone(cursor, page), cursor }),
      failed: (cursor, err, attempt) => this.failed(cursor, err, attempt),
    };
    this.limits = {
      deadline: options.deadline,
      signal: options.signal,
      stopped: (err, why) => this.stopped(err, why),
    };
  }

  /** The page at `cursor`, without what the cursor has done. */
  async page(cursor: Cursor): Promise<Listed<T>> {
    if (this.options.signal?.aborted) throw this.stopped(undefined, 'aborted');
    return retrying(this.call, cursor, this.limits);
  }

  /** Every page of every scope in turn, from the start: for a count, which keeps no cursor of its own. */
  async *pages(): AsyncGenerator<T[]> {
    for (let cursor = startCursor(); cursor.namespaceIndex < this.scopes.length; ) {
      const listed = await this.page(cursor);
      yield listed.page.items;
      cursor = pageDone(listed.cursor, listed.page);
    }
  }

  private get what(): string {
    return this.options.purpose ? `listing Secrets for ${this.options.purpose}` : 'listing Secrets';
  }

  private request(cursor: Cursor): ListOptions {
    const namespace = this.scopes[cursor.namespaceIndex];
    return {
      limit: this.options.pageSize,
      ...(namespace ? { namespace } : {}),
      ...(cursor.continueToken ? { continueToken: cursor.continueToken } : {}),
      ...this.filter,
    };
  }

  private stopped(err: unknown, why: 'deadline' | 'aborted'): SentinelError {
    if (why === 'aborted')
      return new SentinelError('permanent', `${this.what} was interrupted`, { code: 'Interrupted' });
    return new SentinelError(
      'retryable',
      `${this.what} failed: ${normalizeError(err).message} (no time left to retry)`,
      { code: 'ListFailed', cause: err },
    );
  }

  private failed(cursor: Cursor, err: unknown, attempt: number): Next<Cursor, Listed<T>> {
    const expired = cursor.continueToken ? expiredContinueToken(err) : { expired: false };
    if (expired.expired && this.relists < MAX_RELISTS) {
      this.relists++;
      return { retryInMs: 0, arg: relisted(cursor, expired.token) };
    }
    const decision = decide(
      err,
      attempt,
      this.options.retryPolicy ?? DEFAULT_RETRY_POLICY,
      this.options.random,
    );
    if (decision.action === 'retry') {
      this.options.onRetry?.(decision);
      return { retryInMs: decision.delayMs, arg: cursor };
    }
    if (decision.action === 'fatal') throw decision.error;
    // A list answers 404 or 409 only when something is wrong with the request: no Secret is gone or stale.
    throw new SentinelError(
      'permanent',
      `${this.what} failed: ${decision.action === 'skip' ? decision.reason : normalizeError(err).message}`,
      { code: decision.action === 'skip' ? decision.code : 'ListFailed', cause: err },
    );
  }
}

/** The page without the Secrets at or before the cursor's floor (a relist from the start lists them again). */
function undone<T extends SecretRef>(cursor: Cursor, page: Page<T>): Page<T> {
  if (cursor.resumeAfter === undefined) return page;
  return { ...page, items: page.items.filter((s) => !isDone(cursor, s)) };
}

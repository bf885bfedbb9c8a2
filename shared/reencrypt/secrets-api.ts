import type { FlowControl } from '../cluster/kube-http';
import type { ClusterSpace } from '../etcd/space';
import { isProven, KEY_VERSION_ANNOTATION, type Marks, markedSince } from './annotations';
import { DEFAULT_PAGE_SIZE } from './defaults';
import { SecretLister, type Selection } from './lister';

/**
 * The sweep's view of Secrets: metadata only, through the `SecretStore` port below (its Kubernetes adapter is
 * `shared/cluster/secret-store.ts`, which asks the API server for `PartialObjectMetadata`), so Secret data
 * never crosses the wire to us, never sits in our memory, and a page of Helm release Secrets of hundreds of
 * KiB costs a few hundred bytes each.
 */
export interface SecretRef {
  namespace: string;
  name: string;
  resourceVersion: string;
  /**
   * The suite's own annotations only. Others are dropped on arrival:
   * `kubectl.kubernetes.io/last-applied-configuration` of a Secret created by `kubectl apply` holds its whole
   * `data`.
   */
  annotations?: Marks;
  /** `metadata.creationTimestamp`, when the server sent it. */
  createdAt?: Date;
}

/** A page as a store lists it. */
export interface Page<T> {
  items: T[];
  continueToken?: string;
  /** The server's estimate of Secrets after this page (only without label and field selectors). */
  remainingItemCount?: number;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit: number;
  continueToken?: string;
}

/** A Secret as the estimate sees it by default: its type and last write, from the API server's table. */
export interface SecretSummary extends SecretRef {
  type: string;
  /** The last write any manager made (`metadata.managedFields[].time`). */
  lastWrite?: Date;
}

/** A Secret with its size, which only its whole object (its data) shows: the CLI's `--read-secret-sizes`. */
export interface SizedSecret extends SecretSummary {
  /** Bytes of its data (decoded). */
  bytes: number;
}

export interface SecretStore {
  list(options: ListOptions): Promise<Page<SecretRef>>;
  /**
   * The estimate's list: each Secret's type and last write as the API server's table shows them (its rows hold
   * the type and the number of keys, never a value), with its metadata.
   */
  listSummaries?(options: ListOptions): Promise<Page<SecretSummary>>;
  /**
   * The estimate's list with sizes, asked for explicitly (the CLI's `--read-secret-sizes`): whole Secrets
   * from the server, kept only as sizes, types and last-write times (the data is dropped as each page is read,
   * never logged or returned). Never on the webhook's path.
   */
  listSizes?(options: ListOptions): Promise<Page<SizedSecret>>;
  get(namespace: string, name: string): Promise<SecretRef>;
  /** A JSON merge patch of `metadata` only. */
  patchMetadata(
    namespace: string,
    name: string,
    patch: { metadata: Record<string, unknown> },
  ): Promise<SecretRef>;
  /**
   * The same patch, for a caller that needs no answer (the `annotate` sweep): the store may leave the
   * server's answer unread. Without it, the sweep uses `patchMetadata`.
   */
  writeMetadata?(
    namespace: string,
    name: string,
    patch: { metadata: Record<string, unknown> },
  ): Promise<undefined>;
  /** etcd's size and compactions, for the sweep's space guard (`shared/etcd/space.ts`). */
  space?: ClusterSpace;
  /** The API Priority and Fairness classification of the store's last answer. */
  flowControl?(): FlowControl | undefined;
}

export interface Census {
  total: number;
  byVersion: Map<string | undefined, number>;
  /** Marks written under the API servers' proof (`isProven`), per key version. */
  provenByVersion: Map<string, number>;
}

/** Secrets done for `keyVersionId` by the census: marked for it, and under proof when that is required. */
export const doneFor = (census: Census, keyVersionId: string, requireProof: boolean): number =>
  (requireProof ? census.provenByVersion : census.byVersion).get(keyVersionId) ?? 0;

export interface CensusOptions {
  pageSize?: number;
  /** Count only Secrets created before this instant (those a job had to rewrite). */
  createdBefore?: Date;
  /** The sweep's selection: the census counts what the sweep visits. */
  selection?: Selection;
  /** Epoch ms: no retry waits past it (the invocation's deadline). */
  deadline?: number;
  signal?: AbortSignal;
  /** A mark written before this instant counts as none (encryption was turned on again then). */
  marksSince?: Date;
}

/**
 * How many of the Secrets (metadata only, paged) carry each key-version annotation of the suite; `undefined`
 * counts those never rewritten by it. The job's verification, the audit's coverage and the CLI's
 * kubeconfig-only audit read this.
 */
export async function keyVersionCensus(store: SecretStore, options: CensusOptions = {}): Promise<Census> {
  const lister = new SecretLister((o) => store.list(o), {
    pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE,
    purpose: 'the census',
    selection: options.selection,
    deadline: options.deadline,
    signal: options.signal,
  });
  const byVersion = new Map<string | undefined, number>();
  const provenByVersion = new Map<string, number>();
  let total = 0;
  for await (const items of lister.pages())
    for (const s of items) {
      if (options.createdBefore && s.createdAt && s.createdAt >= options.createdBefore) continue;
      total++;
      const v = markedSince(s.annotations, options.marksSince)
        ? s.annotations?.[KEY_VERSION_ANNOTATION]
        : undefined;
      byVersion.set(v, (byVersion.get(v) ?? 0) + 1);
      if (v !== undefined && isProven(s.annotations))
        provenByVersion.set(v, (provenByVersion.get(v) ?? 0) + 1);
    }
  return { total, byVersion, provenByVersion };
}

import { SentinelError } from '../errors';
import { isCurrent } from './annotations';
import { DEFAULT_PAGE_SIZE, type Strategy } from './defaults';
import { SecretLister, type Selection } from './lister';
import type { Page, SecretStore, SecretSummary, SizedSecret } from './secrets-api';

/**
 * What a sweep will cost, before it runs (`reencrypt --dry-run`, the webhook's `dryRun=true`): Secrets to
 * rewrite, pages, the KMS calls to expect, the duration, and the blast radius: every rewrite is a watch event
 * for each controller watching Secrets, so the namespaces with the most Secrets and the kinds of Secret are
 * listed, with a recommendation. From metadata only (the API server's table: type and metadata, never a
 * value), so it cannot know the Secrets' sizes: `cannotKnow` says so, and the duration assumes large Secrets.
 * Sizes only when asked (`readSizes`, the CLI's `--read-secret-sizes`), which reads every Secret's data.
 */
export interface Estimate {
  secrets: number;
  /** Not yet marked for the target version: what `annotate` writes. */
  toRewrite: number;
  /** Whether Secret data was read for the sizes below (only when asked for). */
  sizesRead: boolean;
  bytes?: number;
  bytesToRewrite?: number;
  /** What the estimate does not know, each with why. */
  cannotKnow: string[];
  /** List pages the sweep reads (metadata only). */
  pages: number;
  kmsCalls: { kmsV2: number; kmsV1: number; why: string };
  expectedDurationMs: number;
  /** Where the rate comes from. */
  rate: { perSecond: number; basis: string };
  blastRadius: {
    /** Each rewrite is one watch event for every controller watching Secrets. */
    watchEvents: number;
    topNamespaces: Array<{ namespace: string; secrets: number }>;
    byType: Record<string, number>;
  };
  /** Written since the key's last rotation (managedFields): most likely stored under the new version already. */
  writtenSinceRotation?: number;
  recommendation: { strategy: Strategy; why: string };
}

export interface EstimateOptions {
  targetKeyVersionId: string;
  requireProof?: boolean;
  /** The key's last rotation, to tell which Secrets were written since (and so are current in etcd). */
  rotatedAt?: Date;
  /** Live API servers: each makes one seed (one KMS Encrypt) under the new version. */
  apiServers?: number;
  pageSize?: number;
  /** The sweep's selection, so the estimate counts what the sweep would visit. */
  selection?: Selection;
  /** Epoch ms: no retry waits past it (the invocation's deadline, the CLI's --time-budget). */
  deadline?: number;
  /** Stops the listing (the CLI's Ctrl-C), between pages and during a retry's wait. */
  signal?: AbortSignal;
  /**
   * Read whole Secrets for their sizes (the CLI's `--read-secret-sizes`): every Secret's data crosses the
   * wire to the caller. Never on the webhook's path.
   */
  readSizes?: boolean;
}

/**
 * Secrets per second our sweep reached in BENCHMARKS.md on a 2-core machine, by average Secret size; a
 * managed control plane has more CPU, so the duration is an upper bound.
 */
export function measuredRate(averageBytes: number): { perSecond: number; basis: string } {
  const basis = 'npm run bench on 2 vCPUs (BENCHMARKS.md): 600/s for small Secrets, 120/s at ~100 KiB';
  if (averageBytes <= 4 * 1024) return { perSecond: 600, basis };
  if (averageBytes <= 32 * 1024) return { perSecond: 300, basis };
  return { perSecond: 120, basis };
}

const TYPES: Record<string, string> = {
  'helm.sh/release.v1': 'Helm releases',
  'kubernetes.io/service-account-token': 'service-account tokens',
  'kubernetes.io/tls': 'TLS',
  'kubernetes.io/dockerconfigjson': 'image pull secrets',
  Opaque: 'Opaque',
};

type Counted = Pick<SecretSummary, 'namespace' | 'type' | 'lastWrite'> & { bytes?: number; current: boolean };

/** The rate when sizes are unknown: the one measured for the largest Secrets, so the duration is an upper bound. */
const UNKNOWN_SIZE = Number.POSITIVE_INFINITY;

/**
 * Counts what the sweep would visit, listed as the sweep lists it (`lister.ts`: retries, an expired continue
 * token followed, no Secret counted twice), within the deadline and until the signal.
 */
export async function estimateSweep(store: SecretStore, o: EstimateOptions): Promise<Estimate> {
  const list:
    | ((options: Parameters<SecretStore['list']>[0]) => Promise<Page<SecretSummary | SizedSecret>>)
    | undefined = o.readSizes ? store.listSizes?.bind(store) : store.listSummaries?.bind(store);
  if (!list)
    throw new SentinelError(
      'permanent',
      `this Secret store cannot list ${o.readSizes ? 'sizes' : 'summaries'}`,
      { code: 'Unsupported' },
    );
  const lister = new SecretLister(list, {
    // Whole Secrets are larger than their metadata: small pages, the data dropped page by page.
    pageSize: o.readSizes ? 50 : (o.pageSize ?? DEFAULT_PAGE_SIZE),
    purpose: 'the estimate',
    selection: o.selection,
    deadline: o.deadline,
    signal: o.signal,
  });
  const all: Counted[] = [];
  for await (const items of lister.pages())
    for (const s of items)
      all.push({
        namespace: s.namespace,
        type: s.type,
        ...('bytes' in s ? { bytes: s.bytes } : {}),
        ...(s.lastWrite ? { lastWrite: s.lastWrite } : {}),
        current: isCurrent(s.annotations, o.targetKeyVersionId, o.requireProof === true),
      });
  return summarizeEstimate(all, { ...o, pageSize: o.pageSize ?? DEFAULT_PAGE_SIZE });
}

/** What the estimate cannot know, said with the numbers so nobody reads them as more than they are. */
function cannotKnow(o: EstimateOptions): string[] {
  return [
    ...(o.readSizes
      ? []
      : [
          'Secret sizes: only a whole Secret (its data) shows them, and the estimate reads metadata only; the duration assumes the largest Secrets (an upper bound). The CLI reads them with --read-secret-sizes.',
        ]),
    'Which key version seals each Secret in etcd: the API server does not say; a Secret written since the rotation is counted as likely current, not known to be.',
    'How many controllers watch Secrets: each rewrite is one watch event per watcher, and the API lists no watchers.',
  ];
}

function summarizeEstimate(all: Counted[], o: EstimateOptions & { pageSize: number }): Estimate {
  const todo = all.filter((s) => !s.current);
  const bytes = all.reduce((n, s) => n + (s.bytes ?? 0), 0);
  const bytesToRewrite = todo.reduce((n, s) => n + (s.bytes ?? 0), 0);
  const sizesRead = o.readSizes === true;
  const rate = sizesRead
    ? measuredRate(todo.length ? bytesToRewrite / todo.length : 0)
    : measuredRate(UNKNOWN_SIZE);
  const count = (key: (s: (typeof all)[number]) => string) => {
    const m = new Map<string, number>();
    for (const s of todo) m.set(key(s), (m.get(key(s)) ?? 0) + 1);
    return m;
  };
  const namespaces = [...count((s) => s.namespace)]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([namespace, secrets]) => ({ namespace, secrets }));
  const byType = Object.fromEntries(count((s) => TYPES[s.type] ?? `other (${s.type})`));
  const since = o.rotatedAt
    ? todo.filter((s) => s.lastWrite && s.lastWrite >= (o.rotatedAt as Date)).length
    : undefined;
  const apiServers = o.apiServers ?? 1;
  const stale = since !== undefined && todo.length > 0 && since / todo.length > 0.5;
  return {
    secrets: all.length,
    toRewrite: todo.length,
    sizesRead,
    ...(sizesRead ? { bytes, bytesToRewrite } : {}),
    cannotKnow: cannotKnow(o),
    pages: Math.max(1, Math.ceil(all.length / o.pageSize)),
    kmsCalls: {
      kmsV2: apiServers,
      kmsV1: todo.length,
      why: `KMS v2 seals one seed per API server (${apiServers}) with a KMS Encrypt when it adopts the key version, and derives each write's data key from it locally: the sweep adds no KMS call per Secret (reading a Secret under an older seed costs one cached Decrypt per seed). Under KMS v1 every write would be one Encrypt.`,
    },
    expectedDurationMs: Math.round((todo.length / rate.perSecond) * 1000),
    rate,
    blastRadius: { watchEvents: todo.length, topNamespaces: namespaces, byType },
    ...(since !== undefined ? { writtenSinceRotation: since } : {}),
    recommendation: stale
      ? {
          strategy: 'stale-only',
          why: `${since} of ${todo.length} Secrets were written since the rotation and are most likely stored under the new version already: stale-only lets the API server write only the others (fewer watch events)`,
        }
      : {
          strategy: 'annotate',
          why: 'most Secrets were written before the rotation: annotate rewrites each once and marks it, so a resumed or repeated sweep skips it',
        },
  };
}

import { createHash } from 'node:crypto';
import { RetryableError, SentinelError } from '../errors';

/**
 * What the API servers themselves say about the seed they encrypt Secrets with, read from `/metrics`
 * (docs/kms-v2-proof.md). KMS v2 seals one data-key seed with the plugin's Encrypt and derives every write's
 * key from it; a new seed is made only when the API server starts, or when the plugin's Status returns a new
 * key id (k8s.io/apiserver `pkg/server/options/encryptionconfig/config.go`, `rotateDEKOnKeyIDChange`). So after
 * a KMS rotation a rewrite re-seals a Secret under the new key version only if, on every API server, either
 *
 *   (a) the plugin reported a new key id after the rotation, and the API server sealed a seed for it
 *       (`new-key-id`), or
 *   (b) the process started after the rotation (`restarted`).
 *
 * Otherwise (c) the seed is still the one sealed under the old version (`stale-seed`), and a rewrite changes
 * nothing at the key-version level. A new key id alone is not (a): the API server records it before it asks
 * the plugin to seal a new seed, and when that Encrypt fails it keeps the old seed until a later Status call
 * tries again (`seed-pending`). Without readable metrics nothing is proven (`unproven`).
 */
export interface ApiServerSample {
  /** `apiserver_id_hash`: which API server answered (behind one address there may be several). */
  apiServerIdHash: string;
  /** `process_start_time_seconds`: when this API server, and so its first seed, started. */
  startedAt: Date;
  /** `..._key_id_hash_status_last_timestamp_seconds`: each key id the plugin's Status returned, last seen. */
  statusKeyIds: Array<{ keyIdHash: string; last: Date }>;
  /**
   * `..._kms_operations_latency_seconds_count{method_name=".../Encrypt", grpc_status_code="OK"}`: the seeds the
   * plugin sealed for this API server (KMS v2 calls Encrypt only to seal a new seed); absent when not published.
   */
  seedsSealed?: number;
  /**
   * `..._key_id_hash_last_timestamp_seconds{transformation_type="to_storage"}`: when this API server last wrote
   * with a seed of each key id (the seed's own key id, whatever Status said).
   */
  lastWrites?: Array<{ keyIdHash: string; last: Date }>;
}

export type ApiServerState = 'new-key-id' | 'restarted' | 'stale-seed' | 'seed-pending';
export type Verdict = 'effective' | 'not-effective' | 'unproven';

export interface SealingEvidence {
  verdict: Verdict;
  /** One sentence: why, and for `not-effective` and `unproven` what to do. */
  reason: string;
  apiServers: Array<{
    apiServerIdHash: string;
    startedAt: string;
    currentKeyIdHash?: string;
    state: ApiServerState;
  }>;
  /** The plugin's key id is the CMK id itself (sha256 matches): it never changes with a rotation. */
  constantKeyId?: boolean;
  /**
   * Names what a Secret rewritten now is sealed under (each API server, its start and current key id):
   * stored with the suite's mark, so a mark is trusted only when it was written under proof.
   */
  token?: string;
}

const STATUS = 'apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds';
const TOTAL = 'apiserver_envelope_encryption_key_id_hash_total';
const START = 'process_start_time_seconds';
const KMS_CALLS = 'apiserver_envelope_encryption_kms_operations_latency_seconds_count';
const LAST_USE = 'apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds';
/**
 * How recently before a rotation the old key id was still reported. kube-apiserver's KMS v2 loop polls Status
 * every 60 s, but a tick that finds a health probe's answer younger than 20 s (its positive TTL) skips the call
 * (k8s.io/apiserver `encryptionconfig`: `kmsv2PluginHealthzPositiveInterval`, `kmsPluginHealthzPositiveTTL`):
 * two Status calls can be up to 80 s apart. 10 s more for a late tick on a busy control plane.
 */
const STATUS_INTERVAL_MS = 90_000;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * One API server's answer to `GET /metrics` (Prometheus text format); undefined without envelope metrics.
 * Each KMS provider records its own Status key ids: only the provider that encrypts writes counts (the one
 * with `to_storage` writes, or the only one); with several and no writes yet, none can be told apart.
 */
export function parseApiServerMetrics(text: string): ApiServerSample | undefined {
  let startedAt: Date | undefined;
  let apiServerIdHash: string | undefined;
  const status = new Map<string, ApiServerSample['statusKeyIds']>();
  /** `..._key_id_hash_total{transformation_type="to_storage"}` per provider: which one encrypts writes. */
  const writes = new Map<string, number>();
  /** Encrypt calls that succeeded, per provider: each sealed a seed. */
  const sealed = new Map<string, number>();
  /** The last write with each key id's seed, per provider. */
  const lastWrites = new Map<string, NonNullable<ApiServerSample['lastWrites']>>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const [, name, rawLabels = '', raw] = m;
    if (name !== STATUS && name !== TOTAL && name !== START && name !== KMS_CALLS && name !== LAST_USE)
      continue;
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    if (name === START) {
      startedAt = new Date(value * 1000);
      continue;
    }
    const labels = Object.fromEntries([...rawLabels.matchAll(LABEL)].map((l) => [l[1], l[2]]));
    if (name === KMS_CALLS) {
      // The gRPC method's full name (`/v2.KeyManagementService/Encrypt`); the provider's own label.
      if (labels.method_name?.endsWith('/Encrypt') && labels.grpc_status_code === 'OK')
        sealed.set(labels.provider_name ?? '', (sealed.get(labels.provider_name ?? '') ?? 0) + value);
      continue;
    }
    if (!labels.key_id_hash || !labels.apiserver_id_hash) continue;
    apiServerIdHash = labels.apiserver_id_hash;
    const provider = labels.provider_name ?? '';
    if (name === STATUS) {
      const list = status.get(provider) ?? [];
      list.push({ keyIdHash: labels.key_id_hash, last: new Date(value * 1000) });
      status.set(provider, list);
    } else if (name === LAST_USE) {
      if (labels.transformation_type !== 'to_storage') continue;
      const list = lastWrites.get(provider) ?? [];
      list.push({ keyIdHash: labels.key_id_hash, last: new Date(value * 1000) });
      lastWrites.set(provider, list);
    } else if (labels.transformation_type === 'to_storage') {
      writes.set(provider, (writes.get(provider) ?? 0) + value);
    }
  }
  const provider = writingProvider(status, writes);
  const statusKeyIds = provider === undefined ? [] : (status.get(provider) ?? []);
  if (!apiServerIdHash || !startedAt || statusKeyIds.length === 0) return undefined;
  const seedsSealed = provider === undefined ? undefined : sealed.get(provider);
  const writtenWith = provider === undefined ? undefined : lastWrites.get(provider);
  return {
    apiServerIdHash,
    startedAt,
    statusKeyIds,
    ...(seedsSealed === undefined ? {} : { seedsSealed }),
    ...(writtenWith ? { lastWrites: writtenWith } : {}),
  };
}

/** The KMS provider that encrypts this API server's writes: the only one, or the one with writes. */
function writingProvider(status: Map<string, unknown>, writes: Map<string, number>): string | undefined {
  const providers = [...status.keys()];
  if (providers.length === 1) return providers[0];
  const writing = providers.filter((p) => (writes.get(p) ?? 0) > 0);
  return writing.length === 1 ? writing[0] : undefined;
}

export interface SampleOptions {
  /** Calls at most (default 8). */
  maxSamples?: number;
  /** Stop after this many calls in a row show no API server not seen before (default 3). */
  quietAfter?: number;
  /**
   * The `apiserver_id_hash` of every live API server (from their identity leases): sample until each has
   * answered, up to 4 calls per API server; one that never answers leaves the evidence unproven.
   */
  expected?: string[];
}

/**
 * Samples `/metrics` on new connections until every API server behind the address has likely answered
 * (several calls in a row show none new); the latest answer per API server is kept. Throws what the GET
 * throws; a non-200 answer (403 without `get` on `/metrics`) is thrown with its status.
 */
export async function sampleApiServers(
  getRaw: (path: string) => Promise<{ status: number; body: string }>,
  options: SampleOptions = {},
): Promise<ApiServerSample[]> {
  const seen = new Map<string, ApiServerSample>();
  const expected = options.expected?.length ? new Set(options.expected) : undefined;
  const maxSamples = expected ? Math.max(8, 4 * expected.size) : (options.maxSamples ?? 8);
  const done = (quiet: number) =>
    expected ? [...expected].every((id) => seen.has(id)) : quiet >= (options.quietAfter ?? 3);
  let quiet = 0;
  for (let i = 0; i < maxSamples && !done(quiet); i++) {
    const res = await getRaw('/metrics');
    // Not allowed, or not served: nothing can be proven. Anything else (5xx, 429, 401) is a failure to retry.
    if (res.status === 403 || res.status === 404) throw new MetricsUnreadable(res.status);
    if (res.status !== 200)
      throw new RetryableError(`GET /metrics answered HTTP ${res.status}`, {
        code: 'MetricsUnavailable',
        statusCode: res.status,
        service: 'kubernetes',
      });
    const sample = parseApiServerMetrics(res.body);
    if (!sample) throw new MetricsUnreadable(200, 'the API server reports no KMS v2 envelope metrics');
    quiet = seen.has(sample.apiServerIdHash) ? quiet + 1 : 0;
    seen.set(sample.apiServerIdHash, sample);
  }
  const missing = expected ? [...expected].filter((id) => !seen.has(id)) : [];
  if (missing.length > 0)
    throw new MetricsUnreadable(
      200,
      `${missing.length} of ${expected?.size} API server(s) never answered /metrics in ${maxSamples} tries`,
    );
  return [...seen.values()];
}

/**
 * `/metrics` cannot say anything (not allowed, not served, no KMS v2 metrics, an API server that never
 * answers): permanent for this reading, which callers turn into an "unproven" verdict rather than a failure.
 */
export class MetricsUnreadable extends SentinelError {
  constructor(
    readonly status: number,
    detail = status === 403
      ? "the suite's identity may not get /metrics (deploy/rbac.yaml grants it)"
      : `GET /metrics answered HTTP ${status}`,
  ) {
    super('permanent', detail, { code: 'MetricsUnreadable', statusCode: status, service: 'kubernetes' });
    this.name = 'MetricsUnreadable';
  }
}

/** What kube-apiserver's metrics call an id: `sha256:<hex>` (key ids and API server identities alike). */
export const keyIdHash = (keyId: string): string =>
  `sha256:${createHash('sha256').update(keyId).digest('hex')}`;

/** What each API server did since the rotation, and so whether a rewrite now seals under the new version. */
export function judgeSealing(samples: ApiServerSample[], rotatedAt: Date, cmkId: string): SealingEvidence {
  if (samples.length === 0) return unproven('no API server answered /metrics with KMS v2 envelope metrics');
  const apiServers = samples.map((sample) => {
    const byLast = [...sample.statusKeyIds].sort((a, b) => b.last.getTime() - a.last.getTime());
    const current = byLast[0];
    const changed = byLast
      .slice(1)
      .some(
        (old) =>
          old.keyIdHash !== current?.keyIdHash &&
          old.last.getTime() >= rotatedAt.getTime() - STATUS_INTERVAL_MS,
      );
    // Each key id the plugin reported needs a seed sealed for it (the first one at start): fewer seeds than key
    // ids means the last change's Encrypt failed, and the API server still writes with the seed before it.
    // A successful Encrypt can fail the change all the same (it answered another key id), so a write with
    // another key id's seed after Status last reported the current one says the same, whatever the count.
    const sealedForEach =
      sample.seedsSealed === undefined || sample.seedsSealed >= sample.statusKeyIds.length;
    const wroteWithOld = (sample.lastWrites ?? []).some(
      (w) => current && w.keyIdHash !== current.keyIdHash && w.last > current.last,
    );
    const state: ApiServerState =
      sample.startedAt >= rotatedAt
        ? 'restarted'
        : changed && current && current.last >= rotatedAt
          ? sealedForEach && !wroteWithOld
            ? 'new-key-id'
            : 'seed-pending'
          : 'stale-seed';
    return {
      apiServerIdHash: sample.apiServerIdHash,
      startedAt: sample.startedAt.toISOString(),
      ...(current ? { currentKeyIdHash: current.keyIdHash } : {}),
      state,
    };
  });
  const constantKeyId = apiServers.every((a) => a.currentKeyIdHash === keyIdHash(cmkId));
  const stale = apiServers.filter((a) => a.state === 'stale-seed');
  if (stale.length > 0)
    return {
      verdict: 'not-effective',
      reason: `${stale.length} of ${apiServers.length} API server(s) still encrypt with a seed sealed before the rotation (${constantKeyId ? 'the plugin reports the CMK id as its key id, so a rotation never changes it' : 'the plugin has not reported a new key id'}); a rewrite now changes nothing at the key-version level. The control plane must make a new seed: it does when its API servers restart (an upgrade or a restart of the control plane); the suite sweeps once it sees that.`,
      apiServers,
      constantKeyId,
    };
  // Only seeds still to come (no restart needed): the API servers try again on their own.
  const pending = apiServers.filter((a) => a.state === 'seed-pending');
  if (pending.length > 0)
    return {
      verdict: 'not-effective',
      reason: `${pending.length} of ${apiServers.length} API server(s) reported the new key id but have not sealed a seed for it (the plugin's Encrypt of the new seed failed), so they still encrypt with the seed sealed before the rotation; kube-apiserver tries again on its own (every 10 s after a failed check), and a job waits for it`,
      apiServers,
      constantKeyId,
    };
  const token = createHash('sha256')
    .update(
      JSON.stringify(apiServers.map((a) => [a.apiServerIdHash, a.startedAt, a.currentKeyIdHash]).sort()),
    )
    .digest('hex')
    .slice(0, 12);
  return {
    verdict: 'effective',
    reason: `every API server (${apiServers.length}) ${apiServers.every((a) => a.state === 'restarted') ? 'started after the rotation' : 'made a new seed after the rotation'}: a rewrite now seals under the new key version`,
    apiServers,
    constantKeyId,
    token,
  };
}

/**
 * Not effective only because some API server's new seed is still to be sealed (its plugin's Encrypt failed):
 * kube-apiserver tries again on its own (every 10 s after a failed check), so this is worth waiting out, unlike
 * `stale-seed`, which needs a restart.
 */
export const seedPending = (e: SealingEvidence): boolean =>
  e.verdict === 'not-effective' &&
  e.apiServers.some((a) => a.state === 'seed-pending') &&
  !e.apiServers.some((a) => a.state === 'stale-seed');

export function unproven(why: string): SealingEvidence {
  return {
    verdict: 'unproven',
    reason: `${why}; without the API servers' own evidence a rewrite cannot be proven to re-seal under the new key version`,
    apiServers: [],
  };
}

/**
 * The API servers' evidence for a key's last rotation, as every caller reads it: sampled from `/metrics`
 * and judged; `unproven` when they cannot be read (no RBAC, no KMS v2 metrics). Any other failure (a broken
 * connection) is thrown: a guess would be a claim without proof.
 */
export async function readSealingEvidence(
  getRaw: (path: string) => Promise<{ status: number; body: string }>,
  key: { keyId: string; lastRotationDate?: string },
  /** The live API servers' identities (their leases), when they can be listed. */
  identities?: string[],
): Promise<SealingEvidence> {
  // A key never rotated has one version: every seed is sealed under it. An unreadable date proves nothing.
  const rotatedAt = key.lastRotationDate ? new Date(key.lastRotationDate) : new Date(0);
  if (Number.isNaN(rotatedAt.getTime()))
    return unproven(`the key's LastRotationDate "${key.lastRotationDate}" is not a date`);
  try {
    const expected = identities?.map(keyIdHash);
    return judgeSealing(await sampleApiServers(getRaw, expected ? { expected } : {}), rotatedAt, key.keyId);
  } catch (err) {
    if (err instanceof MetricsUnreadable) return unproven(err.message);
    throw err;
  }
}

import { createHash } from 'node:crypto';
import { normalizeError, RetryableError, SentinelError } from '../errors';

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
  /**
   * `apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{status="success"}`: the
   * last successful automatic reload of the encryption configuration (`--encryption-provider-config-automatic-
   * reload`), which builds new transformers and so a new seed without a restart.
   */
  reloadedAt?: Date;
}

/**
 * `restarted` / `reloaded`: a new process, or a new configuration, after the rotation (its seed was sealed
 * then); `new-key-id`: the plugin reported a new key id after it and a seed was sealed for it; `stale-seed`:
 * none of these; `seed-pending`: a new key id whose seed is not sealed yet; `other-key`: its current key id
 * is not one the suite can tie to the judged key.
 */
export type ApiServerState =
  | 'new-key-id'
  | 'restarted'
  | 'reloaded'
  | 'stale-seed'
  | 'seed-pending'
  | 'other-key';
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
const RELOAD = 'apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds';
/** Under KMS v1 this counter's `transformer_prefix` is `k8s:enc:kms:v1:<name>:`. */
const TRANSFORMATIONS = 'apiserver_storage_transformation_operations_total';
const METRICS = new Set([STATUS, TOTAL, START, KMS_CALLS, LAST_USE, RELOAD, TRANSFORMATIONS]);
/**
 * How far a process start or a reload must lie after the rotation to count as after it: KMS states
 * LastRotationDate to the second (the rotation may be up to 1 s later than it says), and the API server's
 * host clock is not KMS's (NTP keeps them well within a second of each other; 1 s more for that).
 */
export const CLOCK_MARGIN_MS = 2_000;
/**
 * How recently before a rotation the old key id was still reported. kube-apiserver's KMS v2 loop polls Status
 * every 60 s, but a tick that finds a health probe's answer younger than 20 s (its positive TTL) skips the call
 * (k8s.io/apiserver `encryptionconfig`: `kmsv2PluginHealthzPositiveInterval`, `kmsPluginHealthzPositiveTTL`):
 * two Status calls can be up to 80 s apart. 10 s more for a late tick on a busy control plane.
 */
const STATUS_INTERVAL_MS = 90_000;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

/** What one `/metrics` answer holds of the envelope metrics, before it is judged as one API server's. */
interface ParsedMetrics {
  startedAt?: Date;
  reloadedAt?: Date;
  apiServerIdHashes: Set<string>;
  /** Envelope metrics with a key id but no `apiserver_id_hash` label (Kubernetes 1.28 and before). */
  unlabelled: boolean;
  /** A storage transformer of KMS v1 wrote or read. */
  kmsV1: boolean;
  status: Map<string, ApiServerSample['statusKeyIds']>;
  /** `..._key_id_hash_total{transformation_type="to_storage"}` per provider: which one encrypts writes. */
  writes: Map<string, number>;
  /** Encrypt calls that succeeded, per provider: each sealed a seed. */
  sealed: Map<string, number>;
  /** The last write with each key id's seed, per provider. */
  lastWrites: Map<string, NonNullable<ApiServerSample['lastWrites']>>;
}

const push = <T>(map: Map<string, T[]>, key: string, value: T) =>
  map.set(key, [...(map.get(key) ?? []), value]);

/** Reads the lines the judgement needs; a label list is scanned once, linearly (`labelsOf`). */
function readMetrics(text: string): ParsedMetrics {
  const m: ParsedMetrics = {
    apiServerIdHashes: new Set(),
    unlabelled: false,
    kmsV1: false,
    status: new Map(),
    writes: new Map(),
    sealed: new Map(),
    lastWrites: new Map(),
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match || !METRICS.has(match[1] ?? '')) continue;
    const [, name, rawLabels = '', raw] = match;
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    readLine(m, name ?? '', labelsOf(rawLabels), value);
  }
  return m;
}

function readLine(m: ParsedMetrics, name: string, labels: Record<string, string>, value: number): void {
  const at = new Date(value * 1000);
  if (name === START) m.startedAt = at;
  else if (name === TRANSFORMATIONS)
    m.kmsV1 ||= (labels.transformer_prefix ?? '').startsWith('k8s:enc:kms:v1:');
  else if (name === RELOAD) {
    if (labels.status === 'success' && (!m.reloadedAt || at > m.reloadedAt)) m.reloadedAt = at;
    if (labels.apiserver_id_hash) m.apiServerIdHashes.add(labels.apiserver_id_hash);
  } else if (name === KMS_CALLS) {
    // The gRPC method's full name (`/v2.KeyManagementService/Encrypt`); the provider's own label.
    if (labels.method_name?.endsWith('/Encrypt') && labels.grpc_status_code === 'OK')
      m.sealed.set(labels.provider_name ?? '', (m.sealed.get(labels.provider_name ?? '') ?? 0) + value);
  } else if (labels.key_id_hash) {
    if (!labels.apiserver_id_hash) {
      m.unlabelled = true;
      return;
    }
    m.apiServerIdHashes.add(labels.apiserver_id_hash);
    const provider = labels.provider_name ?? '';
    const entry = { keyIdHash: labels.key_id_hash, last: at };
    if (name === STATUS) push(m.status, provider, entry);
    else if (name === LAST_USE && labels.transformation_type === 'to_storage')
      push(m.lastWrites, provider, entry);
    else if (name === TOTAL && labels.transformation_type === 'to_storage')
      m.writes.set(provider, (m.writes.get(provider) ?? 0) + value);
  }
}

/** `a="x",b="y\"z"` as a record, in one pass over the text (a regex with nested repetition is quadratic on hostile input). */
function labelsOf(raw: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < raw.length) {
    const eq = raw.indexOf('="', i);
    if (eq < 0) break;
    const name = raw.slice(i, eq).replace(/^[\s,]+/, '');
    let value = '';
    let j = eq + 2;
    for (; j < raw.length && raw[j] !== '"'; j++) {
      if (raw[j] === '\\' && j + 1 < raw.length) j++;
      value += raw[j];
    }
    labels[name] = value;
    i = j + 1;
  }
  return labels;
}

/**
 * One API server's answer to `GET /metrics` (Prometheus text format); undefined without envelope metrics.
 * Each KMS provider records its own Status key ids: only the provider that encrypts writes counts (the one
 * with `to_storage` writes, or the only one); with several and no writes yet, none can be told apart. An
 * answer that cannot be one API server's own is refused with the reason and what to do (`MetricsUnreadable`).
 */
export function parseApiServerMetrics(text: string): ApiServerSample | undefined {
  const m = readMetrics(text);
  if (m.apiServerIdHashes.size > 1)
    throw new MetricsUnreadable(
      200,
      `one /metrics answer carried ${m.apiServerIdHashes.size} apiserver_id_hash values: not one API server's own metrics (a proxy that merges them?), refused as evidence; let the suite reach the API servers' /metrics directly`,
    );
  if (m.unlabelled && m.apiServerIdHashes.size === 0)
    throw new MetricsUnreadable(
      200,
      'the envelope metrics carry no apiserver_id_hash (Kubernetes 1.28 or older), so the API servers behind the address cannot be told apart; upgrade the cluster to 1.29 or later for proof',
    );
  const provider = writingProvider(m.status, m.writes);
  const statusKeyIds = provider === undefined ? [] : (m.status.get(provider) ?? []);
  const [apiServerIdHash] = [...m.apiServerIdHashes];
  if (!apiServerIdHash || !m.startedAt || statusKeyIds.length === 0) {
    if (m.kmsV1)
      throw new MetricsUnreadable(
        200,
        "the cluster encrypts Secrets with KMS v1: each write is sealed by its own KMS Encrypt call under the key's primary version, so a rewrite re-seals, but no API server metric proves it; migrate the EncryptionConfiguration to KMS v2 for proof (ActionTrail shows the Encrypt calls)",
      );
    return undefined;
  }
  const seedsSealed = provider === undefined ? undefined : m.sealed.get(provider);
  const writtenWith = provider === undefined ? undefined : m.lastWrites.get(provider);
  return {
    apiServerIdHash,
    startedAt: m.startedAt,
    statusKeyIds,
    ...(seedsSealed === undefined ? {} : { seedsSealed }),
    ...(writtenWith ? { lastWrites: writtenWith } : {}),
    ...(m.reloadedAt ? { reloadedAt: m.reloadedAt } : {}),
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
  /** Calls at most, without a known set (default 8). */
  maxSamples?: number;
  /** Without a known set: stop after this many calls in a row show no API server not seen before (default 3). */
  quietAfter?: number;
  /**
   * The `apiserver_id_hash` of every live API server (from their identity leases): sample until each has
   * answered, up to 4 calls per API server; one that never answers leaves the evidence unproven.
   */
  expected?: string[];
  /** How many API servers there are, as the operator states: sample until that many distinct ones answered. */
  count?: number;
}

/**
 * Samples `/metrics` on new connections (behind a load balancer each may reach another API server); the latest
 * answer per API server is kept. With a known set (their identities, or a stated count) until every one has
 * answered; without, until several calls in a row show none new (which proves nothing about the ones unseen:
 * the judgement says so). Throws what the GET throws; a 403 or 404 is `MetricsUnreadable`; another non-200
 * answer (5xx, 429) a retryable error with its status.
 */
export async function sampleApiServers(
  getRaw: (path: string) => Promise<{ status: number; body: string }>,
  options: SampleOptions = {},
): Promise<ApiServerSample[]> {
  const seen = new Map<string, ApiServerSample>();
  const expected = options.expected?.length ? new Set(options.expected) : undefined;
  const count = expected?.size ?? options.count;
  const maxSamples = count ? Math.max(8, 4 * count) : (options.maxSamples ?? 8);
  const done = (quiet: number) =>
    expected
      ? [...expected].every((id) => seen.has(id))
      : count
        ? seen.size >= count
        : quiet >= (options.quietAfter ?? 3);
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
    if (!sample)
      throw new MetricsUnreadable(
        200,
        'the /metrics answer holds no KMS v2 envelope metrics (filtered by a proxy or a metrics allow-list, or Secrets are not encrypted with KMS v2); the suite needs the apiserver_envelope_encryption_* series of every API server',
      );
    quiet = seen.has(sample.apiServerIdHash) ? quiet + 1 : 0;
    seen.set(sample.apiServerIdHash, sample);
  }
  const missing = expected
    ? [...expected].filter((id) => !seen.has(id)).length
    : count
      ? count - seen.size
      : 0;
  if (missing > 0)
    throw new MetricsUnreadable(
      200,
      `${missing} of ${count} API server(s) never answered /metrics in ${maxSamples} tries (a load balancer that keeps the suite on some of them?)`,
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

/** The key a judgement is about: its CMK id and its primary version. */
export interface JudgedKey {
  keyId: string;
  primaryKeyVersion: string;
}

/**
 * How the set of API servers judged is known: their live identity `leases`, a count the operator `stated`
 * (`SENTINEL_API_SERVERS`, `--api-servers`), or only `sampled` (those that happened to answer).
 */
export type KnownSet = 'leases' | 'stated' | 'sampled';

/** The key ids a plugin may report for the judged key: the CMK id itself (ACK's), or `<cmk>/<version>`. */
const boundKeyIds = (key: JudgedKey) =>
  new Set([keyIdHash(key.keyId), keyIdHash(`${key.keyId}/${key.primaryKeyVersion}`)]);

/** What one API server did since the rotation. */
function stateOf(sample: ApiServerSample, rotatedAt: Date, key: JudgedKey): ApiServerState {
  const byLast = [...sample.statusKeyIds].sort((a, b) => b.last.getTime() - a.last.getTime());
  const current = byLast[0];
  const after = (t: Date) => t.getTime() - CLOCK_MARGIN_MS >= rotatedAt.getTime();
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
  const sealedForEach = sample.seedsSealed === undefined || sample.seedsSealed >= sample.statusKeyIds.length;
  const wroteWithOld = (sample.lastWrites ?? []).some(
    (w) => current && w.keyIdHash !== current.keyIdHash && w.last > current.last,
  );
  const state: ApiServerState = after(sample.startedAt)
    ? 'restarted'
    : sample.reloadedAt && after(sample.reloadedAt)
      ? 'reloaded'
      : changed && current && current.last >= rotatedAt
        ? sealedForEach && !wroteWithOld
          ? 'new-key-id'
          : 'seed-pending'
        : 'stale-seed';
  // A new seed says nothing of this key when the plugin seals it under a key id that is not this key's.
  if (
    state !== 'stale-seed' &&
    state !== 'seed-pending' &&
    current &&
    !boundKeyIds(key).has(current.keyIdHash)
  )
    return 'other-key';
  return state;
}

/**
 * What each API server did since the rotation, and so whether a rewrite now seals under the new version
 * (docs/kms-v2-proof.md states the rules). `effective` only when the set of API servers is known and every
 * one of them made a new seed bound to the key after the rotation; a sampled set can show a problem, never
 * prove its absence.
 */
export function judgeSealing(
  samples: ApiServerSample[],
  rotatedAt: Date,
  key: JudgedKey,
  known: KnownSet,
): SealingEvidence {
  if (samples.length === 0) return unproven('no API server answered /metrics with KMS v2 envelope metrics');
  const apiServers = samples.map((sample) => {
    const current = [...sample.statusKeyIds].sort((a, b) => b.last.getTime() - a.last.getTime())[0];
    return {
      apiServerIdHash: sample.apiServerIdHash,
      startedAt: sample.startedAt.toISOString(),
      ...(current ? { currentKeyIdHash: current.keyIdHash } : {}),
      state: stateOf(sample, rotatedAt, key),
    };
  });
  const constantKeyId = apiServers.every((a) => a.currentKeyIdHash === keyIdHash(key.keyId));
  const of = (state: ApiServerState) => apiServers.filter((a) => a.state === state).length;
  const base = { apiServers, constantKeyId };
  if (of('stale-seed') > 0)
    return {
      ...base,
      verdict: 'not-effective',
      reason: `${of('stale-seed')} of ${apiServers.length} API server(s) still encrypt with a seed sealed before the rotation (${constantKeyId ? 'the plugin reports the CMK id as its key id, so a rotation never changes it' : 'the plugin has not reported a new key id'}); a rewrite now changes nothing at the key-version level. The control plane must make a new seed: it does when its API servers restart (an upgrade or a restart of the control plane) or reload their encryption configuration; the suite sweeps once it sees that.`,
    };
  // Only seeds still to come (no restart needed): the API servers try again on their own.
  if (of('seed-pending') > 0)
    return {
      ...base,
      verdict: 'not-effective',
      reason: `${of('seed-pending')} of ${apiServers.length} API server(s) reported the new key id but have not sealed a seed for it (the plugin's Encrypt of the new seed failed), so they still encrypt with the seed sealed before the rotation; kube-apiserver tries again on its own (every 10 s after a failed check), and a job waits for it`,
    };
  if (of('other-key') > 0)
    return unprovenWith(
      base,
      `${of('other-key')} of ${apiServers.length} API server(s) seal with a key id that is neither the CMK id ${key.keyId} nor ${key.keyId}/${key.primaryKeyVersion}: they may encrypt with another key`,
    );
  if (known === 'sampled')
    return unprovenWith(
      base,
      `${apiServers.length} API server(s) answered and each made a new seed after the rotation, but how many serve the cluster is not known (the suite's identity cannot list the kube-system identity leases): grant it list on leases in kube-system, or state the count (SENTINEL_API_SERVERS, --api-servers)`,
    );
  return {
    ...base,
    verdict: 'effective',
    reason: effectiveReason(apiServers, known),
    token: tokenOf(apiServers),
  };
}

const unprovenWith = (
  base: Pick<SealingEvidence, 'apiServers' | 'constantKeyId'>,
  why: string,
): SealingEvidence => ({
  ...unproven(why),
  ...base,
});

function effectiveReason(apiServers: SealingEvidence['apiServers'], known: KnownSet): string {
  const how = apiServers.every((a) => a.state === 'restarted')
    ? 'started after the rotation'
    : 'made a new seed after the rotation (a restart, a reload of the encryption configuration, or a new key id)';
  const set = known === 'leases' ? 'by their live identity leases' : 'as stated by SENTINEL_API_SERVERS';
  return `every API server (${apiServers.length}, ${set}) ${how}, each bound to the key (start or reload at least ${CLOCK_MARGIN_MS / 1000} s after LastRotationDate, for KMS's whole seconds and the hosts' clocks): a rewrite now seals under the new key version`;
}

/** Names what a Secret rewritten now is sealed under (each API server, its start and current key id). */
const tokenOf = (apiServers: SealingEvidence['apiServers']): string =>
  createHash('sha256')
    .update(
      JSON.stringify(apiServers.map((a) => [a.apiServerIdHash, a.startedAt, a.currentKeyIdHash]).sort()),
    )
    .digest('hex')
    .slice(0, 12);

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
 * What the configuration says of proof (`SENTINEL_REENCRYPT_PROOF`, `SENTINEL_API_SERVERS`): whether to read
 * the API servers at all, and how many there are when their leases cannot be listed.
 */
export interface ProofSettings {
  proof?: 'metrics' | 'actiontrail';
  apiServers?: number;
}

/** The proof settings of a configuration's `reencrypt` section, as every reader passes them. */
export const proofSettings = (r: ProofSettings): ProofSettings => ({
  ...(r.proof ? { proof: r.proof } : {}),
  ...(r.apiServers ? { apiServers: r.apiServers } : {}),
});

/** Where the evidence is read: a cluster's API servers (`shared/cluster/kube.ts` `Cluster`). */
export interface EvidenceSource {
  getRaw(path: string): Promise<{ status: number; body: string }>;
  /** The live API servers' identities (their leases), undefined when they cannot be listed. */
  apiServerIdentities(): Promise<string[] | undefined>;
}

/**
 * The API servers' evidence for a key's last rotation, as every caller reads it (the job, the starter, the
 * webhook's answers, the audit, `enable`, the CLI): sampled from `/metrics` and judged; `unproven` when they
 * cannot be read (no RBAC, no KMS v2 metrics, a Kubernetes that does not label them), the set of API servers
 * is not known, or the configuration asks not to read them (`actiontrail`). Any other failure (a broken connection, a 5xx)
 * is thrown, normalised: a guess would be a claim without proof.
 */
export async function readSealingEvidence(
  source: EvidenceSource,
  key: JudgedKey & { lastRotationDate?: string },
  options: ProofSettings = {},
): Promise<SealingEvidence> {
  if (options.proof === 'actiontrail') return unproven('SENTINEL_REENCRYPT_PROOF is actiontrail');
  // KMS gives every key a LastRotationDate (a key never rotated: its creation): without one, nothing is known.
  if (!key.lastRotationDate) return unproven('DescribeKey gave no LastRotationDate for the key');
  const rotatedAt = new Date(key.lastRotationDate);
  if (Number.isNaN(rotatedAt.getTime()))
    return unproven(`the key's LastRotationDate "${key.lastRotationDate}" is not a date`);
  try {
    const identities = await source.apiServerIdentities();
    const known: KnownSet = identities?.length ? 'leases' : options.apiServers ? 'stated' : 'sampled';
    const samples = await sampleApiServers(
      (p) => source.getRaw(p),
      identities?.length
        ? { expected: identities.map(keyIdHash) }
        : options.apiServers
          ? { count: options.apiServers }
          : {},
    );
    return judgeSealing(samples, rotatedAt, key, known);
  } catch (err) {
    if (err instanceof MetricsUnreadable) return unproven(err.message);
    throw normalizeError(err, { service: 'kubernetes', operation: 'GET /metrics' });
  }
}

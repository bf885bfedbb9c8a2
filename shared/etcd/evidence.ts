import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { PoisonError, SentinelError } from '../errors';
import { ETCD_BACKOFF, withRetries } from '../retry';

/**
 * Evidence from etcd: which KMS key id encrypted each Secret as stored (docs/cloud-facts.md#kms-v2-internals).
 * Reads `/registry/secrets/` through etcd's gRPC gateway (`POST /v3/kv/range`, base64 keys), page by page,
 * and decodes each value: `k8s:enc:kms:v2:<provider>:` + the EncryptedObject protobuf (its keyID), or the
 * plaintext `k8s\0` protobuf envelope of the identity provider.
 */
export interface StoredSecret {
  namespace: string;
  name: string;
  /** `kms-v2`, `identity` (plaintext), or `other` (another provider) */
  storage: 'kms-v2' | 'identity' | 'other';
  providerName?: string;
  keyId?: string;
  /**
   * The KMS key version that sealed the seed this Secret's data key derives from: the version annotation the
   * plugin stored with it (the ACK plugin's `x-acs-kms-key-version-id.ack.alibabacloud.com`, or the
   * sandbox's), else the version at the end of a `<key>/<version>` key id.
   */
  sealedByVersion?: string;
  /** A short digest of the sealed seed: Secrets with the same one share the seed (and its sealing). */
  seedDigest?: string;
  modRevision: number;
}

export interface EvidenceSummary {
  total: number;
  plaintext: number;
  /** key id → number of Secrets stored under it; `identity` for plaintext */
  byKeyId: Record<string, number>;
  /** KMS key version that sealed the seed → number of Secrets; `unknown` when the value names none. */
  bySealingVersion: Record<string, number>;
}

/** The annotations plugins store the sealing KMS key version under (the ACK plugin's, the sandbox's). */
export const SEALING_VERSION_ANNOTATIONS = [
  'x-acs-kms-key-version-id.ack.alibabacloud.com',
  'key-version.ack-kms-sentinel.io',
];

const KMS_V2_PREFIX = 'k8s:enc:kms:v2:';
const PLAINTEXT_PREFIX = Buffer.from('k8s\u0000', 'latin1');

/**
 * kube-apiserver's `EncryptedObject` (k8s.io/apiserver pkg/storage/value/encrypt/envelope/kmsv2/v2/api.proto,
 * docs/cloud-facts.md#kms-v2-internals), declared through protobufjs reflection so that bundles need no .proto file.
 */
export const EncryptedObject = new protobuf.Type('EncryptedObject')
  .add(new protobuf.Field('encryptedData', 1, 'bytes'))
  .add(new protobuf.Field('keyID', 2, 'string'))
  .add(new protobuf.Field('encryptedDEKSource', 3, 'bytes'))
  .add(new protobuf.MapField('annotations', 4, 'string', 'bytes'))
  .add(new protobuf.Field('encryptedDEKSourceType', 5, 'int32'));

type Decoded = Pick<StoredSecret, 'storage' | 'providerName' | 'keyId' | 'sealedByVersion' | 'seedDigest'>;

export function decodeStoredValue(value: Buffer): Decoded {
  if (value.subarray(0, PLAINTEXT_PREFIX.length).equals(PLAINTEXT_PREFIX)) return { storage: 'identity' };
  const head = value.subarray(0, 300).toString('latin1');
  if (head.startsWith(KMS_V2_PREFIX)) {
    const end = head.indexOf(':', KMS_V2_PREFIX.length);
    if (end < 0) return { storage: 'other' };
    const providerName = head.slice(KMS_V2_PREFIX.length, end);
    const message = EncryptedObject.decode(value.subarray(end + 1)) as unknown as {
      keyID?: string;
      encryptedDEKSource?: Uint8Array;
      annotations?: Record<string, Uint8Array>;
    };
    const version = sealingVersion(message.keyID, message.annotations ?? {});
    return {
      storage: 'kms-v2',
      providerName,
      ...(message.keyID ? { keyId: message.keyID } : {}),
      ...(version ? { sealedByVersion: version } : {}),
      ...(message.encryptedDEKSource?.length
        ? { seedDigest: createHash('sha256').update(message.encryptedDEKSource).digest('hex').slice(0, 16) }
        : {}),
    };
  }
  return { storage: 'other' };
}

function sealingVersion(
  keyId: string | undefined,
  annotations: Record<string, Uint8Array>,
): string | undefined {
  for (const name of SEALING_VERSION_ANNOTATIONS) {
    const value = annotations[name];
    if (value?.length) return Buffer.from(value).toString('utf8');
  }
  const at = keyId?.lastIndexOf('/') ?? -1;
  return keyId && at > 0 && at < keyId.length - 1 ? keyId.slice(at + 1) : undefined;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

interface RangeResponse {
  kvs?: Array<{ key: string; value?: string; mod_revision?: string }>;
  more?: boolean;
}

const SECRETS_ROOT = '/registry/secrets/';

/**
 * etcd's gateway answered with an error status: retryable when busy (429, 5xx), permanent otherwise. The body
 * is etcd's message, never a stored value; it is cut short all the same.
 */
class EtcdRangeError extends SentinelError {
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(
      status === 429 || status >= 500 ? 'retryable' : 'permanent',
      `etcd range failed: HTTP ${status} ${body.slice(0, 200)}`,
      {
        code: 'EtcdRangeFailed',
        statusCode: status,
        service: 'etcd',
      },
    );
  }
}

/** A busy or restarting etcd: 429, 5xx, or no connection (fetch's TypeError). */
const transient = (err: unknown): boolean =>
  err instanceof EtcdRangeError ? err.status === 429 || err.status >= 500 : err instanceof TypeError;

async function rangePage(etcdUrl: string, request: string): Promise<RangeResponse> {
  const res = await fetch(`${etcdUrl}/v3/kv/range`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: request,
  });
  if (!res.ok) throw new EtcdRangeError(res.status, await res.text());
  return (await res.json()) as RangeResponse;
}

/**
 * Reads the storage facts of every Secret stored under `prefix` (all of them by default, or e.g.
 * `/registry/secrets/<namespace>/`), `pageSize` keys per request. It cannot share the Kubernetes Secret lister
 * (etcd's range API pages by key, with no continue token to expire, no selectors and no Kubernetes Status to
 * decide on), so it shares what applies: the one retry loop, for a page that failed on the way.
 */
export async function readSecretEvidence(
  etcdUrl: string,
  options: { prefix?: string; pageSize?: number } = {},
): Promise<StoredSecret[]> {
  const prefix = options.prefix ?? SECRETS_ROOT;
  if (!prefix.startsWith(SECRETS_ROOT))
    throw new PoisonError(`prefix must lie under ${SECRETS_ROOT}: ${prefix}`, { path: 'prefix' });
  const rangeEnd = b64(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1));
  const out: StoredSecret[] = [];
  let key = b64(prefix);
  for (;;) {
    const request = JSON.stringify({ key, range_end: rangeEnd, limit: options.pageSize ?? 500 });
    const page = await withRetries(() => rangePage(etcdUrl, request), ETCD_BACKOFF, transient);
    const kvs = page.kvs ?? [];
    for (const kv of kvs) {
      const path = Buffer.from(kv.key, 'base64').toString('utf8');
      const [namespace = '', name = ''] = path.slice(SECRETS_ROOT.length).split('/');
      out.push({
        namespace,
        name,
        ...decodeStoredValue(Buffer.from(kv.value ?? '', 'base64')),
        modRevision: Number(kv.mod_revision ?? 0),
      });
    }
    const last = kvs.at(-1);
    if (!page.more || !last) break;
    key = Buffer.concat([Buffer.from(last.key, 'base64'), Buffer.from([0])]).toString('base64');
  }
  return out;
}

export function summarize(secrets: StoredSecret[]): EvidenceSummary {
  const byKeyId: Record<string, number> = {};
  const bySealingVersion: Record<string, number> = {};
  let plaintext = 0;
  for (const s of secrets) {
    if (s.storage === 'kms-v2') {
      const v = s.sealedByVersion ?? 'unknown';
      bySealingVersion[v] = (bySealingVersion[v] ?? 0) + 1;
    }
    const id =
      s.storage === 'identity' ? 'identity' : s.storage === 'other' ? 'other' : (s.keyId ?? 'unknown');
    if (s.storage === 'identity') plaintext++;
    byKeyId[id] = (byKeyId[id] ?? 0) + 1;
  }
  return { total: secrets.length, plaintext, byKeyId, bySealingVersion };
}

import protobuf from 'protobufjs';

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
  modRevision: number;
}

export interface EvidenceSummary {
  total: number;
  plaintext: number;
  /** key id → number of Secrets stored under it; `identity` for plaintext */
  byKeyId: Record<string, number>;
}

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

export function decodeStoredValue(value: Buffer): Pick<StoredSecret, 'storage' | 'providerName' | 'keyId'> {
  if (value.subarray(0, PLAINTEXT_PREFIX.length).equals(PLAINTEXT_PREFIX)) return { storage: 'identity' };
  const head = value.subarray(0, 300).toString('latin1');
  if (head.startsWith(KMS_V2_PREFIX)) {
    const end = head.indexOf(':', KMS_V2_PREFIX.length);
    if (end < 0) return { storage: 'other' };
    const providerName = head.slice(KMS_V2_PREFIX.length, end);
    const message = EncryptedObject.decode(value.subarray(end + 1)) as unknown as { keyID?: string };
    return { storage: 'kms-v2', providerName, ...(message.keyID ? { keyId: message.keyID } : {}) };
  }
  return { storage: 'other' };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

interface RangeResponse {
  kvs?: Array<{ key: string; value?: string; mod_revision?: string }>;
  more?: boolean;
}

const SECRETS_ROOT = '/registry/secrets/';

/**
 * Reads the storage facts of every Secret stored under `prefix` (all of them by default, or e.g.
 * `/registry/secrets/<namespace>/`), `pageSize` keys per request.
 */
export async function readSecretEvidence(
  etcdUrl: string,
  options: { prefix?: string; pageSize?: number } = {},
): Promise<StoredSecret[]> {
  const prefix = options.prefix ?? SECRETS_ROOT;
  if (!prefix.startsWith(SECRETS_ROOT)) throw new Error(`prefix must lie under ${SECRETS_ROOT}: ${prefix}`);
  const rangeEnd = b64(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1));
  const out: StoredSecret[] = [];
  let key = b64(prefix);
  for (;;) {
    const res = await fetch(`${etcdUrl}/v3/kv/range`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key, range_end: rangeEnd, limit: options.pageSize ?? 500 }),
    });
    if (!res.ok) throw new Error(`etcd range failed: HTTP ${res.status} ${await res.text()}`);
    const page = (await res.json()) as RangeResponse;
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
  let plaintext = 0;
  for (const s of secrets) {
    const id =
      s.storage === 'identity' ? 'identity' : s.storage === 'other' ? 'other' : (s.keyId ?? 'unknown');
    if (s.storage === 'identity') plaintext++;
    byKeyId[id] = (byKeyId[id] ?? 0) + 1;
  }
  return { total: secrets.length, plaintext, byKeyId };
}

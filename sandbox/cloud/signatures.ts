import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Server-side checks of the signature schemes the official SDKs send (docs/cloud-facts.md#sdk-signatures-and-errors,
 * docs/cloud-facts.md#sls-pulllogs): RPC v1 (HMAC-SHA1 in the query; @alicloud/kms20160120 1.2.0), ACS3-HMAC-SHA256 (the
 * `Authorization` header; openapi-core/openapi-client), and
 * LOG (`Authorization: LOG ak:sig`; @alicloud/sls20201230).
 */
export interface SignedRequest {
  method: string;
  /** The path as sent, without the query. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type SignatureScheme = 'rpc-v1' | 'acs3' | 'log' | 'oss';

export interface SignatureCheck {
  scheme: SignatureScheme;
  accessKeyId: string;
  /** Returns true when the signature matches under `secret`. */
  verify(secret: string): boolean;
}

/** RFC 3986 percent-encoding as Alibaba Cloud's signers apply it. */
export const percentEncode = (s: string): string =>
  encodeURIComponent(s)
    .replace(/!/g, '%21')
    .replace(/'/g, '%27')
    .replace(/\(/g, '%28')
    .replace(/\)/g, '%29')
    .replace(/\*/g, '%2A');

const header = (h: IncomingHttpHeaders, name: string): string => {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
};

const equal = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const canonicalQuery = (query: Record<string, string>, exclude?: string): string =>
  Object.keys(query)
    .filter((k) => k !== exclude)
    .sort()
    .map((k) => `${percentEncode(k)}=${percentEncode(query[k] ?? '')}`)
    .join('&');

function rpcV1(req: SignedRequest): SignatureCheck | undefined {
  const { Signature, AccessKeyId } = req.query;
  if (!Signature || !AccessKeyId) return undefined;
  return {
    scheme: 'rpc-v1',
    accessKeyId: AccessKeyId,
    verify(secret) {
      const stringToSign = `${req.method}&${percentEncode('/')}&${percentEncode(canonicalQuery(req.query, 'Signature'))}`;
      const expected = createHmac('sha1', `${secret}&`).update(stringToSign).digest('base64');
      return equal(expected, Signature);
    },
  };
}

function acs3(req: SignedRequest): SignatureCheck | undefined {
  const auth = header(req.headers, 'authorization');
  const m = /^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)$/.exec(auth);
  if (!m) return undefined;
  const [, accessKeyId = '', signedHeaders = '', signature = ''] = m;
  return {
    scheme: 'acs3',
    accessKeyId,
    verify(secret) {
      const names = signedHeaders.split(';');
      const canonicalHeaders = names.map((n) => `${n}:${header(req.headers, n).trim()}\n`).join('');
      const payloadHash = createHash('sha256').update(req.body).digest('hex');
      const canonicalRequest = [
        req.method,
        req.path,
        canonicalQuery(req.query),
        canonicalHeaders,
        signedHeaders,
        payloadHash,
      ].join('\n');
      const stringToSign = `ACS3-HMAC-SHA256\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
      return equal(createHmac('sha256', secret).update(stringToSign).digest('hex'), signature);
    },
  };
}

function log(req: SignedRequest): SignatureCheck | undefined {
  const m = /^LOG ([^:]+):(.+)$/.exec(header(req.headers, 'authorization'));
  if (!m) return undefined;
  const [, accessKeyId = '', signature = ''] = m;
  return {
    scheme: 'log',
    accessKeyId,
    verify(secret) {
      const canonicalHeaders = Object.keys(req.headers)
        .filter((k) => k.includes('x-log-') || k.includes('x-acs-'))
        .sort()
        .map((k) => `${k}:${header(req.headers, k)}\n`)
        .join('');
      const query = Object.keys(req.query)
        .sort()
        .map((k) => `${k}=${req.query[k]}`)
        .join('&');
      const resource = query ? `${req.path}?${query}` : req.path;
      const stringToSign = `${req.method}\n${header(req.headers, 'content-md5')}\n${header(req.headers, 'content-type')}\n${header(req.headers, 'date')}\n${canonicalHeaders}${resource}`;
      const alg = header(req.headers, 'x-log-signaturemethod') === 'hmac-sha256' ? 'sha256' : 'sha1';
      return equal(createHmac(alg, secret).update(stringToSign).digest('base64'), signature);
    },
  };
}

const OSS_SUBRESOURCES = new Set([
  'acl',
  'bucketInfo',
  'location',
  'stat',
  'tagging',
  'versioning',
  'policy',
]);

/** OSS V1 (ali-oss): HMAC-SHA1 over verb, MD5, type, date, x-oss- headers and /bucket/object. */
function oss(req: SignedRequest & { bucket?: string }): SignatureCheck | undefined {
  const m = /^OSS ([^:]+):(.+)$/.exec(header(req.headers, 'authorization'));
  if (!m) return undefined;
  const [, accessKeyId = '', signature = ''] = m;
  return {
    scheme: 'oss',
    accessKeyId,
    verify(secret) {
      const ossHeaders = Object.keys(req.headers)
        .filter((k) => k.startsWith('x-oss-'))
        .sort()
        .map((k) => `${k}:${header(req.headers, k).trim()}`);
      // The sub-resources named in the query belong to the signed resource (`/bucket/?bucketInfo`).
      const sub = Object.keys(req.query)
        .filter((k) => OSS_SUBRESOURCES.has(k))
        .sort()
        .map((k) => (req.query[k] ? `${k}=${req.query[k]}` : k));
      const resource = `/${req.bucket ?? ''}${decodeURIComponent(req.path)}${sub.length ? `?${sub.join('&')}` : ''}`;
      const stringToSign = [
        req.method,
        header(req.headers, 'content-md5'),
        header(req.headers, 'content-type'),
        header(req.headers, 'x-oss-date') || header(req.headers, 'date'),
        ...ossHeaders,
        resource,
      ].join('\n');
      return equal(createHmac('sha1', secret).update(stringToSign).digest('base64'), signature);
    },
  };
}

/** Finds the signature scheme of a request; undefined when it carries none. */
export function signatureOf(req: SignedRequest & { bucket?: string }): SignatureCheck | undefined {
  return rpcV1(req) ?? acs3(req) ?? log(req) ?? oss(req);
}

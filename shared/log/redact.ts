/**
 * The redaction guard. Everything the suite writes to a log, a report or an HTTP response passes through
 * `redact`, which makes it impossible to leak:
 * - Secret payloads: `stringData` always, and `data` when it is a Secret's (a map of strings or bytes);
 * - credentials by field name: access key secrets, security tokens, passwords, bearer tokens, client keys,
 *   signatures, webhook secrets, kubeconfigs;
 * - credentials by shape, wherever they hide in a string: PEM private keys, kubeconfig credential lines,
 *   `Authorization` header values, JWTs;
 * - every value registered with `registerSecret` (settings and STS credentials), wherever it appears;
 * - raw bytes (a decoded Secret value is bytes).
 * Why not a logger library's path-based redaction (pino's fast-redact): it needs every path spelled out in
 * advance, and a Secret can sit at any depth of any object an SDK hands back.
 */

export const REDACTED = '[REDACTED]';

/** Names that hold a credential only when they hold a string. */
const STRING_ONLY_KEYS = new Set(['secret', 'plaintext']);

const SENSITIVE_KEYS = new Set([
  'accesskeysecret',
  'secretaccesskey',
  'securitytoken',
  'stssecuritytoken',
  'xacssecuritytoken',
  'xfcsecuritytoken',
  'password',
  'passwd',
  'token',
  'bearertoken',
  'idtoken',
  'accesstoken',
  'refreshtoken',
  'authorization',
  'cookie',
  'setcookie',
  'clientkey',
  'clientkeydata',
  'clientcertificatedata',
  'privatekey',
  'tlskey',
  'secret',
  'webhooksecret',
  'signingsecret',
  'clientsecret',
  'signature',
  'kubeconfig',
  'stringdata',
  'plaintext',
]);

const normalizeKey = (key: string): string => key.toLowerCase().replace(/[-_.\s]/g, '');

const registered = new Set<string>();

/** Values shorter than this are too likely to occur by chance to be masked inside other strings. */
const MIN_REGISTERED_LENGTH = 6;

/**
 * Marks a runtime value (a setting, an STS token) as secret: it is masked wherever it appears, URL-encoded
 * too (an SDK's signature error quotes the string it signed, with the token percent-encoded, once or twice).
 */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < MIN_REGISTERED_LENGTH) return;
  const once = encodeURIComponent(value);
  for (const form of [value, once, encodeURIComponent(once), once.replace(/[!'()*]/g, percent)])
    registered.add(form);
}

const percent = (c: string): string => `%${c.charCodeAt(0).toString(16).toUpperCase()}`;

/** For tests: forget registered values. */
export function clearRegisteredSecrets(): void {
  registered.clear();
}

const PATTERNS: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
  [
    /((?:client-key-data|client-certificate-data|token|password|client-secret|id-token|refresh-token)\s*:\s*)("?)[^\s"]+\2/gi,
    `$1${REDACTED}`,
  ],
  [/\b(Bearer|Basic|ACS3-HMAC-SHA256|FC|LOG|acs)\s+[A-Za-z0-9+/=._:,;-]{8,}/g, `$1 ${REDACTED}`],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, REDACTED],
  [/\b(AccessKeySecret|SecurityToken|Signature|accessKeySecret|securityToken)=[^&\s]+/g, `$1=${REDACTED}`],
  // The same inside a string-to-sign quoted by an SDK error: `SecurityToken%3D…%26`, maybe encoded twice.
  [
    /(?<![A-Za-z])(AccessKeySecret|SecurityToken|Signature)(%3D|%253D)(?:(?!%26|%2526)[^&\s])+/g,
    `$1$2${REDACTED}`,
  ],
];

export function redactString(value: string): string {
  let out = value;
  for (const secret of registered) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array || v instanceof ArrayBuffer;

/** A Secret's `data`: a map whose values are all strings or bytes. */
const looksLikeSecretData = (v: unknown): boolean =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).length > 0 &&
  Object.values(v).every((x) => typeof x === 'string' || isBytes(x));

const MAX_DEPTH = 12;

function walk(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') {
    return typeof value === 'bigint' ? value.toString() : value;
  }
  if (isBytes(value)) return `[${value.byteLength} bytes]`;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  seen.add(value);
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown; kind?: unknown; path?: unknown };
    return {
      name: e.name,
      message: redactString(e.message),
      ...(e.code === undefined ? {} : { code: walk(e.code, depth + 1, seen) }),
      ...(e.kind === undefined ? {} : { kind: e.kind }),
      ...(e.path === undefined ? {} : { path: e.path }),
    };
  }
  if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1, seen));
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return walk(Object.fromEntries(value), depth, seen);
  const out: Record<string, unknown> = {};
  const isSecretObject = (value as { kind?: unknown }).kind === 'Secret';
  for (const [key, v] of Object.entries(value)) {
    const k = normalizeKey(key);
    // `secret` names a signing secret when it holds a string, a Kubernetes Secret (walked below) otherwise;
    // `plaintext` KMS's base64 plaintext when it holds a string, a count otherwise (enable's `plaintext: 0`,
    // the Secrets left in plaintext). Any other credential's name is masked whatever it holds (a password
    // YAML read as a number included).
    const sensitive = STRING_ONLY_KEYS.has(k) ? typeof v === 'string' : SENSITIVE_KEYS.has(k);
    if (sensitive && v !== undefined && v !== null && v !== '') {
      out[key] = REDACTED;
    } else if (k === 'data' && (isSecretObject || looksLikeSecretData(v))) {
      out[key] = REDACTED;
    } else {
      out[key] = walk(v, depth + 1, seen);
    }
  }
  return out;
}

/** Returns a deep copy of `value` that is safe to log, report or return. Never mutates its input. */
export function redact<T>(value: T): unknown {
  return walk(value, 0, new WeakSet());
}

import { type ErrorKind, SentinelError } from './taxonomy';

/**
 * The Alibaba Cloud SDKs and the Kubernetes client each surface failures differently
 * (docs/cloud-facts.md#sdk-signatures-and-errors). This is the one place that reads their shapes:
 * - `@alicloud/openapi-core` (CS 7.x): `ClientError` / `ServerError` / `ThrottlingError` with `statusCode`,
 *   `code`, `requestId`, `retryAfter` (from `x-acs-retry-after`).
 * - `@alicloud/openapi-client` generic `callApi`: a tea `ResponseError` with `code` and `data.statusCode`.
 * - `@alicloud/kms20160120` 1.2.0 (rpc-client): a plain `Error` whose `code` has `Error` appended
 *   (`Forbidden.KeyNotFoundError`); the real code is `data.Code`; the status appears only in the message.
 * - `@kubernetes/client-node` 1.x: `ApiException` with numeric `code`, raw text `body`, `headers['retry-after']`.
 * - Node and httpx transport errors: `ECONNRESET`, `ECONNREFUSED`, `RequestTimeoutError`, ...
 */

const RETRYABLE_CODE =
  /throttl|servicebusy|serviceunavailable|internalerror|internalfailure|timeout|toomanyrequests|busy/i;
const TRANSPORT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ESOCKETTIMEDOUT',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

interface Raw {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  statusCode?: unknown;
  status?: unknown;
  requestId?: unknown;
  retryAfter?: unknown;
  data?: unknown;
  body?: unknown;
  headers?: unknown;
}

export interface NormalizeContext {
  /** `kms`, `cs`, `actiontrail`, `fc`, `sls`, `kubernetes`, ... */
  service?: string;
  /** The operation that failed, e.g. `DescribeKey`: it goes into the message. */
  operation?: string;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const num = (v: unknown): number | undefined => {
  const n = typeof v === 'string' ? Number.parseInt(v, 10) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
};
const record = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;

function kindForStatus(status: number | undefined, code: string | undefined): ErrorKind {
  if (code && RETRYABLE_CODE.test(code)) return 'retryable';
  if (status === undefined) return 'permanent';
  if (status === 429 || status === 408 || status >= 500) return 'retryable';
  return 'permanent';
}

function build(
  kind: ErrorKind,
  code: string,
  detail: string,
  ctx: NormalizeContext,
  extra: { cause: unknown; statusCode?: number; retryAfterMs?: number; requestId?: string; service?: string },
): SentinelError {
  const where = [ctx.service, ctx.operation].filter(Boolean).join(' ');
  const message = `${where ? `${where}: ` : ''}${code}${extra.statusCode ? ` (HTTP ${extra.statusCode})` : ''}: ${detail}`;
  return new SentinelError(kind, message, { code, service: ctx.service ?? extra.service, ...extra });
}

/** Kubernetes `Retry-After` is seconds; Alibaba's `x-acs-retry-after` is milliseconds. */
function retryAfterSeconds(headers: unknown): number | undefined {
  const h = record(headers);
  const v = num(h?.['retry-after'] ?? h?.['Retry-After']);
  return v === undefined ? undefined : v * 1000;
}

function fromKubernetes(raw: Raw, ctx: NormalizeContext): SentinelError | undefined {
  // ApiException: numeric code, raw body text, message "HTTP-Code: 409\nMessage: ..."
  if (typeof raw.code !== 'number' || !String(raw.message ?? '').startsWith('HTTP-Code:')) return undefined;
  const status = raw.code;
  let reason: string | undefined;
  let detail = `HTTP ${status}`;
  if (typeof raw.body === 'string') {
    try {
      const parsed = record(JSON.parse(raw.body));
      reason = str(parsed?.reason);
      detail = str(parsed?.message) ?? detail;
    } catch {
      // not a Status object: keep the status line only
    }
  }
  const kind: ErrorKind = status === 429 || status >= 500 ? 'retryable' : 'permanent';
  // A function's identity is the RAM role id ACK put in its kubeconfig, bound only by CS GrantPermissions.
  const remedy =
    status === 403
      ? " (the suite's RBAC is deploy/rbac.yaml; `ack-kms-sentinel grant` binds it to the functions' RAM roles)"
      : '';
  return build(
    kind,
    reason ?? `HTTP${status}`,
    `${detail}${remedy}`,
    { service: 'kubernetes', ...ctx },
    {
      cause: raw,
      statusCode: status,
      retryAfterMs: retryAfterSeconds(raw.headers),
    },
  );
}

function fromAlibaba(raw: Raw, ctx: NormalizeContext): SentinelError | undefined {
  const data = record(raw.data);
  const code = str(data?.Code) ?? str(data?.code) ?? str(raw.code);
  if (!code || TRANSPORT_CODES.has(code)) return undefined;
  const message = String(raw.message ?? '');
  const status =
    num(raw.statusCode) ??
    num(data?.statusCode) ??
    num(raw.status) ?? // ali-oss
    num(/code: (\d{3})/.exec(message)?.[1]) ??
    undefined;
  if (status === undefined && !data) return undefined;
  const requestId = str(raw.requestId) ?? str(data?.RequestId) ?? str(data?.requestId);
  const retryAfterMs = num(raw.retryAfter);
  const detail = str(data?.Message) ?? str(data?.message) ?? message;
  const isThrottling = str(raw.name) === 'ThrottlingError';
  return build(isThrottling ? 'retryable' : kindForStatus(status, code), code, detail, ctx, {
    cause: raw,
    statusCode: status,
    requestId,
    retryAfterMs,
  });
}

function fromTransport(raw: Raw, ctx: NormalizeContext): SentinelError | undefined {
  const code = str(raw.code);
  const name = str(raw.name);
  if (code && TRANSPORT_CODES.has(code)) {
    return build('retryable', code, String(raw.message ?? code), ctx, { cause: raw });
  }
  if (name === 'RequestTimeoutError' || name === 'TimeoutError' || name === 'AbortError') {
    return build('retryable', 'Timeout', String(raw.message ?? name), ctx, { cause: raw });
  }
  if (name === 'SyntaxError') {
    // An SDK that met a non-JSON body (an HTML error page from a gateway): transient in practice.
    return build('retryable', 'MalformedResponse', String(raw.message ?? name), ctx, { cause: raw });
  }
  return undefined;
}

/** Turns anything thrown by an SDK or by our code into a classified SentinelError. */
export function normalizeError(err: unknown, ctx: NormalizeContext = {}): SentinelError {
  if (err instanceof SentinelError) return err;
  const raw = (record(err) ?? { message: String(err) }) as Raw;
  return (
    fromKubernetes(raw, ctx) ??
    fromTransport(raw, ctx) ??
    fromAlibaba(raw, ctx) ??
    build('permanent', 'Unexpected', str(raw.message) ?? String(err), ctx, { cause: err })
  );
}

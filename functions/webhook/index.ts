import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ossReportReader } from '../../shared/audit/report-reader';
import { normalizeError, PoisonError } from '../../shared/errors';
import {
  CLUSTER_ID_CHARS,
  clusterIdField,
  type HttpTriggerEvent,
  type HttpTriggerResponse,
  httpBodyBytes,
  JOB_ID,
  type JobRequest,
  jsonResponse,
  keyIdField,
  parseHttpTriggerEvent,
} from '../../shared/events';
import { parseJobAnswer } from '../../shared/jobs/answers';
import { acceptedValues, kmsSecret } from '../../shared/kms/secrets';
import { defineHandler, type HandlerDeps, type Invocation } from '../../shared/runtime/handler';
import { type Services, servicesFor, suiteBucket } from '../../shared/runtime/services';

/**
 * The signed HTTP API (FC 3.0 HTTP trigger) for automation and ChatOps:
 *   POST /v1/clusters/{clusterId}/reencrypt   start (or find) the re-encryption job for the current key version
 *   POST /v1/audits                           start an audit
 *   GET  /v1/clusters/{clusterId}/status      where the cluster stands (ack-kms-sentinel status)
 *   GET  /v1/jobs/{jobId}                     a job's status
 *   GET  /v1/reports/latest                   the latest audit report (JSON)
 * Every request is signed (v2): `x-sentinel-timestamp` (unix seconds, within 5 minutes) and
 * `x-sentinel-signature: v2=<hex HMAC-SHA256(secret, canonical)>`, compared in constant time, where canonical
 * is the lines `v2`, METHOD, PATH (the raw path as sent, percent-encoded; with query parameters, then `?k=v&…` sorted by name), TIMESTAMP, the `Idempotency-Key` (empty when none) and the body's SHA-256
 * (hex): the key is covered, and no field can bleed into the next. Replays are refused without a store of our
 * own: an audit's id is derived from its Idempotency-Key (or, without one, from the signature), every other
 * POST is recorded as an async task whose id is derived from its signature (`refuseReplay`), and FC refuses a
 * second async task with the same id. Never a stack trace, never a secret in a response.
 */
export const SIGNATURE_HEADER = 'x-sentinel-signature';
export const TIMESTAMP_HEADER = 'x-sentinel-timestamp';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const MAX_BODY_BYTES = 64 * 1024;
const WINDOW_SECONDS = 300;
export const AUDIT_FUNCTION = 'ack-kms-sentinel-audit';
/** FC 3.0 async task states of a task that may still run. */
const UNFINISHED = new Set(['Enqueued', 'Running', 'Retrying', 'Stopping', 'Suspended']);

export interface SignedRequest {
  method: string;
  path: string;
  /** Query parameters: signed as `?k=v&…` after the path, sorted by name (none: the path alone). */
  query?: Record<string, string>;
  timestamp: string;
  body: string;
  idempotencyKey?: string;
}

/** The signed path line: the raw path, then the query sorted by name (so a dry run cannot be stripped to a start). */
const signedPath = (path: string, query: Record<string, string> = {}): string => {
  const pairs = Object.keys(query)
    .sort()
    // Each name and value percent-encoded, so `&` or `=` inside a value cannot forge another parameter.
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k] ?? '')}`);
  return pairs.length ? `${path}?${pairs.join('&')}` : path;
};

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function signRequest(secret: string, r: SignedRequest): string {
  const canonical = [
    'v2',
    r.method,
    signedPath(r.path, r.query),
    r.timestamp,
    r.idempotencyKey ?? '',
    sha256(r.body),
  ].join('\n');
  return `v2=${createHmac('sha256', secret).update(canonical).digest('hex')}`;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const reencryptBody = z.object({ reason: z.string().max(200).optional() }).strict();
const encryptionBody = z
  .object({ keyId: keyIdField, dryRun: z.boolean().optional(), protectKey: z.boolean().optional() })
  .strict();
const auditBody = z
  .object({
    clusterIds: z.array(clusterIdField).max(100).optional(),
  })
  .strict();

function parseBody<T extends z.ZodType>(schema: T, raw: string): z.output<T> {
  let value: unknown = {};
  if (raw.trim() !== '') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new HttpError(400, 'InvalidBody', 'the body is not JSON');
    }
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field =
      issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'body');
    throw new HttpError(400, 'InvalidBody', `${field}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

/** Checks the signing headers, then answers whether the signature matches one of the secrets it is given. */
function signatureCheck(
  event: HttpTriggerEvent,
  r: Omit<SignedRequest, 'timestamp'>,
  nowSeconds: number,
): (secrets: string[]) => boolean {
  const timestamp = event.headers[TIMESTAMP_HEADER];
  const signature = event.headers[SIGNATURE_HEADER];
  if (!timestamp || !signature) throw new HttpError(401, 'Unauthorized', 'the request is not signed');
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > WINDOW_SECONDS) {
    throw new HttpError(401, 'Unauthorized', 'the request timestamp is outside the allowed window');
  }
  if (!signature.startsWith('v2='))
    throw new HttpError(401, 'Unauthorized', 'sign with scheme v2 (x-sentinel-signature: v2=<hex>)');
  const given = Buffer.from(signature);
  return (secrets) =>
    secrets.some((secret) => {
      const expected = Buffer.from(signRequest(secret, { ...r, timestamp }));
      return expected.length === given.length && timingSafeEqual(expected, given);
    });
}

/**
 * The signing secrets accepted now: the configured one, or a KMS secret's current version and, within the
 * grace period after its rotation, the previous one. `fresh` re-reads a KMS secret cached for more than 10 s
 * (a signature that matches neither may have been made with a version rotated in since).
 */
async function signingSecrets(inv: Invocation, services: () => Services, fresh: boolean): Promise<string[]> {
  if (inv.config.webhookSecret) return [inv.config.webhookSecret];
  const name = inv.config.kmsSecrets.webhookSecret;
  if (!name) throw new HttpError(503, 'NotConfigured', 'the webhook signing secret is not configured');
  const versions = await kmsSecret(services().clients, name, inv.now(), fresh ? 10_000 : undefined);
  return acceptedValues(versions, inv.now(), inv.config.secretGraceMs);
}

/**
 * An audit's id is `audit-<request>-<targets>-<body>`, each part a hash: the request part collides for a retry
 * with the same Idempotency-Key and for a replay of the same signed request; the body part tells a key reused
 * for another body (422); the targets part finds a running audit of the same clusters (409: one at a time).
 */
async function startAudit(
  services: Services,
  request: z.output<typeof auditBody>,
  body: string,
  requestKey: RouteContext['requestKey'],
): Promise<HttpTriggerResponse> {
  const h = (text: string, n: number) => sha256(text).slice(0, n);
  const targets = h(JSON.stringify([...(request.clusterIds ?? ['*'])].sort()), 8);
  const prefix = `audit-${h(requestKey.value, 16)}-`;
  const auditId = `${prefix}${targets}-${h(body, 8)}`;
  const seen = async (): Promise<HttpTriggerResponse | undefined> => {
    const earlier = (await services.invoker.listTasks(AUDIT_FUNCTION, { prefix }))[0];
    if (!earlier) return undefined;
    if (earlier.taskId !== auditId)
      throw new HttpError(422, 'IdempotencyKeyReused', 'this Idempotency-Key was used for another body');
    if (!requestKey.fromHeader)
      throw new HttpError(409, 'Replayed', `this signed request was already accepted as ${auditId}`);
    return jsonResponse(202, { auditId, status: 'already-started' });
  };
  const answer = await seen();
  if (answer) return answer;
  const running = (await services.invoker.listTasks(AUDIT_FUNCTION, { prefix: 'audit-' })).find(
    (t) => UNFINISHED.has(t.status) && t.taskId.split('-')[2] === targets,
  );
  if (running)
    throw new HttpError(409, 'AuditRunning', `audit ${running.taskId} of the same clusters is still running`);
  try {
    await services.invoker.invokeAsync(AUDIT_FUNCTION, JSON.stringify({ auditId, ...request }), {
      taskId: auditId,
    });
  } catch (err) {
    // Two copies in flight at once: FC let one through; answer as if the other came second.
    if (normalizeError(err).statusCode !== 409) throw err;
    return (await seen()) ?? jsonResponse(202, { auditId, status: 'already-started' });
  }
  return jsonResponse(202, { auditId, status: 'started' });
}

/**
 * A signed request can be captured and sent again within its 5-minute window. Every signed POST that starts
 * or costs something (a job, a dry run that lists every Secret, the encryption switch) is recorded once,
 * before it runs, the way audits are: as an async task of the audit function (which does nothing with it)
 * whose id is derived from the signature. FC refuses a second task with that id from any instance, so a
 * replay answers 409; a client that means to repeat a request signs it again (a new timestamp).
 */
async function refuseReplay(services: Services, signature: string): Promise<void> {
  const taskId = `request-${sha256(signature).slice(0, 32)}`;
  try {
    await services.invoker.invokeAsync(AUDIT_FUNCTION, JSON.stringify({ requestRecord: taskId }), { taskId });
  } catch (err) {
    if (normalizeError(err).statusCode !== 409) throw err;
    throw new HttpError(
      409,
      'Replayed',
      'this signed request was already accepted: sign it again (a new timestamp) to repeat it',
    );
  }
}

/**
 * Jobs are started and read where the kubeconfigs are: rotation-watch, invoked synchronously. The webhook,
 * the one internet-facing function, holds no kubeconfig and no cluster credentials.
 */
async function askRotationWatch(services: Services, inv: Invocation, request: JobRequest): Promise<unknown> {
  const { body } = await services.invoker.invokeSync(
    inv.config.rotationWatchFunction,
    JSON.stringify(request),
  );
  return body;
}

/** `?dryRun=true`: the estimate of the sweep, from rotation-watch (which holds the kubeconfigs); nothing starts. */
async function estimateFor(
  clusterId: string,
  services: Services,
  inv: Invocation,
): Promise<HttpTriggerResponse> {
  const answer = parseJobAnswer(
    'estimate',
    await askRotationWatch(services, inv, { kind: 'estimate', clusterId }),
  );
  if (answer.outcome === 'not-a-target')
    throw new HttpError(404, 'ClusterNotFound', `cluster ${clusterId} is not a target of this deployment`);
  if (answer.outcome === 'encryption-off')
    throw new HttpError(409, 'EncryptionOff', `Secret encryption is off on ${clusterId}`);
  const { kind: _k, outcome: _o, ...rest } = answer;
  return jsonResponse(200, { dryRun: true, ...rest });
}

/**
 * Turn Secret encryption on: rotation-watch runs the pre-flight checks and, unless a dry run, UpdateKMSEncryption;
 * its next tick starts the re-encryption job once the cluster is Running with encryption on.
 */
async function enableFor(
  clusterId: string,
  request: z.output<typeof encryptionBody>,
  services: Services,
  inv: Invocation,
): Promise<HttpTriggerResponse> {
  const answer = parseJobAnswer(
    'enable-encryption',
    await askRotationWatch(services, inv, { kind: 'enable-encryption', clusterId, ...request }),
  );
  if (answer.outcome === 'not-a-target')
    throw new HttpError(404, 'ClusterNotFound', `cluster ${clusterId} is not a target of this deployment`);
  const { kind: _k, ...rest } = answer;
  const status = { switched: 202, 'already-enabled': 200, 'dry-run': 200, 'checks-failed': 422, failed: 409 }[
    answer.outcome
  ];
  return jsonResponse(status, rest);
}

interface Route {
  pattern: RegExp;
  methods: Record<string, (m: RegExpExecArray, ctx: RouteContext) => Promise<HttpTriggerResponse>>;
}

interface RouteContext {
  inv: Invocation;
  services: Services;
  body: string;
  /** Signed with the path. */
  query: Record<string, string>;
  /** What makes a POST idempotent: the Idempotency-Key, or (without one) the signature, so a replay collides. */
  requestKey: { value: string; fromHeader: boolean };
  /** The request's signature (checked): what a replay repeats. */
  signature: string;
}

const ROUTES: Route[] = [
  {
    pattern: new RegExp(`^/v1/clusters/(${CLUSTER_ID_CHARS})/reencrypt$`),
    methods: {
      POST: async (m, { inv, services, body, query, signature }) => {
        const { reason } = parseBody(reencryptBody, body);
        const clusterId = m[1] ?? '';
        if (query.dryRun !== undefined && query.dryRun !== 'true' && query.dryRun !== 'false')
          throw new HttpError(400, 'InvalidRequest', 'dryRun must be true or false');
        await refuseReplay(services, signature);
        if (query.dryRun === 'true') return estimateFor(clusterId, services, inv);
        const request: JobRequest = { kind: 'start-job', clusterId, ...(reason ? { reason } : {}) };
        const answer = parseJobAnswer('start-job', await askRotationWatch(services, inv, request));
        if (answer.outcome === 'not-a-target')
          throw new HttpError(
            404,
            'ClusterNotFound',
            `cluster ${clusterId} is not a target of this deployment`,
          );
        if (answer.outcome === 'encryption-off')
          throw new HttpError(409, 'EncryptionOff', `Secret encryption is off on ${clusterId}`);
        const { kind: _k, outcome, ...job } = answer;
        return jsonResponse(202, { ...job, status: outcome });
      },
    },
  },
  {
    pattern: new RegExp(`^/v1/clusters/(${CLUSTER_ID_CHARS})/status$`),
    methods: {
      GET: async (m, { inv, services }) => {
        const clusterId = m[1] ?? '';
        const answer = parseJobAnswer(
          'cluster-status',
          await askRotationWatch(services, inv, { kind: 'cluster-status', clusterId }),
        );
        if (!answer.found)
          throw new HttpError(
            404,
            'ClusterNotFound',
            `cluster ${clusterId} is not a target of this deployment`,
          );
        return jsonResponse(200, answer.status);
      },
    },
  },
  {
    pattern: new RegExp(`^/v1/clusters/(${CLUSTER_ID_CHARS})/encryption$`),
    methods: {
      POST: async (m, { inv, services, body, signature }) => {
        const request = parseBody(encryptionBody, body);
        await refuseReplay(services, signature);
        return enableFor(m[1] ?? '', request, services, inv);
      },
    },
  },
  {
    pattern: /^\/v1\/audits$/,
    methods: {
      POST: async (_m, { services, body, requestKey }) =>
        startAudit(services, parseBody(auditBody, body), body, requestKey),
    },
  },
  {
    pattern: /^\/v1\/reports\/latest$/,
    methods: {
      GET: async (_m, { inv }) => {
        const bucket = suiteBucket(inv);
        if (!bucket) throw new HttpError(404, 'NoReport', 'no report bucket is configured');
        const report = await ossReportReader(bucket).latest();
        if (!report) throw new HttpError(404, 'NoReport', 'no audit has stored a report yet');
        return jsonResponse(200, report);
      },
    },
  },
  {
    pattern: new RegExp(`^/v1/jobs/(${JOB_ID.source.slice(1, -1)})$`),
    methods: {
      GET: async (m, { inv, services }) => {
        const jobId = m[1] ?? '';
        const answer = parseJobAnswer(
          'job-status',
          await askRotationWatch(services, inv, { kind: 'job-status', jobId }),
        );
        if (!answer.found) throw new HttpError(404, 'JobNotFound', `job ${jobId} is not known`);
        return jsonResponse(200, answer.status);
      },
    },
  },
];

export async function webhook(
  event: unknown,
  inv: Invocation,
  buildServices: () => Services = () => servicesFor(inv),
  nowSeconds = Math.floor(inv.now() / 1000),
): Promise<HttpTriggerResponse> {
  const error = (e: HttpError) =>
    jsonResponse(e.status, { error: { code: e.code, message: e.message } }, e.headers);
  try {
    let request: HttpTriggerEvent;
    try {
      request = parseHttpTriggerEvent(event);
    } catch (err) {
      throw new HttpError(
        400,
        'InvalidRequest',
        err instanceof PoisonError ? err.message : 'the request could not be read',
      );
    }
    const body = httpBodyBytes(request);
    if (body.length > MAX_BODY_BYTES)
      throw new HttpError(413, 'PayloadTooLarge', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    // The path as the client sent it (percent-encoded, no query): what it signed, and what routes.
    const path = request.rawPath;
    const method = request.requestContext.http.method;
    const idempotencyKey = request.headers[IDEMPOTENCY_HEADER];
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey))
      throw new HttpError(
        400,
        'InvalidIdempotencyKey',
        'Idempotency-Key must be 1 to 255 printable characters',
      );
    const text = body.toString('utf8');
    // SDK clients before the signature check only to read a signing secret kept in KMS.
    let built: Services | undefined;
    const services = () => {
      built ??= buildServices();
      return built;
    };
    const query = request.queryParameters;
    const signed = { method, path, query, body: text, ...(idempotencyKey ? { idempotencyKey } : {}) };
    const check = signatureCheck(request, signed, nowSeconds);
    const matches = async (fresh: boolean) => check(await signingSecrets(inv, services, fresh));
    if (!(await matches(false)) && !(inv.config.kmsSecrets.webhookSecret && (await matches(true))))
      throw new HttpError(401, 'Unauthorized', 'the signature does not match');
    const route = ROUTES.find((r) => r.pattern.test(path));
    if (!route) throw new HttpError(404, 'NotFound', `no route ${path}`);
    const run = route.methods[method];
    if (!run)
      throw new HttpError(405, 'MethodNotAllowed', `${method} is not allowed on ${path}`, {
        allow: Object.keys(route.methods).join(', '),
      });
    const match = route.pattern.exec(path) as RegExpExecArray;
    // Credentials and SDK clients (unless the secret is in KMS) only for a request that passed the check.
    return await run(match, {
      inv,
      services: services(),
      body: text,
      query,
      signature: request.headers[SIGNATURE_HEADER] ?? '',
      requestKey: idempotencyKey
        ? { value: `key:${idempotencyKey}`, fromHeader: true }
        : { value: `signature:${request.headers[SIGNATURE_HEADER]}`, fromHeader: false },
    });
  } catch (err) {
    if (err instanceof HttpError) return error(err);
    const e = normalizeError(err);
    inv.log.error('webhook request failed', { error: e.toJSON() });
    if (e.kind === 'config')
      return error(new HttpError(503, 'NotConfigured', 'the function is not fully configured; see its logs'));
    return error(
      new HttpError(
        e.kind === 'retryable' ? 503 : 502,
        e.kind === 'retryable' ? 'Unavailable' : 'UpstreamError',
        'the request could not be completed; try again later',
      ),
    );
  }
}

export const createHandler = (deps: HandlerDeps = {}) =>
  defineHandler('webhook', (event, inv) => webhook(event, inv), deps);
export const handler = createHandler();

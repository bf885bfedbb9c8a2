import { readFileSync } from 'node:fs';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signRequest, TIMESTAMP_HEADER } from '../functions/webhook';
import { createCloudClients } from '../shared/cloud/clients';
import { credentialsFromDefaultChain } from '../shared/cloud/credentials';
import { loadConfig } from '../shared/config';
import { SentinelError } from '../shared/errors';
import { registerSecret } from '../shared/log';
import { EXIT } from './exit-codes';
import { printable, UsageError } from './output';

/**
 * `ack-kms-sentinel call METHOD PATH [--body …] [--idempotency-key …]`: signs a request the way the webhook
 * verifies it (v2, `functions/webhook`), sends it, and prints the answer's body on stdout (its status on
 * stderr). No shell snippet, no `sha256sum` or `openssl`: the same code that checks a signature makes it.
 * Exit 0 for a 2xx answer, 1 for any other, 2 for usage errors.
 */
export interface CallFlags {
  body?: string;
  idempotencyKey?: string;
  url?: string;
  secret?: string;
  config?: string;
  timeout: string;
}

const METHODS = ['GET', 'POST'];
const KMS_SECRET = 'kms-secret://';

/** The body: JSON text as given, `@file`, or `-` for stdin; checked as JSON before anything is signed. */
async function bodyOf(flag: string | undefined, stdin: NodeJS.ReadableStream): Promise<string> {
  if (flag === undefined) return '';
  let text: string;
  try {
    if (flag === '-') {
      const chunks: Buffer[] = [];
      for await (const c of stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
      text = Buffer.concat(chunks).toString('utf8');
    } else text = flag.startsWith('@') ? readFileSync(flag.slice(1), 'utf8') : flag;
  } catch (err) {
    throw new UsageError(`--body ${flag}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`);
  }
  try {
    JSON.parse(text);
  } catch {
    throw new UsageError('--body is not JSON (the webhook takes JSON bodies only)');
  }
  return text;
}

/** The signing secret: the flag or SENTINEL_WEBHOOK_SECRET, read from KMS Secrets Manager when it names one. */
async function secretOf(flags: CallFlags): Promise<string> {
  const given = flags.secret ?? process.env.SENTINEL_WEBHOOK_SECRET;
  if (!given)
    throw new UsageError(
      'no signing secret: set SENTINEL_WEBHOOK_SECRET (or kms-secret://<name>), or --secret',
    );
  if (!given.startsWith(KMS_SECRET)) {
    registerSecret(given);
    return given;
  }
  // The deployment's settings say where KMS is (region, endpoint); the secret is read as the webhook reads it.
  const config = loadConfig(
    { ...process.env, SENTINEL_WEBHOOK_SECRET: given },
    flags.config ? { file: flags.config } : {},
  );
  const name = config.kmsSecrets.webhookSecret;
  if (!name) throw new UsageError(`${given} is not a webhook secret's name`);
  const clients = createCloudClients(config, await credentialsFromDefaultChain());
  const { kmsSecret } = await import('../shared/kms/secrets.js');
  return (await kmsSecret(clients, name, Date.now())).current;
}

/** The target: the webhook's address and the path (with its query) as the caller wrote it. */
function targetOf(method: string, path: string, flags: CallFlags) {
  const verb = method.toUpperCase();
  if (!METHODS.includes(verb)) throw new UsageError(`METHOD must be GET or POST (got "${method}")`);
  if (!path.startsWith('/v1/')) throw new UsageError(`PATH must start with /v1/ (got "${path}")`);
  const base = flags.url ?? process.env.SENTINEL_WEBHOOK_URL;
  if (!base) throw new UsageError('no webhook address: set SENTINEL_WEBHOOK_URL, or --url');
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    // Not echoed: an address can carry credentials (user:password@).
    throw new UsageError('--url / SENTINEL_WEBHOOK_URL is not a URL');
  }
  if (url.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname))
    throw new UsageError('the webhook address must be https (plain http only to loopback: `serve`)');
  const [rawPath = path, search = ''] = path.split(/\?(.*)/s);
  const query: Record<string, string> = {};
  const params = new URLSearchParams(search);
  // As FC hands the function a repeated parameter: its values joined by commas.
  for (const k of new Set(params.keys())) query[k] = params.getAll(k).join(',');
  return { verb, rawPath, query, href: `${base.replace(/\/+$/, '')}${path}` };
}

/** The request, its transport failure said in words (fetch's own is "fetch failed"). */
async function send(target: { href: string }, init: RequestInit): Promise<Response> {
  try {
    return await fetch(target.href, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why =
      (err as Error).name === 'TimeoutError'
        ? 'no answer within --timeout'
        : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new SentinelError(
      'retryable',
      `the webhook at ${new URL(target.href).origin} cannot be reached: ${why}`,
      {
        code: 'Unreachable',
      },
    );
  }
}

export async function callCommand(
  method: string,
  path: string,
  flags: CallFlags,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<number> {
  const target = targetOf(method, path, flags);
  if (!/^\d{1,4}$/.test(flags.timeout) || Number(flags.timeout) < 1)
    throw new UsageError(`--timeout must be whole seconds, e.g. 60 (got "${flags.timeout}")`);
  const key = flags.idempotencyKey;
  if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key))
    throw new UsageError('--idempotency-key must be 1 to 255 printable characters, no spaces');
  const body = await bodyOf(flags.body, stdin);
  if (target.verb === 'GET' && body) throw new UsageError('a GET request takes no --body');
  const secret = await secretOf(flags);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = signRequest(secret, {
    method: target.verb,
    path: target.rawPath,
    ...(Object.keys(target.query).length ? { query: target.query } : {}),
    timestamp,
    body,
    ...(key ? { idempotencyKey: key } : {}),
  });
  const res = await send(target, {
    method: target.verb,
    headers: {
      [TIMESTAMP_HEADER]: timestamp,
      [SIGNATURE_HEADER]: signature,
      ...(key ? { [IDEMPOTENCY_HEADER]: key } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body } : {}),
    redirect: 'error',
    signal: AbortSignal.timeout(Number(flags.timeout) * 1000),
  });
  const answer = await res.text();
  process.stderr.write(`${printable(`HTTP ${res.status} ${res.statusText}`)}\n`);
  if (answer) process.stdout.write(`${printable(answer)}\n`);
  return res.ok ? EXIT.done : EXIT.failed;
}

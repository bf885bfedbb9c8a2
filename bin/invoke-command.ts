import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createHandler as audit } from '../functions/audit';
import { createHandler as reencrypt } from '../functions/reencrypt';
import { createHandler as rotationWatch } from '../functions/rotation-watch';
import { createHandler as trailVerify } from '../functions/trail-verify';
import { createHandler as webhook } from '../functions/webhook';
import { readConfigFile } from '../shared/config';
import type { FcContext, HandlerDeps, PoisonResult } from '../shared/runtime/handler';
import { forRequest, localContext } from './local-context';
import { UsageError } from './output';

/**
 * `ack-kms-sentinel invoke <function> --event <file|->`: runs a handler locally with a realistic FC context
 * (credentials from the environment or the credential chain, needed only once the handler reaches the cloud;
 * endpoints from configuration), like `s local invoke`, and prints the handler's result.
 */
type Factory = (deps: HandlerDeps) => (event: unknown, context: FcContext) => Promise<unknown>;
export const FUNCTIONS: Record<string, Factory> = {
  'rotation-watch': rotationWatch,
  reencrypt,
  'trail-verify': trailVerify,
  audit,
  webhook,
};

export interface InvokeFlags {
  event: string;
  config?: string;
  timeout: string;
}

export async function invokeCommand(
  name: string,
  flags: InvokeFlags,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<number> {
  const factory = FUNCTIONS[name];
  if (!factory)
    throw new UsageError(`unknown function "${name}"; one of ${Object.keys(FUNCTIONS).join(', ')}`);
  if (!/^\d+$/.test(flags.timeout))
    throw new UsageError(`--timeout must be seconds, e.g. 60 (got "${flags.timeout}")`);
  let event: Buffer;
  try {
    event = flags.event === '-' ? await readAll(stdin) : readFileSync(flags.event);
  } catch (err) {
    throw new UsageError(`--event ${flags.event}: ${(err as Error).message}`);
  }
  const env = { ...(flags.config ? readConfigFile(flags.config) : {}), ...process.env };
  const context = forRequest(
    await localContext({
      function: {
        name: `ack-kms-sentinel-${name}`,
        handler: 'index.handler',
        memory: 512,
        timeout: Number(flags.timeout),
      },
      region: env.SENTINEL_REGION ?? env.FC_REGION ?? '',
      ...(env.SENTINEL_ACCOUNT_ID ? { accountId: env.SENTINEL_ACCOUNT_ID } : {}),
    }),
    `local-${randomUUID()}`,
  );
  // Handler logs go to stderr; stdout carries only the result.
  const handler = factory({ env, sink: (line) => process.stderr.write(`${line}\n`) });
  const result = await handler(event, context);
  if (isPoison(result)) {
    process.stderr.write(`ack-kms-sentinel: ${result.error.message}\n`);
    return 2;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

const isPoison = (r: unknown): r is PoisonResult =>
  typeof r === 'object' && r !== null && (r as PoisonResult).poison === true;

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}

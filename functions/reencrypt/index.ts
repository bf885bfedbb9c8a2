import { type InvocationResult, runJobInvocation } from '../../shared/jobs/invocation';
import { parseJobPayload } from '../../shared/jobs/payload';
import type { RunStatus } from '../../shared/jobs/run';
import { defineHandler, type HandlerDeps, type Invocation } from '../../shared/runtime/handler';
import { type Services, servicesFor } from '../../shared/runtime/services';

/**
 * reencrypt: one job per (cluster, key, key version), handed from rotation-watch, the webhook or the CLI by
 * FC async invocation, and from one invocation to the next with where it is. The job's steps (wait for
 * adoption → sweep → verify) are in `shared/jobs/run.ts`; this handler only reads the payload and runs them.
 */
export type ReencryptStatus = RunStatus;
export type ReencryptResult = InvocationResult;

export async function reencrypt(
  event: unknown,
  inv: Invocation,
  services: Services = servicesFor(inv),
): Promise<ReencryptResult> {
  return runJobInvocation(parseJobPayload(event), inv, services);
}

export const createHandler = (deps: HandlerDeps = {}) =>
  defineHandler('reencrypt', (event, inv) => reencrypt(event, inv), deps);
export const handler = createHandler();

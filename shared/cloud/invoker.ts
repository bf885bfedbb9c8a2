import { Readable } from 'node:stream';
import type Fc from '@alicloud/fc20230330';
import type { InvokeFunctionHeaders } from '@alicloud/fc20230330';

/** The FC SDK's request models, loaded with the first call (the SDK is large): a cold start pays nothing. */
const models = () =>
  require('@alicloud/fc20230330') as Pick<
    typeof import('@alicloud/fc20230330'),
    'InvokeFunctionHeaders' | 'InvokeFunctionRequest' | 'ListAsyncTasksRequest'
  >;

import * as $dara from '@darabonba/typescript';
import { normalizeError, SentinelError } from '../errors';

/**
 * Starts functions and reads their async tasks, through the FC 3.0 SDK (`@alicloud/fc20230330`), the way
 * the official `fc3` component invokes: `InvokeFunction` with `x-fc-invocation-type` and
 * `x-fc-async-task-id`. One small interface, so the rest of the code never sees the SDK.
 */
export interface FunctionInvoker {
  /**
   * Asynchronous invocation. `taskId` becomes FC's async task id (`x-fc-async-task-id`); FC refuses a second
   * task with the same id, which is what makes a job id idempotent.
   */
  invokeAsync(functionName: string, payload: string, options?: { taskId?: string }): Promise<InvokeResult>;
  invokeSync(functionName: string, payload: string): Promise<InvokeResult & { body: unknown }>;
  /** ListAsyncTasks: the async tasks whose id starts with `prefix` (newest first), optionally by status. */
  listTasks(functionName: string, filter: { prefix: string; status?: string }): Promise<AsyncTaskRef[]>;
}

export interface InvokeResult {
  requestId?: string;
  taskId?: string;
}

export interface AsyncTaskRef {
  taskId: string;
  status: string;
}

const runtime = () => new $dara.RuntimeOptions({ autoretry: false });

async function readAll(body: Readable | undefined): Promise<string> {
  if (!body) return '';
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** `fc`: the client, or how to get it on the first call (the FC SDK then loads only when a function invokes). */
export function fcInvoker(client: Fc | (() => Fc)): FunctionInvoker {
  const fc = () => (typeof client === 'function' ? client() : client);
  const invoke = (functionName: string, payload: string, headers: InvokeFunctionHeaders) =>
    fc().invokeFunctionWithOptions(
      functionName,
      new (models().InvokeFunctionRequest)({ body: Readable.from([Buffer.from(payload)]) }),
      headers,
      runtime(),
    );
  const fail = (operation: string) => (err: unknown) => {
    throw normalizeError(err, { service: 'fc', operation });
  };
  return {
    async invokeAsync(functionName, payload, options = {}) {
      const headers = new (models().InvokeFunctionHeaders)({
        xFcInvocationType: 'Async',
        ...(options.taskId ? { xFcAsyncTaskId: options.taskId } : {}),
      });
      const res = await invoke(functionName, payload, headers).catch(fail('InvokeFunction'));
      await readAll(res.body);
      return { requestId: res.headers?.['x-fc-request-id'], taskId: options.taskId };
    },
    async invokeSync(functionName, payload) {
      const res = await invoke(
        functionName,
        payload,
        new (models().InvokeFunctionHeaders)({ xFcInvocationType: 'Sync' }),
      ).catch(fail('InvokeFunction'));
      const text = await readAll(res.body);
      const errorType = res.headers?.['x-fc-error-type'];
      if (errorType) {
        // The function ran and failed (FC answers 200 with x-fc-error-type): not the SDK's error.
        throw new SentinelError('permanent', `function ${functionName} failed: ${errorType}`, {
          code: errorType,
          service: 'fc',
        });
      }
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // a function may answer plain text
      }
      return { requestId: res.headers?.['x-fc-request-id'], body };
    },
    async listTasks(functionName, { prefix, status }) {
      const request = new (models().ListAsyncTasksRequest)({
        prefix,
        limit: 100,
        sortOrderByTime: 'desc',
        ...(status ? { status } : {}),
      });
      const res = await fc()
        .listAsyncTasksWithOptions(functionName, request, {}, runtime())
        .catch(fail('ListAsyncTasks'));
      return (res.body?.tasks ?? []).flatMap((t) =>
        t.taskId ? [{ taskId: t.taskId, status: t.status ?? 'Unknown' }] : [],
      );
    },
  };
}

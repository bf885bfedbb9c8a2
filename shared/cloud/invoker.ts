import type FCClient from '@alicloud/fc2';
import { normalizeError } from '../errors';

/**
 * Starts functions. One small interface, so that moving from `@alicloud/fc2` (FC 3.0 paths through
 * `version = '2023-03-30'`) to `@alicloud/fc20230330` would touch this file only (DESIGN.md).
 */
export interface FunctionInvoker {
  /**
   * Asynchronous invocation. `taskId` becomes FC's async task id (`x-fc-async-task-id`); FC refuses a second
   * task with the same id, which is what makes a job id idempotent.
   */
  invokeAsync(functionName: string, payload: string, options?: { taskId?: string }): Promise<InvokeResult>;
  invokeSync(functionName: string, payload: string): Promise<InvokeResult & { body: unknown }>;
  /** FC 3.0 ListAsyncTasks: the async tasks whose id starts with `prefix` (newest first), optionally by status. */
  listTasks(functionName: string, filter: { prefix: string; status?: string }): Promise<AsyncTaskRef[]>;
}

export interface AsyncTaskRef {
  taskId: string;
  status: string;
}

export interface InvokeResult {
  requestId?: string;
  taskId?: string;
}

export function fc2Invoker(fc: FCClient): FunctionInvoker {
  const path = (fn: string) => `/functions/${encodeURIComponent(fn)}/invocations`;
  return {
    async invokeAsync(functionName, payload, options = {}) {
      const headers: Record<string, string> = { 'x-fc-invocation-type': 'Async' };
      if (options.taskId) headers['x-fc-async-task-id'] = options.taskId;
      try {
        const res = await fc.post(path(functionName), payload, headers);
        return { requestId: res.headers['x-fc-request-id'], taskId: options.taskId };
      } catch (err) {
        throw normalizeError(err, { service: 'fc', operation: 'InvokeFunction' });
      }
    },
    async listTasks(functionName, { prefix, status }) {
      try {
        const res = await fc.get(`/functions/${encodeURIComponent(functionName)}/async-tasks`, {
          prefix,
          limit: '100',
          sortOrderByTime: 'desc',
          ...(status ? { status } : {}),
        });
        const tasks = (res.data as { asyncTasks?: Array<{ taskId?: unknown; status?: unknown }> }).asyncTasks;
        return (tasks ?? []).flatMap((t) =>
          typeof t.taskId === 'string' ? [{ taskId: t.taskId, status: String(t.status ?? 'Unknown') }] : [],
        );
      } catch (err) {
        throw normalizeError(err, { service: 'fc', operation: 'ListAsyncTasks' });
      }
    },
    async invokeSync(functionName, payload) {
      try {
        const res = await fc.post(path(functionName), payload, { 'x-fc-invocation-type': 'Sync' });
        const errorType = res.headers['x-fc-error-type'];
        if (errorType) {
          throw normalizeError(
            {
              name: `FC${errorType}Error`,
              code: errorType,
              message: `function ${functionName} failed: ${errorType}`,
            },
            { service: 'fc', operation: 'InvokeFunction' },
          );
        }
        return { requestId: res.headers['x-fc-request-id'], body: res.data };
      } catch (err) {
        throw normalizeError(err, { service: 'fc', operation: 'InvokeFunction' });
      }
    },
  };
}

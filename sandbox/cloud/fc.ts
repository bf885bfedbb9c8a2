import { randomUUID } from 'node:crypto';
import type { FcContext } from '../../shared/runtime/handler';
import { ApiError, type Credential } from './api';

/**
 * Function Compute 3.0 invocation (`POST /2023-03-30/functions/{name}/invocations`), synchronous and
 * asynchronous (`x-fc-invocation-type: Async`, `x-fc-async-task-id`), dispatching in-process to the project's
 * real handlers with a realistic context; async tasks with their status; timer triggers.
 */
export type FcHandler = (event: Buffer, context: FcContext) => Promise<unknown>;

export interface FunctionSpec {
  name: string;
  handler: FcHandler;
  /** The handler string as s.yaml names it, e.g. `index.handler`. */
  handlerName?: string;
  timeoutSeconds?: number;
  memoryMB?: number;
  /** As s.yaml's `asyncInvokeConfig`: how often FC invokes a failed or timed-out async task again (default 0). */
  maxAsyncRetryAttempts?: number;
}

export type TaskStatus = 'Running' | 'Retrying' | 'Succeeded' | 'Failed';

export interface AsyncTask {
  functionName: string;
  taskId: string;
  requestId: string;
  status: TaskStatus;
  startedTime: number;
  endTime?: number;
  returnPayload?: string;
  errorMessage?: string;
  payload: string;
  alreadyRetriedTimes: number;
}

export interface InvokeOutcome {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The emulator's pause before an async retry (FC backs off too; tests need it short). */
const RETRY_DELAY_MS = 50;

export class FunctionService {
  private readonly functions = new Map<string, FunctionSpec>();
  readonly tasks = new Map<string, AsyncTask>();
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly runtime: {
      accountId: string;
      region: string;
      functionCredential: (fn: string) => Credential;
    },
  ) {}

  register(spec: FunctionSpec): void {
    this.functions.set(spec.name, spec);
  }

  private spec(name: string): FunctionSpec {
    const spec = this.functions.get(name);
    if (!spec) throw new ApiError(404, 'FunctionNotFound', `function '${name}' does not exist`);
    return spec;
  }

  private context(spec: FunctionSpec, requestId: string): FcContext {
    const credential = this.runtime.functionCredential(spec.name);
    return {
      requestId,
      credentials: {
        accessKeyId: credential.accessKeyId,
        accessKeySecret: credential.accessKeySecret,
        ...(credential.securityToken ? { securityToken: credential.securityToken } : {}),
      },
      function: {
        name: spec.name,
        handler: spec.handlerName ?? 'index.handler',
        memory: spec.memoryMB ?? 512,
        timeout: spec.timeoutSeconds ?? 60,
      },
      region: this.runtime.region,
      accountId: this.runtime.accountId,
    };
  }

  /**
   * Runs the handler as FC would: a thrown error becomes an unhandled invocation error, not a crash, and an
   * invocation still running at the function's timeout is reported as FC reports it. (In one process the
   * emulator cannot kill the handler: it stops waiting and ignores what the late invocation returns.)
   */
  private async run(
    spec: FunctionSpec,
    payload: Buffer,
    requestId: string,
  ): Promise<{ ok: boolean; body: string }> {
    const seconds = spec.timeoutSeconds ?? 60;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<{ ok: false; body: string }>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            body: JSON.stringify({
              errorMessage: `Function timed out after ${seconds} seconds`,
              errorType: 'FunctionTimeout',
            }),
          }),
        seconds * 1000,
      );
    });
    const ran = (async () => {
      try {
        const result = await spec.handler(Buffer.from(payload), this.context(spec, requestId));
        const body = Buffer.isBuffer(result)
          ? result.toString('utf8')
          : typeof result === 'string'
            ? result
            : JSON.stringify(result ?? null);
        return { ok: true, body };
      } catch (err) {
        const e = err as Error;
        return { ok: false, body: JSON.stringify({ errorMessage: e.message, errorType: e.name }) };
      }
    })();
    try {
      return await Promise.race([ran, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** An async task: run, and on failure or timeout run again up to the function's retry attempts. */
  private async runTask(spec: FunctionSpec, task: AsyncTask, payload: Buffer): Promise<void> {
    const attempts = 1 + (spec.maxAsyncRetryAttempts ?? 0);
    for (let attempt = 1; ; attempt++) {
      const { ok, body } = await this.run(spec, payload, task.requestId);
      if (ok) {
        task.status = 'Succeeded';
        task.returnPayload = body;
        break;
      }
      task.errorMessage = body;
      if (attempt >= attempts) {
        task.status = 'Failed';
        break;
      }
      task.status = 'Retrying';
      task.alreadyRetriedTimes++;
      await new Promise((r) => setTimeout(r, RETRY_DELAY_MS * 2 ** (attempt - 1)));
    }
    task.endTime = Date.now();
  }

  async invoke(
    name: string,
    payload: Buffer,
    headers: Record<string, string | undefined>,
  ): Promise<InvokeOutcome> {
    const spec = this.spec(name);
    const requestId = randomUUID();
    if ((headers['x-fc-invocation-type'] ?? 'Sync').toLowerCase() === 'async') {
      if (payload.length > 128 * 1024)
        throw new ApiError(400, 'InvalidArgument', 'payload of an async invocation must not exceed 128 KB');
      const taskId = headers['x-fc-async-task-id'] || randomUUID();
      const key = `${name}/${taskId}`;
      if (this.tasks.has(key))
        throw new ApiError(409, 'AsyncTaskAlreadyExists', `async task '${taskId}' already exists`);
      const task: AsyncTask = {
        functionName: name,
        taskId,
        requestId,
        status: 'Running',
        startedTime: Date.now(),
        payload: payload.toString('utf8'),
        alreadyRetriedTimes: 0,
      };
      this.tasks.set(key, task);
      const done = this.runTask(spec, task, payload);
      this.running.add(done);
      done.finally(() => this.running.delete(done));
      // FC 3.0 answers an async invocation 202 with an empty body and the task id in a header.
      return {
        status: 202,
        headers: { 'x-fc-request-id': requestId, 'x-fc-async-task-id': taskId },
        body: '',
      };
    }
    const { ok, body } = await this.run(spec, payload, requestId);
    return {
      status: 200,
      headers: {
        'x-fc-request-id': requestId,
        'content-type': 'application/json',
        ...(ok ? {} : { 'x-fc-error-type': 'UnhandledInvocationError' }),
      },
      body,
    };
  }

  task(name: string, taskId: string): AsyncTask {
    this.spec(name);
    const task = this.tasks.get(`${name}/${taskId}`);
    if (!task) throw new ApiError(404, 'AsyncTaskNotFound', `async task '${taskId}' does not exist`);
    return task;
  }

  /** ListAsyncTasks: a function's tasks by id prefix (and status), oldest first. */
  list(name: string, filter: { prefix: string; status?: string }): AsyncTask[] {
    this.spec(name);
    return [...this.tasks.values()].filter(
      (t) =>
        t.functionName === name &&
        t.taskId.startsWith(filter.prefix) &&
        (filter.status === undefined || t.status === filter.status),
    );
  }

  /** The timer trigger: FC invokes the function asynchronously with the timer event. */
  async fireTimer(name: string, triggerName: string, payload: string, at: Date): Promise<string> {
    const event = JSON.stringify({
      triggerTime: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      triggerName,
      payload,
    });
    const outcome = await this.invoke(name, Buffer.from(event), { 'x-fc-invocation-type': 'Async' });
    return outcome.headers['x-fc-async-task-id'] ?? '';
  }

  /** Resolves when no async invocation is running (and none started while waiting). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}

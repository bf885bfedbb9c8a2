import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { FcHandler } from '../../sandbox/cloud/fc';

/**
 * A built function run as FC runs it: its own Node.js process, started in its code directory with exactly the
 * environment the deployment gives it (process.env holds nothing else of ours), its handler (`index.handler`)
 * called with the event as a Buffer and FC's context. The emulator dispatches to it like to any handler.
 */
export interface FunctionProcess {
  handler: FcHandler;
  stop(): Promise<void>;
  /** What the function wrote to stdout and stderr (FC's log), for a failing test to show. */
  output(): string;
}

const RUNTIME = join(__dirname, 'fc-runtime-child.js');

export function startFunction(
  codeDir: string,
  handlerName: string,
  environment: Record<string, string>,
): FunctionProcess {
  const [file, exported] = handlerName.split('.');
  const child: ChildProcess = fork(RUNTIME, [join(codeDir, `${file}.js`), exported ?? 'handler'], {
    cwd: codeDir,
    // FC's own variables beside the function's: no variable of the test process leaks in.
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...environment },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const log: string[] = [];
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 0;
  child.on('message', (m: { id: number; result?: unknown; error?: { name: string; message: string } }) => {
    const waiting = pending.get(m.id);
    if (!waiting) return;
    pending.delete(m.id);
    if (m.error) waiting.reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
    else waiting.resolve(m.result);
  });
  child.on('exit', (code) => {
    for (const w of pending.values()) w.reject(new Error(`the function's process exited (${code})`));
    pending.clear();
  });
  return {
    handler: (event, context) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        child.send({ id, event: event.toString('base64'), context });
      }),
    output: () => log.join(''),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}

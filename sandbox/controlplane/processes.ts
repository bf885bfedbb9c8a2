import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Child processes the sandbox started. Whatever happens to the parent short of SIGKILL (a failed test, an
 * exception, Ctrl-C), they are killed: `stop()` on the normal path, SIGKILL from the `exit` hook otherwise.
 */
const running = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

export interface Managed {
  name: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  /** The last lines the process wrote (kept in memory: the log file may not be flushed when it exits). */
  tail(lines?: number): string;
  stop(graceMs?: number): Promise<void>;
}

export function startProcess(name: string, command: string, args: string[], logFile: string): Managed {
  hookExit();
  const log = createWriteStream(logFile, { flags: 'a' });
  log.on('error', () => {}); // a full disk must not take the host process down
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Both pipes feed one log, which ends on `close` (both pipes drained), not on `exit`: a process writes
  // its last lines while it shuts down, and a write after end would be an error.
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let last = '';
  const keep = (c: Buffer) => {
    last = (last + c.toString()).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  running.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      running.delete(child);
      log.end();
      resolve(code);
    });
    child.on('error', () => {
      running.delete(child);
      log.end();
      resolve(-1);
    });
  });
  return {
    name,
    child,
    exited,
    tail: (lines = 5) => last.trimEnd().split('\n').slice(-lines).join(' | '),
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A free TCP port on loopback (the kernel's choice). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A process that exited before it was ready; its message ends with the last lines it wrote. */
export class ExitedEarly extends Error {}

/** Polls `probe` until it returns true; fails with `what` and the last error after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  options: {
    timeoutMs: number;
    intervalMs?: number;
    abort?: Promise<unknown>;
    /** What the process said last, for the error when it exits first. */
    logTail?: () => string;
  },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let aborted = false;
  let lastError = '';
  options.abort?.then(() => {
    aborted = true;
  });
  while (Date.now() < deadline) {
    if (aborted)
      throw new ExitedEarly(
        `${what}: the process exited before it was ready${options.logTail ? `: ${options.logTail()}` : ''}`,
      );
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
  throw new Error(
    `${what}: not ready after ${options.timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}`,
  );
}

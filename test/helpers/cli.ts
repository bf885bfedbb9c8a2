import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const CLI = join(__dirname, '../../bin/ack-kms-sentinel.js');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** stdout, line by line */
  lines: string[];
  stderr: string;
}

/**
 * Runs the CLI as a user would (a separate node process), with extra environment and optional stdin.
 * `onLine` sees each stdout line as it comes, with a way to SIGKILL the process (a crash half-way).
 */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
  onLine?: (line: string, kill: () => void) => void,
): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    onLine?.(line, () => child.kill('SIGKILL'));
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin.end(stdin ?? '');
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, lines, stderr })),
  );
}

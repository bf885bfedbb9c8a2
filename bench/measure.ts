import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Wall time and peak resident memory of a command and all its descendants (sampled from /proc). */
export interface Measurement {
  wallMs: number;
  peakRssBytes: number;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The resident memory of a process and its descendants, from /proc: the tree is followed through each task's
 * `children` list, so a sample reads a few files, not the status of every process on the machine (every 20 ms,
 * that scan cost the machine a tenth of a core, taken from the contenders being measured).
 */
function rssOfTree(root: number): number {
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop() as number;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      total += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
        if (children) stack.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

export function measure(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Measurement> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const sampler = setInterval(() => {
      if (child.pid) peak = Math.max(peak, rssOfTree(child.pid));
    }, 20);
    child.on('close', (code) => {
      clearInterval(sampler);
      resolve({ wallMs: performance.now() - started, peakRssBytes: peak, exitCode: code, stdout, stderr });
    });
  });
}

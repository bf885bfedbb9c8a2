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

function rssOfTree(root: number): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
      const pid = Number(entry);
      rss.set(pid, kb * 1024);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // the process ended while we looked
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop() as number;
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
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

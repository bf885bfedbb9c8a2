import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface DemoSummary extends Record<string, unknown> {
  secrets: number;
  keyId: string;
  newKeyVersion: string;
  claimedComplete: boolean;
  verdict: string;
  etcdKeyVersionsBefore: Record<string, number>;
  etcdKeyVersionsAfter: Record<string, number>;
  sealedByVersionBefore: Record<string, number>;
  sealedByVersionAfter: Record<string, number>;
}

/** Runs `npm run demo -- <args> --json` as a user would; its exit code, stderr, and the last stdout line. */
export async function runDemo(
  args: string[],
): Promise<{ code: number | null; stderr: string; summary: DemoSummary }> {
  const child = spawn('npm', ['run', '--silent', 'demo', '--', ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stderr, summary: JSON.parse(lines.at(-1) ?? '{}') as DemoSummary };
}

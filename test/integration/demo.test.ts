import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

/** The README's first command: the main job on the embedded default, ending with its summary. */
describe('npm run demo', () => {
  it('rotates the key and ends with every Secret under the new version in etcd, proven by ActionTrail', async () => {
    const child = spawn('npm', ['run', '--silent', 'demo', '--', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr.slice(-2000)).toBe(0);
    const summary = JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown> & {
      etcdKeyVersionsBefore: Record<string, number>;
      etcdKeyVersionsAfter: Record<string, number>;
    };
    expect(summary).toMatchObject({ secrets: 300, rewritten: 300, failed: 0 });
    expect(Object.values(summary.etcdKeyVersionsBefore)).toEqual([300]);
    expect(Object.keys(summary.etcdKeyVersionsAfter)).toEqual([`${summary.keyId}/${summary.newKeyVersion}`]);
    expect(summary.managedRoleEncryptEvents).toBeGreaterThanOrEqual(1);
    expect(typeof summary.durationMs).toBe('number');
    expect(stderr).toContain('etcd after');
  });
});

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { coreApi } from '../helpers/sandbox';

/** `npm run sandbox`, the way a person runs it: one JSON line when ready, clean shutdown on a signal. */
describe('npm run sandbox', () => {
  it('prints one line of JSON when ready and stops everything on SIGTERM', async () => {
    const child = spawn('npm', ['run', '--silent', 'sandbox'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`sandbox exited with ${code} before it was ready`)));
    });
    const info = JSON.parse(first) as Record<string, string> & { cloud: unknown };
    expect(Object.keys(info)).toEqual(
      expect.arrayContaining(['kubeconfig', 'restrictedKubeconfig', 'etcd', 'kmsProviderName']),
    );
    expect(existsSync(info.kubeconfig ?? '')).toBe(true);
    expect(existsSync(info.restrictedKubeconfig ?? '')).toBe(true);
    const namespaces = await coreApi(info.kubeconfig ?? '').listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain('ack-kms-sentinel');
    expect(((await (await fetch(`${info.etcd}/health`)).json()) as { health: string }).health).toBe('true');

    // A terminal's Ctrl-C or a supervisor's SIGTERM reaches the whole process group (npm and the sandbox).
    process.kill(-(child.pid ?? 0), 'SIGTERM');
    await exited;
    for (let i = 0; i < 100 && !stderr.includes('sandbox: stopped'); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain('sandbox: SIGTERM, stopping');
    expect(stderr).toContain('sandbox: stopped');
    const more: string[] = [];
    lines.on('line', (l) => more.push(l));
    expect(more, 'exactly one line on stdout').toEqual([]);
    expect(existsSync(info.workDir ?? ''), 'no files left behind').toBe(false);
    await expect(fetch(`${info.etcd}/health`)).rejects.toThrow();
    await expect(fetch(`${info.apiServer}/readyz`)).rejects.toThrow();
  });
});

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { coreApi } from '../helpers/sandbox';

interface Info extends Record<string, unknown> {
  workDir: string;
  kubeconfig: string;
  restrictedKubeconfig: string;
  etcd: string;
  apiServer: string;
  apiServers: Array<{ name: string; url: string; hostname: string }>;
}

/**
 * Runs `npm run sandbox -- <args>` as a person does, hands its JSON line to `check`, then stops it with
 * SIGTERM and checks that it stopped everything it started.
 */
async function runSandbox(args: string[], check: (info: Info) => Promise<void>): Promise<void> {
  const child = spawn('npm', ['run', '--silent', 'sandbox', '--', ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  // `close`: every process holding the pipes (npm, sh, tsx, the sandbox) has exited.
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  let running = true;
  void closed.then(() => {
    running = false;
  });
  try {
    const lines: string[] = [];
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (l) => {
        lines.push(l);
        if (lines.length === 1) resolve(l);
      });
      child.once('exit', (code) => reject(new Error(`sandbox exited with ${code} before it was ready`)));
    });
    const info = JSON.parse(first) as Info;
    expect(existsSync(info.workDir)).toBe(true);
    await check(info);

    // A terminal's Ctrl-C or a supervisor's SIGTERM reaches the whole process group (npm and the sandbox).
    process.kill(-(child.pid ?? 0), 'SIGTERM');
    await closed;
    expect(stderr).toContain('sandbox: SIGTERM, stopping');
    expect(stderr).toContain('sandbox: stopped');
    expect(lines, 'exactly one line on stdout').toEqual([first]);
    expect(existsSync(info.workDir), 'no files left behind').toBe(false);
    await expect(fetch(`${info.etcd}/health`)).rejects.toThrow();
    for (const url of new Set([info.apiServer, ...info.apiServers.map((s) => s.url)]))
      await expect(fetch(`${url}/readyz`)).rejects.toThrow();
  } finally {
    // A failed expectation must not leave a whole sandbox running.
    if (running) process.kill(-(child.pid ?? 0), 'SIGKILL');
  }
}

/** `npm run sandbox`, the way a person runs it: one JSON line when ready, clean shutdown on a signal. */
describe('npm run sandbox', () => {
  it('prints one line of JSON when ready and stops everything on SIGTERM', async () => {
    await runSandbox([], async (info) => {
      expect(Object.keys(info)).toEqual(
        expect.arrayContaining(['kubeconfig', 'restrictedKubeconfig', 'etcd', 'kmsProviderName', 'workDir']),
      );
      expect(existsSync(info.kubeconfig)).toBe(true);
      expect(existsSync(info.restrictedKubeconfig)).toBe(true);
      const namespaces = await coreApi(info.kubeconfig).listNamespace();
      expect(namespaces.items.map((n) => n.metadata?.name)).toContain('ack-kms-sentinel');
      expect(((await (await fetch(`${info.etcd}/health`)).json()) as { health: string }).health).toBe('true');
    });
  });

  it('--api-servers 2 --lb sticky --no-lease-access: two API servers behind a balancer, all stopped', async () => {
    await runSandbox(['--api-servers', '2', '--lb', 'sticky', '--no-lease-access'], async (info) => {
      expect(info.apiServers.map((s) => s.hostname)).toEqual(['apiserver-0', 'apiserver-1']);
      expect(info).toMatchObject({
        leaseAccess: false,
        loadBalancer: { mode: 'sticky', url: info.apiServer },
      });
      const namespaces = await coreApi(info.kubeconfig).listNamespace();
      expect(namespaces.items.map((n) => n.metadata?.name)).toContain('ack-kms-sentinel');
    });
  });
});

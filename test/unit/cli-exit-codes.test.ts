import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../bin/exit-codes';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import { CLI, runCli } from '../helpers/cli';
import { StubApiServer } from '../helpers/stub-apiserver';

/**
 * The exit codes of docs/cli.md, through the built CLI as automation runs it: each code from the command that
 * produces it, against a stand-in API server (and the cloud emulator for what needs Alibaba Cloud).
 */
const dir = mkdtempSync(join(tmpdir(), 'cli-exit-'));
let cloud: CloudEmulator;
let cloudEnv: Record<string, string>;
const CLUSTER = 'c-exit-codes';

beforeAll(async () => {
  cloud = await CloudEmulator.start();
  cloudEnv = {
    ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
    SENTINEL_REGION: cloud.state.region,
    SENTINEL_ACCOUNT_ID: cloud.state.accountId,
    SENTINEL_ENDPOINT_KMS: cloud.url,
    SENTINEL_ENDPOINT_CS: cloud.url,
    SENTINEL_ENDPOINT_ACTIONTRAIL: cloud.url,
    SENTINEL_LOG_LEVEL: 'error',
  };
});
afterAll(async () => {
  await cloud.stop();
});

async function withStub<T>(count: number, use: (stub: StubApiServer) => Promise<T>): Promise<T> {
  const stub = await new StubApiServer(count).start();
  try {
    return await use(stub);
  } finally {
    await stub.stop();
  }
}

const sweep = (stub: StubApiServer, ...more: string[]) => [
  'reencrypt',
  '--kubeconfig',
  stub.kubeconfig(mkdtempSync(join(dir, 'kc-'))),
  '--key-version',
  'v-exit',
  '--page-size',
  '5',
  ...more,
];

// Each test starts CLI processes (npx too), which on a busy two-core machine can take many seconds each.
describe('exit codes, through the built CLI', { timeout: 120_000 }, () => {
  it('--version prints the package version', async () => {
    const run = await runCli(['--version']);
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as {
      version: string;
    };
    expect(run.code).toBe(EXIT.done);
    expect(run.stdout.trim()).toBe(pkg.version);
  });

  it('0 when every Secret is done; each patch names the field manager ack-kms-sentinel', async () => {
    await withStub(12, async (stub) => {
      const run = await runCli(sweep(stub, '--json'));
      expect(run.code, run.stderr).toBe(EXIT.done);
      expect(JSON.parse(run.lines.at(-1) ?? '{}')).toMatchObject({
        complete: true,
        rewritten: 12,
        failed: 0,
      });
      expect(stub.fieldManagers).toHaveLength(12);
      expect(new Set(stub.fieldManagers)).toEqual(new Set(['ack-kms-sentinel']));
    });
  });

  it('1 when a Secret failed, listed by name and reason', async () => {
    await withStub(6, async (stub) => {
      stub.add('web', 'forbidden-one');
      const run = await runCli(sweep(stub, '--json'));
      expect(run.code).toBe(EXIT.failed);
      const report = JSON.parse(run.lines.at(-1) ?? '{}') as { failures: Array<{ name: string }> };
      expect(report.failures.map((f) => f.name)).toEqual(['forbidden-one']);
    });
  });

  it('2 for a usage error; with --json the error is one JSON object on stdout', async () => {
    const plain = await runCli(['reencrypt', '--key-version', 'v', '--concurrency', '0']);
    expect(plain.code).toBe(EXIT.usage);
    expect(plain.stderr).toContain('--concurrency must be a whole number between 1 and 256');
    const json = await runCli(['reencrypt', '--key-version', 'v', '--concurrency', '0', '--json']);
    expect(json.code).toBe(EXIT.usage);
    expect(JSON.parse(json.stdout)).toEqual({
      error: {
        exitCode: EXIT.usage,
        kind: 'usage',
        message: '--concurrency must be a whole number between 1 and 256 (got "0")',
      },
    });
    const unknown = await runCli(['status', '--no-such-flag', '--json']);
    expect(unknown.code).toBe(EXIT.usage);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ error: { kind: 'usage' } });
  });

  it('1 for a failure past the flags, as one JSON object with --json', async () => {
    const run = await runCli(['status', '--cluster-id', 'c-nowhere', '--json'], cloudEnv);
    expect(run.code, run.stderr).toBe(EXIT.failed);
    const { error } = JSON.parse(run.stdout) as {
      error: { exitCode: number; kind: string; message: string };
    };
    expect(error).toMatchObject({ exitCode: EXIT.failed, kind: 'failed' });
    expect(error.message).toContain('c-nowhere');
    expect(run.stderr).toContain(`ack-kms-sentinel: ${error.message}`);
  });

  it('3 when interrupted, and the same command resumes from its checkpoint to 0', async () => {
    await withStub(20, async (stub) => {
      const checkpoint = join(mkdtempSync(join(dir, 'cp-')), 'sweep.json');
      stub.hold(5); // the second page waits until the interrupt is sent
      const args = sweep(stub, '--checkpoint', checkpoint, '--concurrency', '1');
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (!line.includes('"event":"progress"') || child.killed) return;
        child.kill('SIGINT');
        stub.release();
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, stderr).toBe(EXIT.resumable);
      expect(stub.secrets.filter((s) => Object.keys(s.annotations).length).length).toBeLessThan(20);
      const again = await runCli(args);
      expect(again.code, again.stderr).toBe(EXIT.done);
      expect(stub.secrets.every((s) => Object.keys(s.annotations).length > 0)).toBe(true);
    });
  });

  it('4 when the work is done but the API servers cannot prove it (--cluster-id)', async () => {
    await withStub(4, async (stub) => {
      const key = cloud.createKey();
      cloud.addCluster({ clusterId: CLUSTER, kubeconfig: stub.kubeconfigText(), encryptionKeyId: key.keyId });
      const run = await runCli(
        [
          'reencrypt',
          '--kubeconfig',
          stub.kubeconfig(mkdtempSync(join(dir, 'kc-'))),
          '--cluster-id',
          CLUSTER,
          '--json',
        ],
        cloudEnv,
      );
      expect(run.code, run.stderr).toBe(EXIT.unproven);
      expect(run.stdout).toContain('"event":"note","message":"rewritten, not proven:');
    });
  });

  it('status: 1 when a person is needed, 4 when only the proof is missing', async () => {
    await withStub(3, async (stub) => {
      const key = cloud.createKey();
      cloud.addCluster({ clusterId: CLUSTER, kubeconfig: stub.kubeconfigText(), encryptionKeyId: key.keyId });
      const args = [
        'status',
        '--cluster-id',
        CLUSTER,
        '--kubeconfig',
        stub.kubeconfig(mkdtempSync(join(dir, 'kc-'))),
      ];
      key.deletionProtection = 'Disabled';
      const attention = await runCli([...args, '--json'], cloudEnv);
      expect(attention.code, attention.stderr).toBe(EXIT.failed);
      const status = JSON.parse(attention.stdout) as { verdict: string; reasons: string[] };
      expect(status.verdict).toBe('attention');
      expect(status.reasons.join('\n')).toContain('has no deletion protection');
      expect(status.reasons.join('\n')).toContain('no completed re-encryption');

      key.deletionProtection = 'Enabled';
      stub.state = JSON.stringify({
        completedKeyVersion: key.primaryKeyVersion,
        completedAt: new Date().toISOString(),
        completedProof: 'proven',
      });
      const unproven = await runCli(args, cloudEnv);
      expect(unproven.code, unproven.stdout + unproven.stderr).toBe(EXIT.unproven);
      expect(unproven.stdout).toMatch(/^verdict\s+UNPROVEN$/m);
      expect(unproven.stdout).toMatch(/^completed\s+version \S+ at \S+, proven$/m);
    });
  });
});

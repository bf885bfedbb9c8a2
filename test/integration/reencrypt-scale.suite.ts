import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../sandbox/controlplane/fault-proxy';
import { splitKeyId } from '../../sandbox/kms-plugin/key-provider';
import { loadKubeConfig } from '../../shared/cluster/kube';
import { httpSecretStore } from '../../shared/cluster/secret-store';
import { readSecretEvidence, summarize } from '../../shared/etcd/evidence';
import { etcdVerifier } from '../../shared/etcd/verifier';
import { sweep } from '../../shared/reencrypt';
import { runCli } from '../helpers/cli';
import { coreApi, pool, rotateKey, sandboxInfo, waitForAdoption } from '../helpers/sandbox';
import { dataDigest, seedSecrets, snapshot } from '../helpers/secrets';

/**
 * The engine at scale on the real control plane: 2,000 Secrets (immutable ones, ~900 KiB ones, 25
 * namespaces), Secrets deleted and created while the sweep runs, a key rotation, and etcd as the judge.
 */
const NAMESPACES = Array.from({ length: 25 }, (_, i) => `scale-${String(i).padStart(2, '0')}`);
const COUNT = 2000;
const STALE_NAMESPACES = ['stale-a', 'stale-b'];

describe('re-encryption at scale', () => {
  const admin = () => coreApi(sandboxInfo().kubeconfig);
  let created: Map<string, string>;
  let targetVersion = '';
  let targetKeyId = '';

  beforeAll(async () => {
    created = await seedSecrets(admin(), {
      namespaces: NAMESPACES,
      count: COUNT,
      immutable: [3, 400, 999, 1500],
      large: [10, 1010, 1990],
      size: 256,
    });
    // The stale-only test's Secrets, written under the same old key (one rotation serves both tests).
    await seedSecrets(admin(), { namespaces: STALE_NAMESPACES, count: 120, prefix: 'st' });
    const { keyId } = await rotateKey();
    await waitForAdoption(keyId);
    targetKeyId = keyId;
    targetVersion = splitKeyId(keyId).keyVersionId;
  });

  it('moves every surviving Secret to the new key version while Secrets come and go', async () => {
    const store = httpSecretStore(loadKubeConfig({ path: sandboxInfo().restrictedKubeconfig }));
    const deleted = [...created.keys()].filter((_, i) => i % 97 === 5);
    const churn = async () => {
      await pool(deleted, 4, async (key) => {
        const [namespace = '', name = ''] = key.split('/');
        await admin().deleteNamespacedSecret({ namespace, name });
        created.delete(key);
      });
      for (let i = 0; i < 40; i++) {
        const namespace = NAMESPACES[i % NAMESPACES.length] ?? '';
        const body = {
          metadata: { name: `late-${i}` },
          data: { v: Buffer.from(`late ${i}`).toString('base64') },
        };
        await admin().createNamespacedSecret({ namespace, body });
        created.set(`${namespace}/late-${i}`, dataDigest(body.data));
      }
    };
    const [report] = await Promise.all([
      sweep({
        store,
        targetKeyVersionId: targetVersion,
        selection: { namespaces: NAMESPACES },
        pageSize: 200,
        concurrency: 16,
      }),
      churn(),
    ]);
    expect(report.complete).toBe(true);
    expect(report.failed).toBe(0);
    expect(report.total).toBeGreaterThanOrEqual(COUNT - deleted.length);

    const stored = (await readSecretEvidence(sandboxInfo().etcd)).filter((s) =>
      NAMESPACES.includes(s.namespace),
    );
    expect(stored).toHaveLength(created.size);
    const byKey = summarize(stored).byKeyId;
    expect(Object.keys(byKey)).toHaveLength(1);
    expect(Object.keys(byKey)[0]).toMatch(new RegExp(`/${targetVersion}$`));
    const verification = await etcdVerifier(sandboxInfo().etcd).verify({
      targetKeyVersionId: targetVersion,
      selection: { namespaces: NAMESPACES },
      report,
    });
    expect(verification).toMatchObject({ verified: true, method: 'etcd' });

    const after = await snapshot(admin(), NAMESPACES);
    expect(after.size).toBe(created.size);
    for (const [key, s] of after) expect(s.digest, `${key} data unchanged`).toBe(created.get(key));
  });

  it('stale-only rewrites exactly the Secrets stored under an older key, as the API server decides', async () => {
    const namespaces = STALE_NAMESPACES;
    const keyId = targetKeyId;
    const version = targetVersion;
    const store = httpSecretStore(loadKubeConfig({ path: sandboxInfo().restrictedKubeconfig }));
    const first = await sweep({
      store,
      targetKeyVersionId: version,
      strategy: 'stale-only',
      selection: { namespaces },
    });
    expect(first).toMatchObject({ complete: true, total: 120, rewritten: 120, alreadyCurrent: 0 });
    const second = await sweep({
      store,
      targetKeyVersionId: version,
      strategy: 'stale-only',
      selection: { namespaces },
    });
    expect(second).toMatchObject({ complete: true, total: 120, rewritten: 0, alreadyCurrent: 120 });
    const stored = (await readSecretEvidence(sandboxInfo().etcd)).filter((s) =>
      namespaces.includes(s.namespace),
    );
    expect(summarize(stored).byKeyId).toEqual({ [keyId]: 120 });
  });
});

describe('the CLI', () => {
  const namespaces = ['cli-a', 'cli-b', 'cli-c', 'cli-d'];
  const COUNT_CLI = 400;
  let proxy: FaultProxy;
  let kubeconfig: string;

  beforeAll(async () => {
    await seedSecrets(coreApi(sandboxInfo().kubeconfig), { namespaces, count: COUNT_CLI, prefix: 'c' });
    proxy = await FaultProxy.start(sandboxInfo().apiServer, sandboxInfo().caFile);
    kubeconfig = proxy.kubeconfigFrom(
      sandboxInfo().restrictedKubeconfig,
      join(mkdtempSync(join(tmpdir(), 'cli-')), 'kubeconfig'),
    );
  });
  afterAll(async () => {
    await proxy.stop();
  });

  const reencrypt = (args: string[], onLine?: (line: string, kill: () => void) => void) =>
    runCli(['reencrypt', ...args], {}, undefined, onLine);

  it('killed half-way and resumed from its checkpoint: no Secret missed, none rewritten twice', async () => {
    const checkpoint = join(mkdtempSync(join(tmpdir(), 'ckpt-')), 'sweep.json');
    const common = [
      '--kubeconfig',
      kubeconfig,
      '--key-version',
      'cli-v1',
      '--page-size',
      '50',
      '--concurrency',
      '4',
      '--checkpoint',
      checkpoint,
    ];
    for (const ns of namespaces) common.push('--namespace', ns);
    // 20 ms per write at 4 in flight: ~200 Secrets/s, so the kill (at 180, seen in a progress line every
    // 250 ms) lands well before the end on a fast machine too.
    proxy.resetStats().inject({ match: { verb: 'patch' }, fault: { type: 'latency', ms: 20 } });
    const killed = await reencrypt(common, (line, kill) => {
      const event = JSON.parse(line) as { event?: string; total?: number };
      if (event.event === 'progress' && (event.total ?? 0) >= 180) kill();
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(checkpoint)).toBe(true);
    // The file holds the job's continuation: where the sweep is, and when the job started.
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8'));
    expect(saved).toMatchObject({ phase: 'sweeping', targetKeyVersionId: 'cli-v1' });
    expect(saved.sweep.counters.total).toBeGreaterThan(0);
    expect(saved.sweep.counters.total).toBeLessThan(COUNT_CLI);

    const resumed = await reencrypt([...common, '--json']);
    expect(resumed.code).toBe(0);
    const report = JSON.parse(resumed.lines.at(-1) ?? '{}');
    expect(report).toMatchObject({ complete: true, failed: 0 });
    expect(report.rewritten + report.alreadyCurrent).toBe(report.total);
    // Counted as the API server's answers: a write the kill cut off before the (delayed) proxy sent it on
    // never reached the server, and the resumed run rightly writes that Secret.
    expect(proxy.stats.answered['patch secrets 200'], 'each Secret written once for this version').toBe(
      COUNT_CLI,
    );
    expect(existsSync(checkpoint), 'the checkpoint is removed once done').toBe(false);
    const after = await snapshot(coreApi(sandboxInfo().kubeconfig), namespaces);
    expect(after.size).toBe(COUNT_CLI);
    expect([...after.values()].filter((s) => s.version !== 'cli-v1')).toEqual([]);
  });

  it('exits 1 and lists the failures when some Secrets fail, 2 on usage errors', async () => {
    proxy
      .clear()
      .resetStats()
      .inject({
        match: { verb: 'patch', name: 'c-00007' },
        fault: { type: 'status', code: 403, reason: 'Forbidden' },
      });
    const failed = await reencrypt([
      '--kubeconfig',
      kubeconfig,
      '--key-version',
      'cli-v2',
      '--namespace',
      'cli-d',
      '--json',
    ]);
    expect(failed.code).toBe(1);
    const report = JSON.parse(failed.lines.at(-1) ?? '{}');
    expect(report).toMatchObject({
      total: 100,
      rewritten: 99,
      failed: 1,
      failures: [{ namespace: 'cli-d', name: 'c-00007', code: 'Forbidden' }],
    });
    // A boolean, so a failure never prints the output it guards.
    expect(/"data"|payload/.test(failed.lines.join('\n')), 'the CLI printed Secret data').toBe(false);

    const usage = await reencrypt([
      '--kubeconfig',
      kubeconfig,
      '--concurrency',
      'many',
      '--key-version',
      'x',
    ]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--concurrency must be a whole number between 1 and 256 (got "many")');
    const missing = await reencrypt(['--kubeconfig', kubeconfig]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--key-version is required');
  });

  it('--dry-run counts what would be written and writes nothing', async () => {
    proxy.clear().resetStats();
    const dry = await reencrypt([
      '--kubeconfig',
      kubeconfig,
      '--key-version',
      'cli-v3',
      '--namespace',
      'cli-a',
      '--dry-run',
      '--json',
    ]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.lines.at(-1) ?? '{}')).toMatchObject({
      dryRun: true,
      total: 100,
      wouldRewrite: 100,
      rewritten: 0,
      estimatedKmsCalls: { kmsV2: 1, kmsV1: 100 },
      // The estimate: of the selected namespace only, the KMS calls explained, a duration, the blast radius.
      estimate: {
        secrets: 100,
        toRewrite: 100,
        kmsCalls: { kmsV2: 1, kmsV1: 100 },
        blastRadius: { watchEvents: 100, topNamespaces: [{ namespace: 'cli-a', secrets: 100 }] },
        recommendation: { strategy: 'annotate' },
      },
    });
    const { estimate } = JSON.parse(dry.lines.at(-1) ?? '{}');
    // Metadata only by default: no size, and it says so.
    expect(estimate.sizesRead).toBe(false);
    expect(estimate.bytesToRewrite).toBeUndefined();
    expect(estimate.cannotKnow[0]).toMatch(/^Secret sizes: .*--read-secret-sizes/);
    expect(estimate.expectedDurationMs).toBeGreaterThan(0);
    expect(Object.values(estimate.blastRadius.byType).reduce((a: number, b) => a + (b as number), 0)).toBe(
      100,
    );
    expect(estimate.kmsCalls.why).toMatch(/seed/);
    expect(proxy.stats.requests['patch secrets']).toBeUndefined();
    // Sizes only when asked for by name (the Secrets' data reaches this machine), and only for a dry run.
    const sizedArgs = ['--kubeconfig', kubeconfig, '--key-version', 'cli-v3', '--namespace', 'cli-a'];
    const sized = await reencrypt([...sizedArgs, '--dry-run', '--read-secret-sizes', '--json']);
    expect(sized.code).toBe(0);
    const withSizes = JSON.parse(sized.lines.at(-1) ?? '{}').estimate;
    expect(withSizes).toMatchObject({ sizesRead: true, secrets: 100 });
    expect(withSizes.bytesToRewrite).toBeGreaterThan(0);
    expect((await reencrypt([...sizedArgs, '--read-secret-sizes'])).code).toBe(2);
    expect(proxy.stats.requests['patch secrets']).toBeUndefined();
  });
});

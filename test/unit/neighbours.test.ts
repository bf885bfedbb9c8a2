import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { flowControlManifest, flowSchema, priorityLevel } from '../../shared/cluster/flow-control';
import { type ClusterSpace, EtcdSpaceGuard, storageSizeFromMetrics } from '../../shared/etcd/space';
import { sweep } from '../../shared/reencrypt/sweep';
import { AdaptiveLimiter, DEFAULT_POLITE } from '../../shared/reencrypt/throttle';
import { memoryStore } from '../helpers/memory-store';

/** A limiter in polite mode whose every task takes `latency()` ms on a clock the test moves. */
function politeLimiter(latency: () => number, maxConcurrency = 8) {
  let now = 0;
  const limiter = new AdaptiveLimiter(64, 20, () => 0, undefined, {
    latencyFactor: 2,
    window: 10,
    maxConcurrency,
    clock: () => now,
  });
  // One after the other, so each write's latency is exactly `latency()` whatever the concurrency allowed.
  const runMany = async (n: number) => {
    for (let i = 0; i < n; i++)
      await limiter.run(async () => {
        now += latency();
      });
  };
  return { limiter, runMany };
}

describe('polite mode', () => {
  it('starts with one write in flight and climbs while its latency stays near the baseline, up to its own ceiling', async () => {
    const { limiter, runMany } = politeLimiter(() => 4, 6);
    expect(limiter.concurrency).toBe(1);
    await runMany(30);
    expect(limiter.concurrency).toBe(4);
    expect(limiter.baselineMs).toBe(4);
    await runMany(200);
    expect(limiter.concurrency).toBe(6);
    expect(limiter.ceiling).toBe(6);
    expect(limiter.latencyBackoffs).toBe(0);
  });

  it('backs off by a third once a window is slower than twice the baseline, and keeps the best baseline', async () => {
    let latency = 4;
    const { limiter, runMany } = politeLimiter(() => latency);
    await runMany(60);
    const before = limiter.concurrency;
    latency = 9;
    await runMany(10);
    expect(limiter.concurrency).toBe(Math.max(1, Math.floor((before * 2) / 3)));
    expect(limiter.latencyBackoffs).toBe(1);
    expect(limiter.baselineMs).toBe(4);
    // At 2× exactly it holds on and climbs again.
    latency = 8;
    await runMany(10);
    expect(limiter.concurrency).toBe(Math.max(1, Math.floor((before * 2) / 3)) + 1);
  });

  it('still halves on a 429, and the successes of polite mode do not climb as AIMD does', () => {
    const { limiter } = politeLimiter(() => 1);
    for (let i = 0; i < 100; i++) limiter.onSuccess();
    expect(limiter.concurrency).toBe(1);
    limiter.onThrottle(0);
    expect(limiter.concurrency).toBe(1);
    expect(limiter.throttleEvents).toBe(1);
  });

  it('a polite sweep reports its baseline and back-offs, and writes every Secret once', async () => {
    const { store, patched } = memoryStore(40);
    const report = await sweep({ store, targetKeyVersionId: 'v2', pageSize: 10, polite: true });
    expect(report).toMatchObject({
      complete: true,
      rewritten: 40,
      concurrency: { max: DEFAULT_POLITE.maxConcurrency },
    });
    expect(report.polite?.latencyBackoffs).toBeGreaterThanOrEqual(0);
    expect(report.polite?.baselineMs).toBeGreaterThanOrEqual(0);
    expect(new Set(patched).size).toBe(40);
    expect(patched).toHaveLength(40);
  });
});

describe('apiserver_storage_size_bytes', () => {
  it('is read from /metrics, the largest of its storage clusters', () => {
    const text = [
      '# HELP apiserver_storage_size_bytes [STABLE] Size of the storage database file physically allocated in bytes.',
      '# TYPE apiserver_storage_size_bytes gauge',
      'apiserver_storage_size_bytes{storage_cluster_id="etcd-0"} 7.041024e+06',
      'apiserver_storage_size_bytes{storage_cluster_id="etcd-1"} 1024',
      'apiserver_storage_objects{resource="secrets"} 12',
    ].join('\n');
    expect(storageSizeFromMetrics(text)).toBe(7_041_024);
    expect(storageSizeFromMetrics('apiserver_storage_objects{resource="secrets"} 12\n')).toBeUndefined();
  });
});

/** A cluster whose size the test sets, and which compacts when told to. */
function fakeSpace(size: { bytes: number | undefined }) {
  let revision = 100;
  let compacted = 0;
  const space: ClusterSpace = {
    storageSizeBytes: async () => size.bytes,
    revision: async () => String(revision),
    compactedPast: async (rv) => compacted >= Number(rv),
  };
  return {
    space,
    write: () => revision++,
    compact: () => {
      compacted = revision;
    },
  };
}

describe('the etcd space guard', () => {
  const MiB = 1024 * 1024;

  it('projects the size from the writes since the figure changed, pauses before the threshold, and resumes after a compaction with the freed writes credited', async () => {
    const size = { bytes: (50 * MiB) as number | undefined };
    const cluster = fakeSpace(size);
    let now = 0;
    const guard = new EtcdSpaceGuard(
      cluster.space,
      { quotaBytes: 100 * MiB, share: 0.8, pollMs: 10, maxPauseMs: 60_000 },
      () => now,
      async (ms) => {
        now += ms;
        if (now >= 30) cluster.compact();
      },
    );
    await guard.start();
    await guard.stop();
    expect(guard.state.sizeAtStartBytes).toBe(50 * MiB);
    for (let i = 0; i < 100; i++) guard.noteWrite();
    // Until a change of the figure teaches it, a write is taken for a Helm release (128 KiB).
    expect(guard.projectedBytes()).toBe(50 * MiB + 100 * 128 * 1024);
    // The API server's figure moves: 10 MiB for those 100 writes, ~102 KiB each.
    size.bytes = 60 * MiB;
    await guard.read();
    expect(guard.projectedBytes()).toBe(60 * MiB);
    for (let i = 0; i < 199; i++) guard.noteWrite();
    expect(guard.paused).toBe(false);
    guard.noteWrite();
    expect(guard.paused, 'the projection reached 80 MiB before the figure did').toBe(true);
    cluster.write();
    expect(await guard.waitForCompaction()).toBe(true);
    expect(guard.paused).toBe(false);
    expect(guard.state.pausedMs).toBeGreaterThanOrEqual(30);
    // The 300 writes before the pause freed their old revisions: the next 300 fit in those pages.
    for (let i = 0; i < 300; i++) guard.noteWrite();
    expect(guard.state.pauses).toBe(1);
    for (let i = 0; i < 200; i++) guard.noteWrite();
    expect(guard.state.pauses).toBe(2);
  });

  it('etcd over the threshold before the sweep began: no pause without writes, then progress by half the room left per compaction', async () => {
    const size = { bytes: (90 * MiB) as number | undefined };
    const cluster = fakeSpace(size);
    let now = 0;
    const guard = new EtcdSpaceGuard(
      cluster.space,
      { quotaBytes: 100 * MiB, share: 0.8, pollMs: 10 },
      () => now,
      async (ms) => {
        now += ms;
        cluster.compact();
      },
    );
    await guard.start();
    await guard.stop();
    await guard.read();
    expect(guard.paused, 'filled by others, not by the sweep').toBe(false);
    guard.noteWrite();
    expect(guard.paused).toBe(true);
    cluster.write();
    expect(await guard.waitForCompaction()).toBe(true);
    // (100 MiB - 90 MiB - 128 KiB) / 2 at 128 KiB a write: 39 more writes before the next pause.
    for (let i = 0; i < 39; i++) guard.noteWrite();
    expect(guard.state.pauses).toBe(1);
    guard.noteWrite();
    expect(guard.state.pauses).toBe(2);
  });

  it('gives up waiting at maxPauseMs or the deadline, and refuses a quota or a share that make no sense', async () => {
    const size = { bytes: (50 * MiB) as number | undefined };
    const cluster = fakeSpace(size);
    let now = 0;
    const wait = async (ms: number) => {
      now += ms;
    };
    const guard = new EtcdSpaceGuard(
      cluster.space,
      { quotaBytes: 40 * MiB, share: 0.5, pollMs: 100, maxPauseMs: 1000 },
      () => now,
      wait,
    );
    await guard.start();
    await guard.stop();
    guard.noteWrite();
    expect(guard.paused).toBe(true);
    expect(await guard.waitForCompaction(500)).toBe(false);
    expect(guard.state.gaveUp).toBeUndefined();
    expect(await guard.waitForCompaction()).toBe(false);
    expect(guard.state.gaveUp).toBe(true);
    expect(() => new EtcdSpaceGuard(cluster.space, { quotaBytes: 0, share: 0.8 })).toThrow(/quota/);
    expect(() => new EtcdSpaceGuard(cluster.space, { quotaBytes: MiB, share: 1.5 })).toThrow(/share/);
  });

  it('a sweep that meets the threshold stops at an exact checkpoint, saves it, waits for the compaction and ends having written every Secret once', async () => {
    const MiBs = { bytes: (10 * MiB) as number | undefined };
    const cluster = fakeSpace(MiBs);
    // The API server compacts every 20 ms here.
    const compactions = setInterval(() => cluster.compact(), 20);
    const { store, patched } = memoryStore(60);
    const saved: string[] = [];
    const writing: typeof store = {
      ...store,
      space: cluster.space,
      async patchMetadata(ns, name, patch) {
        const got = await store.patchMetadata(ns, name, patch);
        cluster.write();
        // The 20th write takes etcd over 80% of its quota; the compaction comes a little later.
        if (patched.length === 20) MiBs.bytes = 90 * MiB;
        return got;
      },
    };
    const report = await sweep({
      store: writing,
      targetKeyVersionId: 'v2',
      pageSize: 10,
      concurrency: 2,
      etcdSpace: { quotaBytes: 100 * MiB, share: 0.8, pollMs: 5 },
      onCheckpoint: (c) => void saved.push(c.resumeAfter ?? c.continueToken ?? ''),
    }).finally(() => clearInterval(compactions));
    expect(report).toMatchObject({ complete: true, total: 60, rewritten: 60 });
    expect(report.etcdSpace).toMatchObject({ quotaBytes: 100 * MiB, share: 0.8, sizeAtStartBytes: 10 * MiB });
    expect(report.etcdSpace?.pauses).toBeGreaterThanOrEqual(1);
    expect(patched).toHaveLength(60);
    expect(new Set(patched).size).toBe(60);
    expect(saved.length).toBeGreaterThan(0);
  });
});

describe('API Priority and Fairness', () => {
  it('deploy/apf.yaml is the objects the grant step applies', () => {
    const text = readFileSync(join(__dirname, '..', '..', 'deploy', 'apf.yaml'), 'utf8');
    const docs = parseAllDocuments(text)
      .map((d) => d.toJSON())
      .filter(Boolean);
    expect(docs).toEqual([priorityLevel(), flowSchema()]);
    expect(flowControlManifest()).toEqual(docs);
    expect(flowSchema(['a', 'b']).spec.rules[0]?.subjects).toEqual([
      { kind: 'User', user: { name: 'a' } },
      { kind: 'User', user: { name: 'b' } },
    ]);
    expect(() => flowSchema([])).toThrow(/at least one user/);
  });
});

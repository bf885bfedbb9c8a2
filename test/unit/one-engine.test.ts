import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SweepContext, sweepCommand } from '../../bin/reencrypt-command';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import type { Cluster } from '../../shared/cluster/kube';
import { unproven } from '../../shared/cluster/sealing';
import { loadConfig } from '../../shared/config';
import { enableEncryption } from '../../shared/encryption/enable';
import { SentinelError } from '../../shared/errors';
import { type JobCluster, runInCluster } from '../../shared/jobs/invocation';
import { type JobPayload, jobIdFor, parseJobPayload } from '../../shared/jobs/payload';
import type { ClusterState, StateAdapter } from '../../shared/jobs/store';
import { createLogger } from '../../shared/log';
import { KEY_VERSION_ANNOTATION, ROTATION_TIME_ANNOTATION } from '../../shared/reencrypt/annotations';
import type { Invocation } from '../../shared/runtime/handler';
import type { Services } from '../../shared/runtime/services';
import { emulatorClients } from '../helpers/emulator';
import { memoryStore } from '../helpers/memory-store';

/**
 * One engine, three entry points: the same scenario (a run dies half-way through the sweep, as an expired
 * kubeconfig ends one with a 401; a run is stopped by its budget; the next run resumes) driven through the
 * function's invocation, the CLI's sweep and `enable`, each with its own ports. Whichever entry point runs
 * it, every Secret is written exactly once and the census confirms it.
 */
const COUNT = 45;
const CRASH_AT = 23;
const log = createLogger({ level: 'error', sink: () => {} });
const unauthorized = () =>
  new SentinelError('permanent', 'Unauthorized', { code: 'Unauthorized', statusCode: 401 });

/** Secrets in memory whose `CRASH_AT`th write fails once with a 401; `writes` counts writes per Secret. */
function cluster() {
  const m = memoryStore(COUNT);
  let attempts = 0;
  let crash = true;
  m.hooks.beforePatch = () => {
    if (crash && ++attempts === CRASH_AT) {
      crash = false;
      throw unauthorized();
    }
  };
  const writes = () => {
    const counts = new Map<string, number>();
    for (const name of m.patched) counts.set(name, (counts.get(name) ?? 0) + 1);
    return counts;
  };
  const jobCluster: JobCluster = {
    secrets: m.store,
    // The API servers' metrics cannot be read here: nothing is proven, marks count as they are.
    getRaw: async () => ({ status: 403, body: 'forbidden' }),
    apiServerIdentities: async () => undefined,
  };
  return { ...m, writes, jobCluster };
}

function expectEachWrittenOnce(writes: Map<string, number>) {
  expect(writes.size).toBe(COUNT);
  expect(
    [...writes.values()].every((n) => n === 1),
    JSON.stringify([...writes]),
  ).toBe(true);
}

let cloud: CloudEmulator;
beforeAll(async () => {
  cloud = await CloudEmulator.start();
});
afterAll(async () => {
  await cloud.stop();
});

describe('one engine: the function, the CLI and enable resume the same way', () => {
  /** The function's invocations, with the state in memory and FC's async invocations captured. */
  function functionEntry() {
    const key = cloud.createKey();
    const c = cluster();
    let stored: ClusterState = {};
    const state: StateAdapter = {
      load: async () => structuredClone(stored),
      save: async (s) => {
        stored = structuredClone(s);
      },
    };
    const handedOver: JobPayload[] = [];
    const services = {
      clients: emulatorClients(cloud, cloud.user),
      invoker: {
        invokeAsync: async (_fn: string, payload: string) => {
          handedOver.push(parseJobPayload(payload));
          return {};
        },
      },
      notifier: { notify: async () => [] },
    } as unknown as Services;
    const config = loadConfig({
      SENTINEL_REGION: cloud.state.region,
      SENTINEL_REENCRYPT_ADOPTION_DELAY: '0s',
      SENTINEL_REENCRYPT_PAGE_SIZE: '10',
      SENTINEL_REENCRYPT_CONCURRENCY: '2',
      SENTINEL_REENCRYPT_BUDGET_MARGIN: '0s',
    });
    const invocation = (deadline: number): Invocation => ({
      requestId: 'r',
      log,
      config,
      context: { requestId: 'r' },
      deadline,
      remainingMs: () => deadline - Date.now(),
      now: Date.now,
    });
    const job: JobPayload = {
      version: 1,
      jobId: jobIdFor('c-engine', key.keyId, key.primaryKeyVersion),
      clusterId: 'c-engine',
      keyId: key.keyId,
      keyVersionId: key.primaryKeyVersion,
      requestedAt: new Date(),
      reason: 'test',
    };
    const run = (payload: JobPayload, deadline = Date.now() + 60_000) =>
      runInCluster(payload, invocation(deadline), services, c.jobCluster, state);
    return {
      c,
      job,
      run,
      handedOver,
      stored: () => stored,
      setStored: (s: ClusterState) => {
        stored = s;
      },
    };
  }

  it('the function: an invocation that died is retried by FC and resumes from the progress it saved', async () => {
    const { c, job, run, stored } = functionEntry();
    await expect(run(job)).rejects.toThrow(/Unauthorized/);
    expect(stored().job?.checkpoint?.counters.total ?? 0).toBeGreaterThan(0);
    // FC retries the same payload; the checkpoint saved in the state is further along.
    const retried = await run(job);
    expect(retried).toMatchObject({ status: 'completed', census: { total: COUNT, done: COUNT } });
    expect(stored()).toMatchObject({ completedKeyVersion: job.keyVersionId, job: { phase: 'completed' } });
    expectEachWrittenOnce(c.writes());
  });

  it('the function: a spent budget hands over to the next invocation, which goes on from there', async () => {
    const { c, job, run, handedOver } = functionEntry();
    c.hooks.beforePatch = undefined;
    // A deadline already past still moves the job by one Secret per invocation (no livelock); the third
    // invocation gets time enough.
    const first = await run(job, Date.now() - 1);
    expect(first.status).toBe('continued');
    const second = await run(handedOver[0] as JobPayload, Date.now() - 1);
    expect(second.status).toBe('continued');
    expect(handedOver.map((p) => p.checkpoint?.invocation)).toEqual([2, 3]);
    const third = await run(handedOver[1] as JobPayload);
    expect(third).toMatchObject({
      status: 'completed',
      invocation: 3,
      census: { total: COUNT, done: COUNT },
    });
    expectEachWrittenOnce(c.writes());
  });

  /** The CLI's sweep with a checkpoint file, on the Secrets in memory. */
  function cliEntry() {
    const c = cluster();
    const checkpoint = join(mkdtempSync(join(tmpdir(), 'engine-')), 'checkpoint.json');
    const notes: string[] = [];
    const out = {
      start: () => {},
      progress: () => {},
      note: (m: string) => notes.push(m),
      finish: () => {},
    };
    const ctx: SweepContext = {
      strategy: 'annotate',
      concurrency: 2,
      pageSize: 10,
      secrets: c.store,
      proof: { evidence: unproven('no --cluster-id'), requireProof: false, keyVersion: 'v-cli' },
      estimate: async () => {
        throw new Error('no dry run here');
      },
    };
    const flags = (more: { timeBudget?: string } = {}) => ({
      namespace: [],
      excludeNamespace: [],
      concurrency: '2',
      pageSize: '10',
      strategy: 'annotate',
      keyVersion: 'v-cli',
      checkpoint,
      ...more,
    });
    return {
      c,
      checkpoint,
      notes,
      run: (more?: { timeBudget?: string }) => sweepCommand(flags(more), out, ctx),
    };
  }

  it('the CLI: a run that died resumes from its checkpoint file', async () => {
    const { c, checkpoint, run } = cliEntry();
    await expect(run()).rejects.toThrow(/Unauthorized/);
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8')) as { sweep?: { counters: { total: number } } };
    expect(saved.sweep?.counters.total ?? 0).toBeGreaterThan(0);
    expect(await run()).toBe(0);
    expectEachWrittenOnce(c.writes());
    expect(() => readFileSync(checkpoint), 'a completed job leaves no checkpoint').toThrow(/ENOENT/);
  });

  it('the CLI: a spent --time-budget stops with a checkpoint, and the next run goes on from it', async () => {
    const { c, checkpoint, run } = cliEntry();
    c.hooks.beforePatch = undefined;
    expect(await run({ timeBudget: '0ms' })).toBe(1);
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8')) as { sweep?: { counters: { total: number } } };
    expect(saved.sweep?.counters.total).toBe(1);
    expect(await run()).toBe(0);
    expectEachWrittenOnce(c.writes());
  });

  it('the CLI: a checkpoint file edited to claim the sweep further along is refused, and nothing is written', async () => {
    const { c, checkpoint, run } = cliEntry();
    c.hooks.beforePatch = undefined;
    expect(await run({ timeBudget: '0ms' })).toBe(1);
    const writes = [...c.writes().values()].reduce((a, b) => a + b, 0);
    const edited = JSON.parse(readFileSync(checkpoint, 'utf8'));
    edited.phase = 'verifying';
    edited.sweep.counters = { total: 3, rewritten: 3, alreadyCurrent: 0, gone: 0, failed: 0 };
    writeFileSync(checkpoint, JSON.stringify(edited));
    await expect(run()).rejects.toThrow(/does not verify/);
    expect([...c.writes().values()].reduce((a, b) => a + b, 0)).toBe(writes);
  });

  it('enable: a run that died is run again; the marks it wrote are skipped, nothing else is kept', async () => {
    const key = cloud.createKey();
    const created = new Date(cloud.now() - 86_400_000).toISOString();
    // A cluster already switched on with the key (the run died after the switch, during its sweep).
    const target = cloud.addCluster({
      clusterId: 'c-engine-enable',
      kubeconfig: 'unused',
      clusterSpec: 'ack.pro.small',
      created,
      encryptionKeyId: key.keyId,
      disableEncryption: false,
    });
    const c = cluster();
    const run = () =>
      enableEncryption(
        {
          clients: emulatorClients(cloud, cloud.user),
          openCluster: async () => ({ ...c.jobCluster, close: () => {} }) as unknown as Cluster,
          waits: { pollMs: 10, runningMs: 1_000, evidenceMs: 50 },
          now: () => cloud.now(),
          log,
        },
        { clusterId: target.clusterId, keyId: key.keyId },
      );
    const first = await run();
    expect(first.outcome).toBe('failed');
    expect(first.steps.at(-1)).toMatchObject({ step: 'sweep', status: 'failed' });
    const second = await run();
    expect(second.outcome).toBe('enabled');
    expect(second.census).toEqual({ total: COUNT, done: COUNT });
    expectEachWrittenOnce(c.writes());
  });

  it('encryption turned off and on again: the job stops while off, then trusts no mark written before it went on', async () => {
    const { c, job, run, stored, setStored } = functionEntry();
    c.hooks.beforePatch = undefined;
    // Every Secret carries this version's mark, written before encryption went off (kept by a GET-modify-PUT
    // made while it was off: stored in plaintext all the same).
    for (const secret of c.secrets)
      secret.annotations = {
        [KEY_VERSION_ANNOTATION]: job.keyVersionId,
        [ROTATION_TIME_ANNOTATION]: '2026-01-01T00:00:00Z',
      };
    setStored({ encryptionOffSince: '2026-06-01T00:00:00.000Z' });
    expect(await run(job)).toMatchObject({ status: 'encryption-off' });
    expect(c.patched).toEqual([]);
    setStored({ marksSince: new Date(Date.now() - 1_000).toISOString() });
    const done = await run(job);
    expect(done).toMatchObject({ status: 'completed', census: { total: COUNT, done: COUNT } });
    expectEachWrittenOnce(c.writes());
    expect(stored().job?.report?.marksSince).toBeDefined();
    // Without the state's marksSince those marks would have been trusted: nothing written.
  });
});

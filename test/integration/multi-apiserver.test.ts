import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as $Kms from '@alicloud/kms20160120';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BalancerMode } from '../../sandbox/controlplane/load-balancer';
import { type Sandbox, sandboxUserClients, startSandbox } from '../../sandbox/index';
import {
  apiServerIdentities,
  type Cluster,
  getRaw,
  loadKubeConfig,
  openCluster,
} from '../../shared/cluster/kube';
import { CLOCK_MARGIN_MS, readSealingEvidence } from '../../shared/cluster/sealing';
import { loadConfig } from '../../shared/config';
import { readSecretEvidence } from '../../shared/etcd/evidence';
import { runInCluster } from '../../shared/jobs/invocation';
import { type JobPayload, jobIdFor } from '../../shared/jobs/payload';
import type { ClusterState, StateAdapter } from '../../shared/jobs/store';
import { describeKey, type KeyInfo } from '../../shared/kms/keys';
import { createLogger } from '../../shared/log';
import { SEALED_UNDER_ANNOTATION } from '../../shared/reencrypt/annotations';
import type { Invocation } from '../../shared/runtime/handler';
import type { Services } from '../../shared/runtime/services';
import { emulatorClients } from '../helpers/emulator';
import { coreApi } from '../helpers/sandbox';
import { seedSecrets } from '../helpers/secrets';

/**
 * A managed control plane's shape in the sandbox: three kube-apiservers on one etcd behind a TCP load
 * balancer, each with its own identity, the ACK plugin's constant key id (only a restart makes a new seed),
 * and a suite identity that may not list their leases. One control plane for every case (three API servers
 * take a while to start on two cores): first the proof, then the sandbox itself.
 *
 * The proof: one of the three restarted after a rotation is the case the suite used to call proven (a sticky
 * balancer keeps it on the restarted one); every balancer mode, with and without the identity leases, must
 * claim nothing, and etcd must agree; all three restarted is proven, and etcd shows every Secret under the new
 * version.
 */
const NAMESPACE = 'multi-proof';
const COUNT = 24;
const MODES: BalancerMode[] = ['round-robin', 'random', 'sticky'];
const log = createLogger({ level: 'error', sink: () => {} });
let sandbox: Sandbox;
let cluster: Cluster;
let key: KeyInfo;
let version: string;

let pinned: number;
const cp = () => sandbox.controlPlane;

/**
 * The suite's cluster as its identity reads it (it may not list the leases), or with the leases listed by an
 * identity that may (the admin's): what a suite granted `list` on leases sees.
 */
const asSuite = (leases: boolean): Cluster =>
  leases
    ? {
        ...cluster,
        apiServerIdentities: () => apiServerIdentities(loadKubeConfig({ path: sandbox.info.kubeconfig })),
      }
    : cluster;

/** Secrets of the namespace per key version that sealed them, from etcd itself. */
async function sealedByVersion(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const s of await readSecretEvidence(sandbox.info.etcd))
    if (s.namespace === NAMESPACE)
      counts[s.sealedByVersion ?? s.storage] = (counts[s.sealedByVersion ?? s.storage] ?? 0) + 1;
  return counts;
}

/** The function's job, run in this test against the suite's cluster, with its state kept in memory. */
async function runJob(leases: boolean, state: { stored: ClusterState }) {
  const { info, cloud } = sandbox;
  const config = loadConfig({
    SENTINEL_REGION: info.cloud.region,
    SENTINEL_REENCRYPT_ADOPTION_DELAY: '0s',
    SENTINEL_REENCRYPT_BUDGET_MARGIN: '0s',
  });
  const inv: Invocation = {
    requestId: 'r',
    log,
    config,
    context: { requestId: 'r' },
    deadline: Date.now() + 120_000,
    remainingMs: () => 120_000,
    now: Date.now,
  };
  const services = {
    clients: emulatorClients(cloud, cloud.user),
    invoker: { invokeAsync: async () => ({}) },
    notifier: { notify: async () => [] },
  } as unknown as Services;
  const adapter: StateAdapter = {
    load: async () => structuredClone(state.stored),
    save: async (s) => {
      state.stored = structuredClone(s);
    },
  };
  const job: JobPayload = {
    version: 1,
    jobId: jobIdFor(info.cloud.clusterId, key.keyId, version),
    clusterId: info.cloud.clusterId,
    keyId: key.keyId,
    keyVersionId: version,
    requestedAt: new Date(),
    reason: 'test',
  };
  return runInCluster(job, inv, services, asSuite(leases), adapter);
}

/** Whether any Secret of the namespace carries a mark written under proof. */
async function proofMarks(): Promise<string[]> {
  const list = await coreApi(sandbox.info.kubeconfig).listNamespacedSecret({ namespace: NAMESPACE });
  return list.items
    .filter((s) => s.metadata?.annotations?.[SEALED_UNDER_ANNOTATION] !== undefined)
    .map((s) => s.metadata?.name ?? '');
}

/** The index of the API server that answers this machine through the balancer now (its `apiserver_id_hash`). */
async function answering(): Promise<number> {
  const id = (text: string) => /apiserver_id_hash="([^"]+)"/.exec(text)?.[1];
  const through = id((await getRaw(loadKubeConfig({ path: sandbox.info.kubeconfig }), '/metrics')).body);
  for (const [i] of sandbox.info.apiServers.entries())
    if (id((await cp().adminRequest('GET', '/metrics', undefined, i)).body) === through) return i;
  throw new Error('no API server answered as the balancer did');
}

beforeAll(async () => {
  sandbox = await startSandbox({
    plugin: 'constant-key-id',
    apiServers: 3,
    loadBalancer: 'sticky',
    leaseAccess: false,
  });
  // The one this machine is kept on by the sticky balancer is restarted first below.
  pinned = await answering();
  await seedSecrets(coreApi(sandbox.info.kubeconfig), { namespaces: [NAMESPACE], count: COUNT });
  cluster = openCluster(readFileSync(sandbox.info.restrictedKubeconfig, 'utf8'));
  const user = sandboxUserClients(sandbox.info);
  const r = await user.kms.createKeyVersion(
    new $Kms.CreateKeyVersionRequest({ keyId: sandbox.info.cloud.kmsKeyId }),
  );
  version = r.keyVersion?.keyVersionId ?? '';
  key = await describeKey(user, sandbox.info.cloud.kmsKeyId);
  expect(key.primaryKeyVersion).toBe(version);
  // A start counts as after the rotation only CLOCK_MARGIN_MS after LastRotationDate.
  await sleep(CLOCK_MARGIN_MS + 500);
  await cp().restartApiServer(pinned);
}, 300_000);

afterAll(async () => {
  cluster?.close();
  await sandbox?.stop();
});

describe('three API servers, the ACK plugin, one of them restarted after the rotation', () => {
  let before: Record<string, number>;

  it.each(MODES.flatMap((mode) => [true, false].map((leases) => [mode, leases] as const)))(
    '%s balancer, leases readable: %s: never proven',
    async (mode, leases) => {
      before ??= await sealedByVersion();
      cp().setLoadBalancerMode(mode);
      const e = await readSealingEvidence(asSuite(leases), key);
      expect(e.verdict, e.reason).not.toBe('effective');
      expect(e.token).toBeUndefined();
      if (mode === 'sticky')
        expect(e.reason).toMatch(
          leases ? /2 of 3 API server\(s\) never answered/ : /how many serve the cluster is not known/,
        );
    },
  );

  it('a job through the balancer that sees all three waits for a new seed: no write, etcd unchanged', async () => {
    cp().setLoadBalancerMode('round-robin');
    const state = { stored: {} as ClusterState };
    const run = await runJob(true, state);
    expect(run.status).toBe('waiting-for-new-seed');
    expect(state.stored.completedKeyVersion).toBeUndefined();
    expect(await proofMarks()).toEqual([]);
    expect(await sealedByVersion()).toEqual(before);
  });

  it('a job kept on the restarted one without the leases rewrites, but claims nothing and writes no proof mark', async () => {
    cp().setLoadBalancerMode('sticky');
    const state = { stored: {} as ClusterState };
    const run = await runJob(false, state);
    expect(run).toMatchObject({ status: 'completed', proof: 'unproven', verified: false });
    expect(state.stored).toMatchObject({
      completedProof: 'unproven',
      job: { report: { reason: expect.stringMatching(/^rewritten, not proven/) } },
    });
    expect(await proofMarks()).toEqual([]);
    // The rewrites went through the restarted one; the other two still seal what they write under the old version.
    const direct = await sandbox.controlPlane.adminRequest(
      'POST',
      `/api/v1/namespaces/${NAMESPACE}/secrets`,
      { metadata: { name: 'written-through-apiserver-1' }, stringData: { k: 'v' } },
      1,
    );
    expect(direct.status).toBe(201);
    const stored = (await readSecretEvidence(sandbox.info.etcd)).find(
      (s) => s.name === 'written-through-apiserver-1',
    );
    expect(stored?.sealedByVersion, 'apiserver-1 still seals under the old version').not.toBe(version);
  });
});

describe('all three restarted after the rotation', () => {
  it('proven, and every Secret is sealed under the new version in etcd', async () => {
    for (const i of [0, 1, 2].filter((i) => i !== pinned)) await cp().restartApiServer(i);
    cp().setLoadBalancerMode('round-robin');
    const e = await readSealingEvidence(asSuite(true), key);
    expect(e.verdict, e.reason).toBe('effective');
    expect(e.apiServers.map((a) => a.state)).toEqual(['restarted', 'restarted', 'restarted']);
    const state = { stored: {} as ClusterState };
    const run = await runJob(true, state);
    expect(run).toMatchObject({ status: 'completed', proof: 'proven', verified: true });
    expect(Object.keys(await sealedByVersion())).toEqual([version]);
    expect((await proofMarks()).length).toBeGreaterThanOrEqual(COUNT);
  });
});

const IDENTITY_LEASES =
  '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?labelSelector=apiserver.kubernetes.io%2Fidentity%3Dkube-apiserver';

interface Lease {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { renewTime?: string; leaseDurationSeconds?: number };
}

const idHash = (text: string) => /apiserver_id_hash="([^"]+)"/.exec(text)?.[1];
const startTime = (text: string) => /^process_start_time_seconds (\S+)$/m.exec(text)?.[1];

/** `apiserver_id_hash` of the API server that answered each of `n` GETs of /metrics on new connections. */
async function sampleIds(n: number): Promise<string[]> {
  const kc = loadKubeConfig({ path: cp().info.kubeconfig });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await getRaw(kc, '/metrics');
    expect(res.status).toBe(200);
    ids.push(idHash(res.body) ?? 'none');
  }
  return ids;
}

describe('three API servers behind a load balancer (the sandbox itself)', () => {
  it('have three identities: three live leases, and three apiserver_id_hash values through the balancer', async () => {
    const res = await cp().adminRequest('GET', IDENTITY_LEASES);
    expect(res.status).toBe(200);
    const leases = (JSON.parse(res.body) as { items: Lease[] }).items;
    const live = leases.filter(
      (l) => Date.parse(l.spec.renewTime ?? '') + (l.spec.leaseDurationSeconds ?? 0) * 1000 > Date.now(),
    );
    expect(new Set(live.map((l) => l.metadata.name)).size).toBe(3);
    expect(live.map((l) => l.metadata.labels?.['kubernetes.io/hostname']).sort()).toEqual(
      cp()
        .info.apiServers.map((s) => s.hostname)
        .sort(),
    );
    // Round-robin: six new connections reach each server twice. The metrics name the leases' identities.
    const ids = await sampleIds(6);
    const expected = live.map((l) => `sha256:${createHash('sha256').update(l.metadata.name).digest('hex')}`);
    expect(new Set(ids)).toEqual(new Set(expected));
  });

  it('sticky keeps every connection of this machine on one server; random reaches more than one', async () => {
    try {
      cp().setLoadBalancerMode('sticky');
      expect(cp().info.loadBalancer?.mode).toBe('sticky');
      expect(new Set(await sampleIds(8)).size).toBe(1);
      cp().setLoadBalancerMode('random');
      expect(new Set(await sampleIds(30)).size).toBeGreaterThan(1);
    } finally {
      cp().setLoadBalancerMode('round-robin');
    }
  });

  it('restarts one API server alone: only its process start changes, and it keeps its identity', async () => {
    const read = async () =>
      Promise.all(
        cp().info.apiServers.map(async (_, i) => {
          const res = await cp().adminRequest('GET', '/metrics', undefined, i);
          return { started: startTime(res.body), id: idHash(res.body) };
        }),
      );
    const before = await read();
    await cp().restartApiServer(1);
    const after = await read();
    expect(after.map((s) => s.id)).toEqual(before.map((s) => s.id));
    expect(after[0]?.started).toBe(before[0]?.started);
    expect(after[2]?.started).toBe(before[2]?.started);
    expect(Number(after[1]?.started)).toBeGreaterThan(Number(before[1]?.started));
  });

  it("keeps the leases from the suite's identity (403) while it still reads /metrics", async () => {
    const kc = loadKubeConfig({ path: cp().info.restrictedKubeconfig });
    expect(cp().info.leaseAccess).toBe(false);
    expect((await getRaw(kc, IDENTITY_LEASES)).status).toBe(403);
    expect((await getRaw(kc, '/metrics')).status).toBe(200);
    expect((await getRaw(kc, '/api/v1/secrets?limit=1')).status).toBe(200);
  });

  it('shares one etcd: a Secret written through any API server is sealed there and readable through all', async () => {
    const ns = 'multi-apiserver';
    await cp().adminRequest('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    const names = cp().info.apiServers.map((s) => `through-${s.name}`);
    for (const [i, name] of names.entries()) {
      const res = await cp().adminRequest(
        'POST',
        `/api/v1/namespaces/${ns}/secrets`,
        { metadata: { name }, stringData: { value: name } },
        i,
      );
      expect(res.status, res.body).toBe(201);
    }
    for (const name of names)
      for (const [i] of cp().info.apiServers.entries()) {
        const res = await cp().adminRequest('GET', `/api/v1/namespaces/${ns}/secrets/${name}`, undefined, i);
        expect(res.status).toBe(200);
        const data = (JSON.parse(res.body) as { data: { value: string } }).data;
        expect(Buffer.from(data.value, 'base64').toString()).toBe(name);
      }
    const stored = await readSecretEvidence(cp().info.etcd, { prefix: `/registry/secrets/${ns}/` });
    expect(stored.map((s) => [s.name, s.storage]).sort()).toEqual(names.map((n) => [n, 'kms-v2']));
  });
});

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as $Kms from '@alicloud/kms20160120';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BalancerMode } from '../../sandbox/controlplane/load-balancer';
import { type Sandbox, sandboxUserClients, startSandbox } from '../../sandbox/index';
import { type Cluster, openCluster } from '../../shared/cluster/kube';
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
 * The proof on a managed control plane's shape: three kube-apiservers behind a load balancer, with the ACK
 * plugin's constant key id, so only a restart makes a new seed. One of the three restarted after a rotation
 * is the case the suite used to call proven (a sticky balancer keeps it on the restarted one); every
 * balancer mode, with and without the identity leases, must claim nothing, and etcd must agree; all three
 * restarted is proven, and etcd shows every Secret under the new version.
 */
const NAMESPACE = 'multi-proof';
const COUNT = 24;
const MODES: BalancerMode[] = ['round-robin', 'random', 'sticky'];
const log = createLogger({ level: 'error', sink: () => {} });
let sandbox: Sandbox;
let cluster: Cluster;
let key: KeyInfo;
let version: string;

/** The suite's cluster as it reads it, or as an identity that may not list the leases reads it. */
const asSuite = (leases: boolean): Cluster =>
  leases ? cluster : { ...cluster, apiServerIdentities: async () => undefined };

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

beforeAll(async () => {
  // Sticky pins this machine to apiserver-0, the one restarted first below.
  sandbox = await startSandbox({ plugin: 'constant-key-id', apiServers: 3, loadBalancer: 'sticky' });
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
  await sandbox.controlPlane.restartApiServer(0);
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
      sandbox.controlPlane.setLoadBalancerMode(mode);
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
    sandbox.controlPlane.setLoadBalancerMode('round-robin');
    const state = { stored: {} as ClusterState };
    const run = await runJob(true, state);
    expect(run.status).toBe('waiting-for-new-seed');
    expect(state.stored.completedKeyVersion).toBeUndefined();
    expect(await proofMarks()).toEqual([]);
    expect(await sealedByVersion()).toEqual(before);
  });

  it('a job kept on the restarted one without the leases rewrites, but claims nothing and writes no proof mark', async () => {
    sandbox.controlPlane.setLoadBalancerMode('sticky');
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
    await sandbox.controlPlane.restartApiServer(1);
    await sandbox.controlPlane.restartApiServer(2);
    sandbox.controlPlane.setLoadBalancerMode('round-robin');
    const e = await readSealingEvidence(cluster, key);
    expect(e.verdict, e.reason).toBe('effective');
    expect(e.apiServers.map((a) => a.state)).toEqual(['restarted', 'restarted', 'restarted']);
    const state = { stored: {} as ClusterState };
    const run = await runJob(true, state);
    expect(run).toMatchObject({ status: 'completed', proof: 'proven', verified: true });
    expect(Object.keys(await sealedByVersion())).toEqual([version]);
    expect((await proofMarks()).length).toBeGreaterThanOrEqual(COUNT);
  });
});

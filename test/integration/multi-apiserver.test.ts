import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../../sandbox/controlplane/controlplane';
import { InProcessKeyProvider } from '../../sandbox/kms-plugin/key-provider';
import { getRaw, loadKubeConfig } from '../../shared/cluster/kube';
import { readSecretEvidence } from '../../shared/etcd/evidence';

/**
 * A managed control plane's shape in the sandbox: three kube-apiservers on one etcd behind a TCP load
 * balancer, each with its own identity, and a suite identity that may not list their leases. One control
 * plane for every case (three API servers take a while to start on two cores).
 */
let cp: ControlPlane;

beforeAll(async () => {
  cp = await ControlPlane.start({
    provider: new InProcessKeyProvider(),
    apiServers: 3,
    loadBalancer: 'round-robin',
    leaseAccess: false,
  });
});

afterAll(async () => {
  await cp?.stop();
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
  const kc = loadKubeConfig({ path: cp.info.kubeconfig });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await getRaw(kc, '/metrics');
    expect(res.status).toBe(200);
    ids.push(idHash(res.body) ?? 'none');
  }
  return ids;
}

describe('three API servers behind a load balancer', () => {
  it('have three identities: three live leases, and three apiserver_id_hash values through the balancer', async () => {
    const res = await cp.adminRequest('GET', IDENTITY_LEASES);
    expect(res.status).toBe(200);
    const leases = (JSON.parse(res.body) as { items: Lease[] }).items;
    const live = leases.filter(
      (l) => Date.parse(l.spec.renewTime ?? '') + (l.spec.leaseDurationSeconds ?? 0) * 1000 > Date.now(),
    );
    expect(new Set(live.map((l) => l.metadata.name)).size).toBe(3);
    expect(live.map((l) => l.metadata.labels?.['kubernetes.io/hostname']).sort()).toEqual(
      cp.info.apiServers.map((s) => s.hostname).sort(),
    );
    // Round-robin: six new connections reach each server twice. The metrics name the leases' identities.
    const ids = await sampleIds(6);
    const expected = live.map((l) => `sha256:${createHash('sha256').update(l.metadata.name).digest('hex')}`);
    expect(new Set(ids)).toEqual(new Set(expected));
  });

  it('sticky keeps every connection of this machine on one server; random reaches more than one', async () => {
    try {
      cp.setLoadBalancerMode('sticky');
      expect(cp.info.loadBalancer?.mode).toBe('sticky');
      expect(new Set(await sampleIds(8)).size).toBe(1);
      cp.setLoadBalancerMode('random');
      expect(new Set(await sampleIds(30)).size).toBeGreaterThan(1);
    } finally {
      cp.setLoadBalancerMode('round-robin');
    }
  });

  it('restarts one API server alone: only its process start changes, and it keeps its identity', async () => {
    const read = async () =>
      Promise.all(
        cp.info.apiServers.map(async (_, i) => {
          const res = await cp.adminRequest('GET', '/metrics', undefined, i);
          return { started: startTime(res.body), id: idHash(res.body) };
        }),
      );
    const before = await read();
    await cp.restartApiServer(1);
    const after = await read();
    expect(after.map((s) => s.id)).toEqual(before.map((s) => s.id));
    expect(after[0]?.started).toBe(before[0]?.started);
    expect(after[2]?.started).toBe(before[2]?.started);
    expect(Number(after[1]?.started)).toBeGreaterThan(Number(before[1]?.started));
  });

  it("keeps the leases from the suite's identity (403) while it still reads /metrics", async () => {
    const kc = loadKubeConfig({ path: cp.info.restrictedKubeconfig });
    expect(cp.info.leaseAccess).toBe(false);
    expect((await getRaw(kc, IDENTITY_LEASES)).status).toBe(403);
    expect((await getRaw(kc, '/metrics')).status).toBe(200);
    expect((await getRaw(kc, '/api/v1/secrets?limit=1')).status).toBe(200);
  });

  it('shares one etcd: a Secret written through any API server is sealed there and readable through all', async () => {
    const ns = 'multi-apiserver';
    await cp.adminRequest('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    const names = cp.info.apiServers.map((s) => `through-${s.name}`);
    for (const [i, name] of names.entries()) {
      const res = await cp.adminRequest(
        'POST',
        `/api/v1/namespaces/${ns}/secrets`,
        { metadata: { name }, stringData: { value: name } },
        i,
      );
      expect(res.status, res.body).toBe(201);
    }
    for (const name of names)
      for (const [i] of cp.info.apiServers.entries()) {
        const res = await cp.adminRequest('GET', `/api/v1/namespaces/${ns}/secrets/${name}`, undefined, i);
        expect(res.status).toBe(200);
        const data = (JSON.parse(res.body) as { data: { value: string } }).data;
        expect(Buffer.from(data.value, 'base64').toString()).toBe(name);
      }
    const stored = await readSecretEvidence(cp.info.etcd, { prefix: `/registry/secrets/${ns}/` });
    expect(stored.map((s) => [s.name, s.storage]).sort()).toEqual(names.map((n) => [n, 'kms-v2']));
  });
});

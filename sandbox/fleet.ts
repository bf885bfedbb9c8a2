import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as $Kms from '@alicloud/kms20160120';
import pLimit from 'p-limit';
import { createHandler as auditHandler } from '../functions/audit';
import { createHandler as rotationWatchHandler } from '../functions/rotation-watch';
import { openCluster } from '../shared/cluster/kube';
import { DONE_RECORD_OBJECT } from '../shared/jobs/done-record';
import { configMapState } from '../shared/jobs/store';
import { TRAIL_LOGSTORE, TRAIL_PROJECT } from './cloud/emulator';
import type { FcHandler } from './cloud/fc';
import { TenantProxy } from './controlplane/tenants';
import { SANDBOX_REPORT_BUCKET, type Sandbox, sandboxUserClients } from './index';

/**
 * A fleet of ACK clusters on the emulator, and the three things a fleet asks of the suite (issue: "a fleet
 * of clusters"): a tick with no rotation, a rotation of one key used by many clusters (with overlapping
 * ticks and a duplicate event), and an audit of many clusters. The clusters are tenants of the sandbox's one
 * real API server (sandbox/controlplane/tenants.ts): each has its own namespaces, so its own state
 * ConfigMap, and the proxy counts every request a tick makes to any of them. The real rotation-watch and
 * audit handlers run behind the emulated FC; the re-encryption function records its tasks instead of
 * sweeping (what is measured is how jobs start, once each).
 */
export interface FleetOptions {
  clusters: number;
  keys: number;
  /** How many clusters the audit covers (the webhook's audit request names up to 100). */
  auditClusters: number;
  progress?: (line: string) => void;
}

export interface FleetFigures {
  clusters: number;
  keys: number;
  /** The first tick: every cluster's state read once (a full check), recorded as done. */
  firstTickMs: number;
  idleTickMs: number;
  idleTickCloudCalls: number;
  idleTickCloudCallsByService: Record<string, number>;
  /** Requests the idle tick made to any cluster's API server. */
  idleTickClusterRequests: number;
  /** Clusters using the rotated key. */
  rotatedClusters: number;
  /** Two overlapping timer ticks and a duplicated ActionTrail event, all at once, until all have answered. */
  rotationTickMs: number;
  jobsStarted: number;
  duplicateJobs: number;
  /** Jobs started for clusters that do not use the rotated key (must be none). */
  strayJobs: number;
  /** Clusters read by the next tick, while those jobs are under way. */
  followUpTickClustersRead: number;
  /** Clusters read by a tick whose done record is not readable, and by the tick after it. */
  unreadableRecordClustersRead: number;
  afterRepairClustersRead: number;
  auditClusters: number;
  auditMs: number;
  /** Clusters in the audit's one report. */
  auditReported: number;
}

const WATCH = 'ack-kms-sentinel-fleet-rotation-watch';
const REENCRYPT = 'ack-kms-sentinel-fleet-reencrypt';
const AUDIT = 'ack-kms-sentinel-fleet-audit';
const STATE_NAMESPACE = 'ack-kms-sentinel';
const FLEET_TAG = { key: 'ack-kms-sentinel-fleet', value: 'bench' };

export const fleetClusterId = (i: number) => `c-fleet-${String(i).padStart(4, '0')}`;

export async function runFleet(sandbox: Sandbox, o: FleetOptions): Promise<FleetFigures> {
  const say = o.progress ?? (() => undefined);
  const { cloud } = sandbox;
  const proxy = await TenantProxy.start(sandbox.info.kubeconfig, sandbox.info.caFile);
  try {
    const keys = Array.from({ length: o.keys }, () => cloud.createKey());
    say(`seeding ${o.clusters} clusters over ${o.keys} keys`);
    const clusterIds = Array.from({ length: o.clusters }, (_, i) => fleetClusterId(i));
    await seedClusters(sandbox, proxy, clusterIds, (i) => keys[i % keys.length]);
    registerFunctions(sandbox);

    let t = Date.now();
    await tick();
    const firstTickMs = Date.now() - t;
    say(`first tick (every cluster read once): ${firstTickMs} ms`);

    cloud.resetCalls();
    const before = proxy.total;
    t = Date.now();
    await tick();
    const idleTickMs = Date.now() - t;
    const idle = cloud.calls;
    const idleTickClusterRequests = proxy.total - before;
    say(
      `idle tick: ${idleTickMs} ms, ${idle.total} cloud calls, ${idleTickClusterRequests} cluster requests`,
    );

    const rotated = keys[0]?.keyId ?? '';
    const users = rotatedUsers(clusterIds, keys.length);
    const rotation = await rotateAndTick(sandbox, rotated);
    say(`rotation of one key (${users.length} clusters): ${rotation.ms} ms`);
    const jobs = reencryptJobs(sandbox);
    const started = new Set(jobs.map((j) => j.clusterId));
    // The jobs are under way (the recorder never completes them): the next tick reads those clusters only.
    const followUpTickClustersRead = await clustersReadBy(proxy, tick);
    // A record no one can read: the tick reads every cluster, and writes a good record again.
    putObject(sandbox, DONE_RECORD_OBJECT, 'not json');
    const unreadableRecordClustersRead = await clustersReadBy(proxy, tick);
    const afterRepairClustersRead = await clustersReadBy(proxy, tick);

    const auditIds = clusterIds.slice(0, o.auditClusters);
    t = Date.now();
    const audit = await runAudit(sandbox, auditIds);
    const auditMs = Date.now() - t;
    say(`audit of ${auditIds.length} clusters: ${auditMs} ms`);
    return {
      clusters: o.clusters,
      keys: o.keys,
      firstTickMs,
      idleTickMs,
      idleTickCloudCalls: idle.total,
      idleTickCloudCallsByService: idle.byService,
      idleTickClusterRequests,
      rotatedClusters: users.length,
      rotationTickMs: rotation.ms,
      jobsStarted: started.size,
      duplicateJobs: jobs.length - new Set(jobs.map((j) => j.jobId)).size,
      strayJobs: [...started].filter((id) => !users.includes(id)).length,
      followUpTickClustersRead,
      unreadableRecordClustersRead,
      afterRepairClustersRead,
      auditClusters: auditIds.length,
      auditMs,
      auditReported: audit,
    };
  } finally {
    await proxy.stop();
  }

  async function tick(): Promise<void> {
    const res = await cloud.functions.invoke(WATCH, timerEvent(), {});
    const answer = JSON.parse(res.body) as { jobs?: unknown[]; errorMessage?: string };
    if (!answer.jobs) throw new Error(`rotation-watch answered ${res.body.slice(0, 300)}`);
  }
}

/** How many distinct clusters (tenants) `run` sent a request to. */
async function clustersReadBy(proxy: TenantProxy, run: () => Promise<void>): Promise<number> {
  const before = new Map(proxy.requests);
  await run();
  return [...proxy.requests].filter(([tenant, n]) => n !== before.get(tenant)).length;
}

function putObject(sandbox: Sandbox, key: string, body: string): void {
  const bucket = sandbox.cloud.state.buckets[SANDBOX_REPORT_BUCKET];
  if (!bucket) throw new Error('the sandbox has no report bucket');
  bucket[key] = { body: Buffer.from(body).toString('base64'), contentType: 'application/json' };
}

const timerEvent = () =>
  Buffer.from(JSON.stringify({ triggerTime: new Date().toISOString(), triggerName: 'poll' }));

/** The clusters of key 0 (cluster i uses key i mod keys). */
const rotatedUsers = (clusterIds: string[], keys: number) => clusterIds.filter((_, i) => i % keys === 0);

/**
 * Each cluster in CS (tagged, with its key and a kubeconfig to its tenant), and in its tenant a state that
 * says it is done with its key's current version, as a fleet looks once the suite has run for a while.
 */
async function seedClusters(
  sandbox: Sandbox,
  proxy: TenantProxy,
  clusterIds: string[],
  keyOf: (i: number) => { keyId: string; primaryKeyVersion: string } | undefined,
): Promise<void> {
  const limit = pLimit(32);
  const admin = openCluster(readFileSync(sandbox.info.kubeconfig, 'utf8'));
  try {
    await Promise.all(
      clusterIds.map((clusterId, i) =>
        limit(async () => {
          const key = keyOf(i);
          if (!key) throw new Error('no key');
          const tenant = `f${i}`;
          const kubeconfig = proxy.kubeconfig(tenant);
          sandbox.cloud.addCluster({
            clusterId,
            name: clusterId,
            profile: 'Default',
            tags: [FLEET_TAG],
            encryptionKeyId: key.keyId,
            disableEncryption: false,
            kubeconfig,
          });
          const cluster = openCluster(kubeconfig);
          try {
            // Namespaces are cluster-scoped: the tenant's own is made under its name on the real API server.
            const name = TenantProxy.namespaceOf(STATE_NAMESPACE, tenant);
            await admin.core.createNamespace({ body: { metadata: { name } } });
            await configMapState(cluster.core, STATE_NAMESPACE).save({
              completedKeyVersion: key.primaryKeyVersion,
              completedAt: new Date().toISOString(),
              completedProof: 'proven',
            });
          } finally {
            cluster.close();
          }
        }),
      ),
    );
  } finally {
    admin.close();
  }
}

function registerFunctions(sandbox: Sandbox): void {
  const { cloud } = sandbox.info;
  const env = {
    SENTINEL_REGION: cloud.region,
    SENTINEL_ACCOUNT_ID: cloud.accountId,
    SENTINEL_CLUSTER_PROFILE: 'Default',
    SENTINEL_CLUSTER_TAGS: `${FLEET_TAG.key}=${FLEET_TAG.value}`,
    SENTINEL_ENDPOINT_KMS: cloud.endpoint,
    SENTINEL_ENDPOINT_CS: cloud.endpoint,
    SENTINEL_ENDPOINT_ACTIONTRAIL: cloud.endpoint,
    SENTINEL_ENDPOINT_FC: cloud.endpoint,
    SENTINEL_ENDPOINT_OSS: cloud.endpoint,
    SENTINEL_ENDPOINT_SLS: cloud.endpoint,
    SENTINEL_STATE_NAMESPACE: STATE_NAMESPACE,
    SENTINEL_REENCRYPT_FUNCTION: REENCRYPT,
    SENTINEL_REPORT_BUCKET: SANDBOX_REPORT_BUCKET,
    // The done record is signed with it (and not used without it).
    SENTINEL_STATE_SECRET: 'fleet-state-secret-0123456789abcdef012345',
    SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
    SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
    SENTINEL_LOG_LEVEL: 'error',
  };
  const quiet = () => undefined;
  const recorder: FcHandler = async () => ({ recorded: true });
  sandbox.cloud.registerFunction({
    name: WATCH,
    handler: rotationWatchHandler({ env, sink: quiet }) as FcHandler,
    timeoutSeconds: 300,
  });
  sandbox.cloud.registerFunction({ name: REENCRYPT, handler: recorder, timeoutSeconds: 900 });
  sandbox.cloud.registerFunction({
    name: AUDIT,
    handler: auditHandler({ env, sink: quiet }) as FcHandler,
    timeoutSeconds: 600,
  });
}

/** Rotates the key, then two overlapping timer ticks and its ActionTrail event delivered twice, all at once. */
async function rotateAndTick(sandbox: Sandbox, keyId: string): Promise<{ ms: number }> {
  const user = sandboxUserClients(sandbox.info);
  await user.kms.createKeyVersion(new $Kms.CreateKeyVersionRequest({ keyId }));
  const event = sandbox.cloud.published.findLast(
    (e) => (e.data as { eventName?: string }).eventName === 'CreateKeyVersion',
  );
  if (!event) throw new Error('the emulator published no CreateKeyVersion event');
  const body = Buffer.from(JSON.stringify(event));
  const t = Date.now();
  const answers = await Promise.all([
    sandbox.cloud.functions.invoke(WATCH, timerEvent(), {}),
    sandbox.cloud.functions.invoke(WATCH, body, {}),
    sandbox.cloud.functions.invoke(WATCH, timerEvent(), {}),
    sandbox.cloud.functions.invoke(WATCH, body, {}),
  ]);
  const ms = Date.now() - t;
  for (const a of answers)
    if (!JSON.parse(a.body).jobs) throw new Error(`rotation-watch answered ${a.body.slice(0, 300)}`);
  await sandbox.cloud.idle();
  return { ms };
}

/** Every re-encryption task FC accepted, with the job each starts. */
function reencryptJobs(sandbox: Sandbox): Array<{ jobId: string; clusterId: string }> {
  return [...sandbox.cloud.functions.tasks.values()]
    .filter((t) => t.functionName === REENCRYPT)
    .map((t) => {
      const payload = JSON.parse(t.payload) as { jobId: string; clusterId: string };
      return { jobId: payload.jobId, clusterId: payload.clusterId };
    });
}

/** The audit of `clusterIds` as the webhook starts it; returns how many clusters its one report covers. */
async function runAudit(sandbox: Sandbox, clusterIds: string[]): Promise<number> {
  const auditId = `audit-${randomBytes(8).toString('hex')}`;
  const res = await sandbox.cloud.functions.invoke(
    AUDIT,
    Buffer.from(JSON.stringify({ auditId, clusterIds })),
    {},
  );
  const answer = JSON.parse(res.body) as { counts?: Record<string, number>; stored?: { json: string } };
  if (!answer.stored) throw new Error(`the audit stored no report: ${res.body.slice(0, 300)}`);
  const object = sandbox.cloud.state.buckets[SANDBOX_REPORT_BUCKET]?.[answer.stored.json];
  if (!object) throw new Error('the audit report is not in the bucket');
  const report = JSON.parse(Buffer.from(object.body, 'base64').toString('utf8')) as {
    clusters: unknown[];
  };
  return report.clusters.length;
}

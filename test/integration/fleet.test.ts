import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox';
import { type FleetFigures, runFleet } from '../../sandbox/fleet';

/**
 * A fleet on the emulator (sandbox/fleet.ts, the same scenario `npm run bench -- --fleet` runs at 1,000
 * clusters): 200 clusters over 4 keys, each a tenant of the sandbox's real API server with its own state.
 * What a fleet asks: a tick with no rotation reads no cluster and costs a bounded number of cloud calls; a
 * rotation of one key starts exactly one job per cluster using it, none twice, across overlapping ticks and a
 * duplicated event; an audit of many clusters ends in one report.
 */
const CLUSTERS = 200;
const KEYS = 4;
const AUDITED = 20;

let sandbox: Sandbox;
let figures: FleetFigures;

beforeAll(async () => {
  sandbox = await startSandbox();
  figures = await runFleet(sandbox, { clusters: CLUSTERS, keys: KEYS, auditClusters: AUDITED });
}, 400_000);

afterAll(async () => {
  await sandbox?.stop();
});

describe('a fleet of clusters', () => {
  it('a tick with no rotation reads no cluster: the cluster listing, one DescribeKey per key, the done record', () => {
    expect(figures.idleTickClusterRequests).toBe(0);
    expect(figures.idleTickCloudCallsByService).toEqual({
      cs: Math.ceil(CLUSTERS / 50),
      kms: KEYS,
      oss: 1,
    });
    expect(figures.idleTickCloudCalls).toBeLessThanOrEqual(50);
  });

  it('a rotation of one key starts exactly one job per cluster using it, across overlapping ticks and a duplicated event', () => {
    expect(figures.rotatedClusters).toBe(CLUSTERS / KEYS);
    expect(figures.jobsStarted).toBe(CLUSTERS / KEYS);
    expect(figures.duplicateJobs).toBe(0);
    expect(figures.strayJobs).toBe(0);
  });

  it('while those jobs are under way, a tick reads their clusters and no other', () => {
    expect(figures.followUpTickClustersRead).toBe(CLUSTERS / KEYS);
  });

  it('a done record no one can read costs one tick that reads every cluster, never a missed rotation', () => {
    expect(figures.unreadableRecordClustersRead).toBe(CLUSTERS);
    expect(figures.afterRepairClustersRead, 'the record is whole again').toBe(CLUSTERS / KEYS);
  });

  it('an audit of many clusters ends in one report covering each', () => {
    expect(figures.auditReported).toBe(AUDITED);
  });
});

import { randomUUID } from 'node:crypto';
import { createHandler as trailVerify } from '../functions/trail-verify';
import { resolveLoopbackSubdomains } from '../sandbox/cloud/dns';
import { CloudEmulator, TRAIL_LOGSTORE, TRAIL_PROJECT } from '../sandbox/cloud/emulator';
import { encodeCursor, trailRecord } from '../sandbox/cloud/sls';
import { parseTrailLogRecord } from '../shared/events';
import { classify } from '../shared/trail/classify';

/**
 * trail-verify must never lag the trail: a batch of 10,000 ActionTrail events, (1) parsed and classified in
 * process, (2) end to end through the handler: SLS PullLogs (protobuf + lz4) from the emulated logstore,
 * parsing, classification, summary.
 */
export interface TrailBenchRow {
  stage: string;
  events: number;
  ms: number;
  perSecond: number;
}

function sampleEvents(n: number, keyId: string) {
  const names = ['Encrypt', 'Decrypt', 'GenerateDataKey', 'DescribeKey', 'ListKeys'];
  return Array.from({ length: n }, (_, i) => ({
    eventId: randomUUID(),
    eventVersion: 1,
    eventName: names[i % names.length] ?? 'Encrypt',
    eventTime: new Date(Date.UTC(2026, 10, 29, 8, 0, 0) + i * 10),
    eventType: 'ApiCall',
    eventRW: 'Read',
    serviceName: 'Kms',
    acsRegion: 'cn-hangzhou',
    recipientAccountId: '1234567890123456',
    requestId: randomUUID(),
    userIdentity:
      i % 3 === 0
        ? { type: 'ram-user', userName: 'ops', accountId: '1234567890123456' }
        : {
            type: 'assumed-role',
            userName: 'aliyuncsmanagedsecurityrole:c-bench',
            accountId: '1234567890123456',
            accessKeyId: 'STS.x',
          },
    requestParameters: { KeyId: keyId },
    ...(i % 997 === 0 ? { errorCode: 'Rejected.Disabled', errorMessage: 'The key is disabled.' } : {}),
  }));
}

export async function runTrailBench(count = 10_000): Promise<TrailBenchRow[]> {
  resolveLoopbackSubdomains();
  const rows: TrailBenchRow[] = [];
  const records = sampleEvents(count, 'key-bench').map((e) => trailRecord(e));

  let t = performance.now();
  const watched = { keys: new Set(['key-bench']), clusters: new Set(['c-bench']) };
  let findings = 0;
  for (const [i, r] of records.entries())
    if (classify(parseTrailLogRecord(r.contents, i), watched)) findings++;
  let ms = performance.now() - t;
  rows.push({
    stage: 'parse + classify (in process)',
    events: count,
    ms: Math.round(ms),
    perSecond: Math.round((count * 1000) / ms),
  });
  if (findings === 0) throw new Error('the bench classified nothing');

  const cloud = await CloudEmulator.start();
  try {
    const key = cloud.createKey('key-bench');
    cloud.addCluster({ clusterId: 'c-bench', kubeconfig: 'x', encryptionKeyId: key.keyId });
    cloud.state.trailLogstore[0] = records;
    const env = {
      SENTINEL_REGION: cloud.state.region,
      SENTINEL_CLUSTER_IDS: 'c-bench',
      SENTINEL_TRAIL_PROJECT: TRAIL_PROJECT,
      SENTINEL_TRAIL_LOGSTORE: TRAIL_LOGSTORE,
      SENTINEL_LOG_LEVEL: 'error',
      ...Object.fromEntries(
        ['KMS', 'CS', 'ACTIONTRAIL', 'FC', 'SLS'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.url]),
      ),
    };
    const handler = trailVerify({ env, sink: () => undefined });
    const event = {
      source: {
        endpoint: cloud.url,
        projectName: TRAIL_PROJECT,
        logstoreName: TRAIL_LOGSTORE,
        shardId: 0,
        beginCursor: encodeCursor(0),
        endCursor: encodeCursor(count),
      },
      parameter: {},
      jobName: 'bench',
      taskId: 'bench',
      cursorTime: 0,
    };
    const context = {
      requestId: 'bench',
      credentials: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
    };
    await handler(Buffer.from(JSON.stringify(event)), context); // warm-up: discovery, connections
    t = performance.now();
    const result = (await handler(Buffer.from(JSON.stringify(event)), context)) as { events: number };
    ms = performance.now() - t;
    if (result.events !== count) throw new Error(`trail-verify saw ${result.events} of ${count} events`);
    rows.push({
      stage: 'trail-verify handler (SLS PullLogs lz4 + parse + classify)',
      events: count,
      ms: Math.round(ms),
      perSecond: Math.round((count * 1000) / ms),
    });
  } finally {
    await cloud.stop();
  }
  return rows;
}

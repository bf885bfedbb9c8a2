import type { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import { discoverClusters } from '../../shared/cluster/discovery';
import { normalizeError } from '../../shared/errors';
import { configMapState } from '../../shared/jobs/store';
import { describeKey } from '../../shared/kms/keys';
import { findManagedRoleEvents } from '../../shared/trail/evidence';
import { Recorder } from '../helpers/recorder';
import { ossReportStore } from '../helpers/report-store';

/** What the suite does when a cloud service or its own state answers something unexpected. */
const caught = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return normalizeError(err);
  }
  throw new Error('expected a failure');
};

describe('answers the suite did not expect', () => {
  it('a state ConfigMap that is not JSON reads as empty with the reason, not a failure on every invocation', async () => {
    const core = {
      readNamespacedConfigMap: async () => ({
        metadata: { resourceVersion: '5' },
        data: { state: '{"completedKeyVersion":"v1", "job": {' },
      }),
    } as unknown as CoreV1Api;
    expect(await configMapState(core, 'ns').load()).toEqual({
      unreadable: 'the state ConfigMap does not hold JSON',
    });
  });

  it('a DescribeKey answer without PrimaryKeyVersion is retried, not dropped as poison input', async () => {
    const clients = { kmsRpc: async () => ({ RequestId: 'r', KeyMetadata: { KeyId: 'key-1' } }) };
    expect(await caught(describeKey(clients, 'key-1'))).toMatchObject({
      kind: 'retryable',
      code: 'MalformedResponse',
    });
  });

  it('cluster discovery pages on when the answer has no total count', async () => {
    const pages: number[] = [];
    const cluster = (i: number) => ({ cluster_id: `c-${i}`, name: `c-${i}`, region_id: 'cn-hangzhou' });
    const clients = {
      csRoa: async (_a: string, _m: string, _p: string, query?: Record<string, string>) => {
        const page = Number(query?.page_number);
        pages.push(page);
        const size = page === 1 ? 50 : 3;
        return { clusters: Array.from({ length: size }, (_, i) => cluster((page - 1) * 50 + i)) };
      },
    };
    const found = await discoverClusters(clients, {
      clusters: { mode: 'discover', regionId: 'cn-hangzhou', tags: {} },
      clusterKeys: {},
    } as Parameters<typeof discoverClusters>[1]);
    expect(pages).toEqual([1, 2]);
    expect(found).toHaveLength(53);
  });

  it('SENTINEL_CLUSTER_KEYS names the key only: whether encryption is on is what CS says', async () => {
    const detail = (caps: Record<string, unknown>) => ({
      csRoa: async () => ({
        cluster_id: 'c-1',
        name: 'c-1',
        meta_data: JSON.stringify({ Capabilities: caps }),
      }),
    });
    const config = {
      clusters: { mode: 'explicit', clusterIds: ['c-1'] },
      clusterKeys: { 'c-1': 'key-mapped' },
    } as Parameters<typeof discoverClusters>[1];
    const [off] = await discoverClusters(detail({ DisableEncryption: true }), config);
    expect(off).toMatchObject({ keyId: 'key-mapped', encryptionEnabled: false });
    const [on] = await discoverClusters(
      detail({ DisableEncryption: false, EncryptionKMSKeyId: 'key-cs' }),
      config,
    );
    expect(on).toMatchObject({ keyId: 'key-mapped', encryptionEnabled: true });
  });

  it('LookupEvents pages share one time window (a NextToken belongs to its query)', async () => {
    const windows: string[] = [];
    const clients = {
      actionTrailRpc: async (_action: string, query: Record<string, string> = {}) => {
        windows.push(`${query.StartTime}..${query.EndTime}`);
        return {
          RequestId: 'r',
          Events: [],
          ...(windows.length < 3 ? { NextToken: `t${windows.length}` } : {}),
        };
      },
    };
    await findManagedRoleEvents(clients, { keyId: 'key-1', since: new Date(Date.now() - 3_600_000) });
    // Three pages, spaced over more than a second, all with the window of the first.
    expect(windows).toHaveLength(3);
    expect(new Set(windows).size).toBe(1);
  });

  describe('OSS through ali-oss', () => {
    let server: Recorder;
    beforeAll(async () => {
      resolveLoopbackSubdomains();
      server = await new Recorder().start();
    });
    afterAll(async () => {
      await server.stop();
    });

    it('a 503 is retryable and keeps its code, status and request id', async () => {
      server.reply((_req, res) => {
        res.writeHead(503, { 'content-type': 'application/xml', 'x-oss-request-id': 'oss-req-1' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>Please reduce your request rate.</Message><RequestId>oss-req-1</RequestId></Error>',
        );
      });
      const store = ossReportStore({
        bucket: 'reports',
        accountId: '1234567890123456',
        region: 'cn-hangzhou',
        credentials: { accessKeyId: 'ak', accessKeySecret: 'sk' },
        endpoints: { oss: { protocol: 'http', host: server.host, url: server.url } },
      });
      expect(await caught(store.latest())).toMatchObject({
        kind: 'retryable',
        code: 'ServiceUnavailable',
        statusCode: 503,
      });
    });
  });
});

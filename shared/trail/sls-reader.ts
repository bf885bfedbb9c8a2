import { $OpenApiUtil, OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import type { CloudCredentials } from '../cloud/credentials';
import { DEFAULT_TIMEOUTS, resolveEndpoint } from '../cloud/endpoints';
import { slsClient } from '../cloud/sls';
import type { SentinelConfig } from '../config';
import { ConfigError, normalizeError, PoisonError } from '../errors';
import type { SlsTriggerEvent } from '../events/sls-trigger';
import { type DecodedLog, decodeLogGroupList } from './log-group';

/**
 * Reads one shard between two cursors `[beginCursor, endCursor)`, as a function behind an SLS trigger must
 * (the trigger event says where, not what). `@alicloud/sls20201230`'s own `pullLogs` is broken (no project in
 * the host, JSON parsing of protobuf: docs/cloud-facts.md#sls-pulllogs), so this uses the same client's `execute` with
 * `bodyType: 'byte'`: the SDK still signs (LOG, HMAC-SHA256), adds STS and decompresses; we decode
 * the protobuf `LogGroupList`. The request asks for deflate, which the SDK inflates with node:zlib: lz4 (the
 * SDK's first choice) needs a native addon that exists per platform, and a bundle built on a Mac or an ARM
 * laptop would ship the wrong one (deploy/build.sh ships none).
 */
export interface ShardRange {
  endpoint: string;
  project: string;
  logstore: string;
  shardId: number;
  beginCursor: string;
  endCursor: string;
}

/** An SLS trigger event that names another project or logstore than the configured trail. */
export class ForeignLogstoreError extends PoisonError {
  constructor(message: string) {
    super(message, { code: 'ForeignLogstore', path: 'source' });
    this.name = 'ForeignLogstoreError';
  }
}

/**
 * Where to read: the shard and cursors from the trigger event, but the project, logstore and endpoint only
 * from configuration. The function signs PullLogs with its STS token; an event naming any endpoint (plain
 * http included) would hand those credentials to whoever may invoke the function.
 */
export function trailRange(
  event: SlsTriggerEvent,
  config: Pick<SentinelConfig, 'trail' | 'endpoints' | 'region'>,
): ShardRange {
  const { project, logstore } = config.trail;
  if (!project || !logstore) {
    throw new ConfigError(
      'SENTINEL_TRAIL_PROJECT and SENTINEL_TRAIL_LOGSTORE must name the trail logstore the SLS trigger reads',
      { path: 'SENTINEL_TRAIL_PROJECT' },
    );
  }
  if (event.source.projectName !== project || event.source.logstoreName !== logstore) {
    throw new ForeignLogstoreError(
      `the SLS trigger event names ${event.source.projectName}/${event.source.logstoreName}, not the configured trail ${project}/${logstore}`,
    );
  }
  return {
    endpoint: resolveEndpoint('sls', config.region, config.endpoints).url,
    project,
    logstore,
    shardId: event.source.shardId,
    beginCursor: event.source.beginCursor,
    endCursor: event.source.endCursor,
  };
}

export interface SlsReaderOptions {
  /** LogGroups per request (1..1000). */
  batch?: number;
  readTimeoutMs?: number;
}

export async function* readShardRange(
  range: ShardRange,
  credentials: CloudCredentials,
  options: SlsReaderOptions = {},
): AsyncGenerator<DecodedLog[]> {
  const url = new URL(range.endpoint);
  const readTimeoutMs = options.readTimeoutMs ?? DEFAULT_TIMEOUTS.readTimeoutMs;
  const client = slsClient(url, credentials, { ...DEFAULT_TIMEOUTS, readTimeoutMs });
  const params = new $OpenApiUtil.Params({
    action: 'PullLogs',
    version: '2020-12-30',
    protocol: url.protocol === 'https:' ? 'HTTPS' : 'HTTP',
    pathname: `/logstores/${range.logstore}/shards/${range.shardId}?type=log`,
    method: 'GET',
    authType: 'AK',
    style: 'ROA',
    reqBodyType: 'none',
    bodyType: 'byte',
  });
  let cursor = range.beginCursor;
  for (let guard = 0; guard < 100_000 && cursor !== range.endCursor; guard++) {
    let res: { headers?: Record<string, string>; body?: Buffer };
    try {
      res = (await client.execute(
        params,
        new $OpenApiUtil.OpenApiRequest({
          hostMap: { project: range.project },
          // The gateway keeps a caller's `Accept-Encoding` (exactly so spelled) instead of choosing lz4.
          headers: { accept: 'application/x-protobuf', 'Accept-Encoding': 'deflate' },
          query: OpenApiUtil.query({
            cursor,
            end_cursor: range.endCursor,
            count: String(options.batch ?? 1000),
          }),
        }),
        new $dara.RuntimeOptions({ readTimeout: readTimeoutMs }),
      )) as { headers?: Record<string, string>; body?: Buffer };
    } catch (err) {
      throw normalizeError(err, { service: 'sls', operation: 'PullLogs' });
    }
    const count = Number(res.headers?.['x-log-count'] ?? '0');
    const next = res.headers?.['x-log-cursor'];
    if (res.body && res.body.length > 0) yield decodeLogGroupList(res.body);
    if (!next || count === 0 || next === cursor) break;
    cursor = next;
  }
}

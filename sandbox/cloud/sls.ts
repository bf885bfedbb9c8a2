import { LogGroupList } from '../../shared/trail/log-group';
import type { LogRecord } from './state';

/**
 * The ActionTrail trail's SLS logstore as `@alicloud/sls20201230` reads it (docs/cloud-facts.md#sls-pulllogs): cursors
 * are base64 of a decimal position, PullLogs answers a protobuf `LogGroupList` compressed as the client asks
 * (an lz4 block without size prefix, or zlib deflate) with `x-log-cursor` / `x-log-count`.
 */
export const encodeCursor = (position: number): string => Buffer.from(String(position)).toString('base64');

export function decodeCursor(cursor: string): number | undefined {
  const text = Buffer.from(cursor, 'base64').toString('utf8');
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** One LogGroup per record (ActionTrail delivers events one by one). */
export function encodeLogGroups(records: LogRecord[]): Buffer {
  const message = LogGroupList.create({
    logGroupList: records.map((r) => ({
      Topic: r.contents.__topic__ ?? '',
      Source: 'actiontrail',
      Logs: [{ Time: r.time, Contents: Object.entries(r.contents).map(([Key, Value]) => ({ Key, Value })) }],
      LogTags: [{ Key: '__tag__:__receive_time__', Value: String(r.time) }],
    })),
  });
  return Buffer.from(LogGroupList.encode(message).finish());
}

/** What the trail writes for an ActionTrail event: the event as a JSON string plus flattened index fields. */
export function trailRecord(event: Record<string, unknown> & { eventTime: Date }): LogRecord {
  const json = JSON.stringify({
    ...event,
    eventTime: event.eventTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
  const identity = (event.userIdentity ?? {}) as Record<string, unknown>;
  const flat: Record<string, string> = {
    __topic__: 'actiontrail_audit_event',
    event: json,
  };
  for (const k of ['eventId', 'eventName', 'eventRW', 'eventType', 'serviceName', 'acsRegion', 'errorCode']) {
    if (event[k] !== undefined) flat[`event.${k}`] = String(event[k]);
  }
  for (const k of ['type', 'userName', 'principalId', 'accountId', 'accessKeyId']) {
    if (identity[k] !== undefined) flat[`event.userIdentity.${k}`] = String(identity[k]);
  }
  return { time: Math.floor(event.eventTime.getTime() / 1000), contents: flat };
}

import protobuf from 'protobufjs';

/**
 * SLS's `LogGroupList` wire format (docs/cloud-facts.md#sls-pulllogs), declared through protobufjs
 * reflection so the function bundles need no .proto file.
 */
const Content = new protobuf.Type('Content')
  .add(new protobuf.Field('Key', 1, 'string'))
  .add(new protobuf.Field('Value', 2, 'string'));
const Log = new protobuf.Type('Log')
  .add(new protobuf.Field('Time', 1, 'uint32'))
  .add(new protobuf.Field('Contents', 2, 'Content', 'repeated'))
  .add(new protobuf.Field('TimeNs', 4, 'fixed32'))
  .add(Content);
const LogTag = new protobuf.Type('LogTag')
  .add(new protobuf.Field('Key', 1, 'string'))
  .add(new protobuf.Field('Value', 2, 'string'));
const LogGroup = new protobuf.Type('LogGroup')
  .add(new protobuf.Field('Logs', 1, 'Log', 'repeated'))
  .add(new protobuf.Field('Category', 2, 'string'))
  .add(new protobuf.Field('Topic', 3, 'string'))
  .add(new protobuf.Field('Source', 4, 'string'))
  .add(new protobuf.Field('LogTags', 6, 'LogTag', 'repeated'))
  .add(Log)
  .add(LogTag);
export const LogGroupList = new protobuf.Type('LogGroupList')
  .add(new protobuf.Field('logGroupList', 1, 'LogGroup', 'repeated'))
  .add(LogGroup);
new protobuf.Root().add(LogGroupList);

export interface DecodedLog {
  time: number;
  topic: string;
  contents: Record<string, string>;
}

interface RawList {
  logGroupList?: Array<{
    Topic?: string;
    Logs?: Array<{ Time?: number; Contents?: Array<{ Key: string; Value: string }> }>;
  }>;
}

export function decodeLogGroupList(bytes: Uint8Array): DecodedLog[] {
  const list = LogGroupList.decode(bytes) as unknown as RawList;
  const out: DecodedLog[] = [];
  for (const group of list.logGroupList ?? []) {
    for (const log of group.Logs ?? []) {
      const contents: Record<string, string> = Object.create(null);
      for (const c of log.Contents ?? []) contents[c.Key] = c.Value;
      out.push({ time: log.Time ?? 0, topic: group.Topic ?? contents.__topic__ ?? '', contents });
    }
  }
  return out;
}

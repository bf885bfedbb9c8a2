import type { IncomingHttpHeaders } from 'node:http';
import type { UserIdentity } from '../../shared/events/actiontrail';
import type { CloudEmulator } from './emulator';

/** An error the emulated API answers with its real code, message and HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A caller the emulator knows: an AccessKey (or STS) and the identity ActionTrail records for it. */
export interface Credential {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
  identity: UserIdentity;
}

export interface RawRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** `<project>` when the Host header is `<project>.<endpoint>` (SLS). */
  hostPrefix?: string;
  sourceIp: string;
}

export interface CallContext {
  emulator: CloudEmulator;
  credential: Credential;
  requestId: string;
  action: string;
  /** RPC parameters (query and form body), or ROA query parameters. */
  params: Record<string, string>;
  req: RawRequest;
}

// @alicloud/fc2 2.6.6 publishes no typings (reference/sdks.md §3.1): the part of its API the suite uses.
declare module '@alicloud/fc2' {
  interface FCConfig {
    accessKeyID: string;
    accessKeySecret: string;
    securityToken?: string;
    region: string;
    endpoint?: string;
    secure?: boolean;
    internal?: boolean;
    timeout?: number;
    headers?: Record<string, string>;
  }
  interface FCResponse<T = unknown> {
    headers: Record<string, string>;
    data: T;
  }
  class FCClient {
    constructor(accountId: string, config: FCConfig);
    /** The API version path prefix; `2023-03-30` reaches FC 3.0 paths (reference/fc-sls.md §1a). */
    version: string;
    get(path: string, query?: Record<string, string>, headers?: Record<string, string>): Promise<FCResponse>;
    post(
      path: string,
      body?: string | Buffer,
      headers?: Record<string, string>,
      queries?: Record<string, string>,
      opts?: { rawBuf?: boolean },
    ): Promise<FCResponse>;
    put(path: string, body?: unknown, headers?: Record<string, string>): Promise<FCResponse>;
  }
  export = FCClient;
}

// ali-oss 6.23 (the official OSS SDK) publishes no typings here: the part the suite uses.
declare module 'ali-oss' {
  interface OSSOptions {
    accessKeyId: string;
    accessKeySecret: string;
    stsToken?: string;
    region?: string;
    endpoint?: string;
    bucket?: string;
    secure?: boolean;
    timeout?: number;
  }
  interface PutResult {
    name: string;
    url: string;
    res: { status: number };
  }
  interface GetResult {
    content: Buffer;
    res: { status: number; headers: Record<string, string> };
  }
  class OSS {
    constructor(options: OSSOptions);
    put(
      name: string,
      file: Buffer,
      options?: { headers?: Record<string, string>; mime?: string },
    ): Promise<PutResult>;
    get(name: string, options?: { headers?: Record<string, string> }): Promise<GetResult>;
    signatureUrl(name: string, options?: { expires?: number }): string;
    getBucketInfo(
      name: string,
    ): Promise<{ bucket: { Name?: string; Location?: string; Owner?: { ID?: string } } }>;
    putBucket(
      name: string,
      options?: { storageClass?: string; acl?: string },
    ): Promise<{ bucket: string | null }>;
  }
  export = OSS;
}

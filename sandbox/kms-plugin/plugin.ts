import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { redactString } from '../../shared/log';
import type { KeyProvider } from './key-provider';

/** Limits kube-apiserver enforces on a KMS v2 plugin (docs/cloud-facts.md#kms-v2-internals). */
const KEY_ID_MAX_BYTES = 1024;
const CIPHERTEXT_MAX_BYTES = 1024;
const ANNOTATIONS_MAX_BYTES = 32 * 1024;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;

type Annotations = Record<string, Buffer>;
interface StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}

export interface PluginStats {
  status: number;
  encrypt: number;
  decrypt: number;
  errors: number;
}

/**
 * A Kubernetes KMS v2 plugin (`v2.KeyManagementService`) on a unix socket, encrypting through a KeyProvider.
 * It checks its own answers against every rule the API server applies, so a misbehaving provider shows up
 * here with a clear message instead of as an opaque "failed to rotate DEK" in the API server's log.
 *
 * `adopted` fires with a key id the first time an Encrypt is answered with it: kube-apiserver calls Encrypt
 * only when Status reports a new key id, and adopts the new DEK seed when both key ids agree, so from that
 * moment every write is encrypted under the new key version. Tests wait on this instead of sleeping.
 */
export class KmsV2Plugin extends EventEmitter {
  readonly socketPath: string;
  readonly stats: PluginStats = { status: 0, encrypt: 0, decrypt: 0, errors: 0 };
  adoptedKeyId?: string;
  lastStatusKeyId?: string;
  /**
   * When the API server's Status calls were answered (the last 1000): each one is a key id the API server
   * records in its `/metrics`, so a reader of those metrics knows from here whether there is anything to read.
   */
  readonly statusAnswered: Date[] = [];
  /** The KMS key version of each seed the API server had sealed, in order. */
  readonly sealedVersions: string[] = [];
  /**
   * While true, every Encrypt fails (as KMS throttling or an outage would): the API server that asks for a new
   * seed keeps its old one, though its Status already reported the new key id. Status and Decrypt still work.
   */
  refuseEncrypt = false;
  private server?: grpc.Server;

  constructor(
    private readonly provider: KeyProvider,
    socketDir: string,
    private readonly onError: (message: string) => void = () => {},
  ) {
    super();
    this.socketPath = join(socketDir, 'kms.sock');
  }

  get endpoint(): string {
    return `unix://${this.socketPath}`;
  }

  async start(): Promise<void> {
    const definition = protoLoader.loadSync(join(__dirname, 'kmsv2.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
    });
    const proto = grpc.loadPackageDefinition(definition) as unknown as {
      v2: { KeyManagementService: { service: grpc.ServiceDefinition } };
    };
    const server = new grpc.Server();
    server.addService(proto.v2.KeyManagementService.service, {
      Status: this.unary(async () => this.status()),
      Encrypt: this.unary(async (req: { plaintext: Buffer }) => this.encrypt(req.plaintext)),
      Decrypt: this.unary(async (req: { ciphertext: Buffer; key_id: string; annotations: Annotations }) =>
        this.decrypt(req),
      ),
    });
    rmSync(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(this.endpoint, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    rmSync(this.socketPath, { force: true });
  }

  /** Status calls answered after `since`. */
  statusCallsSince(since: Date): number {
    return this.statusAnswered.filter((at) => at > since).length;
  }

  /** Resolves once an Encrypt has been answered with `keyId` (at once if that already happened). */
  waitForAdoption(keyId: string, timeoutMs: number): Promise<void> {
    if (this.adoptedKeyId === keyId) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('adopted', listener);
        reject(
          new Error(
            `the API server did not adopt ${keyId} within ${timeoutMs} ms (adopted: ${this.adoptedKeyId})`,
          ),
        );
      }, timeoutMs);
      const listener = (adopted: string) => {
        if (adopted !== keyId) return;
        clearTimeout(timer);
        this.off('adopted', listener);
        resolve();
      };
      this.on('adopted', listener);
    });
  }

  /** Resolves once the API server has had a seed sealed under KMS key version `version`. */
  waitForSeal(version: string, timeoutMs: number): Promise<void> {
    if (this.sealedVersions.includes(version)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('sealed', listener);
        reject(
          new Error(
            `no seed sealed under ${version} within ${timeoutMs} ms (${this.sealedVersions.join(', ')})`,
          ),
        );
      }, timeoutMs);
      const listener = (sealed: string) => {
        if (sealed !== version) return;
        clearTimeout(timer);
        this.off('sealed', listener);
        resolve();
      };
      this.on('sealed', listener);
    });
  }

  private async status(): Promise<StatusResponse> {
    this.stats.status++;
    await this.provider.healthCheck?.();
    const keyId = await this.provider.currentKeyId();
    checkKeyId(keyId);
    this.lastStatusKeyId = keyId;
    this.statusAnswered.push(new Date());
    if (this.statusAnswered.length > 1000) this.statusAnswered.shift();
    return { version: 'v2', healthz: 'ok', key_id: keyId };
  }

  private async encrypt(plaintext: Buffer) {
    this.stats.encrypt++;
    if (this.refuseEncrypt)
      throw new Error('Encrypt refused: the sandbox was told to refuse it (refuseEncrypt)');
    const result = await this.provider.encrypt(plaintext);
    checkKeyId(result.keyId);
    if (result.ciphertext.length === 0 || result.ciphertext.length > CIPHERTEXT_MAX_BYTES) {
      throw new Error(
        `ciphertext of ${result.ciphertext.length} bytes; the API server accepts 1..${CIPHERTEXT_MAX_BYTES}`,
      );
    }
    checkAnnotations(result.annotations);
    // Every Encrypt from the API server seals a new seed: which KMS key version sealed it, when the provider
    // says (its annotations), is what a constant key id hides.
    const version = Object.values(result.annotations)[0]?.toString('utf8');
    if (version) {
      this.sealedVersions.push(version);
      setImmediate(() => this.emit('sealed', version));
    }
    if (this.adoptedKeyId !== result.keyId) {
      this.adoptedKeyId = result.keyId;
      // Let the response reach the API server before anyone acts on the signal.
      setImmediate(() => this.emit('adopted', result.keyId));
    }
    return { ciphertext: result.ciphertext, key_id: result.keyId, annotations: result.annotations };
  }

  private async decrypt(req: { ciphertext: Buffer; key_id: string; annotations: Annotations }) {
    this.stats.decrypt++;
    return { plaintext: await this.provider.decrypt(req.ciphertext, req.key_id, req.annotations ?? {}) };
  }

  private unary<Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      fn(call.request).then(
        (res) => callback(null, res),
        (err: unknown) => {
          this.stats.errors++;
          const message = redactString(err instanceof Error ? err.message : String(err));
          this.onError(message);
          callback({ code: grpc.status.INTERNAL, details: message });
        },
      );
    };
  }
}

function checkKeyId(keyId: string): void {
  const size = Buffer.byteLength(keyId);
  if (size === 0 || size > KEY_ID_MAX_BYTES)
    throw new Error(`key id of ${size} bytes; the API server accepts 1..1024`);
}

function checkAnnotations(annotations: Annotations): void {
  let total = 0;
  for (const [key, value] of Object.entries(annotations)) {
    if (!DNS_NAME.test(key)) throw new Error(`annotation key "${key}" is not a fully-qualified DNS name`);
    total += Buffer.byteLength(key) + value.length;
  }
  if (total > ANNOTATIONS_MAX_BYTES)
    throw new Error(`annotations of ${total} bytes; the API server accepts 32 KiB`);
}

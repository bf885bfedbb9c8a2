import type Kms from '@alicloud/kms20160120';
import * as $Kms from '@alicloud/kms20160120';
import { normalizeError } from '../../shared/errors';
import { composeKeyId, type EncryptResult, KEY_VERSION_ANNOTATION, type KeyProvider } from './key-provider';

/**
 * Alibaba Cloud KMS (or the sandbox's emulated KMS) through the official SDK: `DescribeKey` for the primary
 * version, `Encrypt`/`Decrypt` for the DEK seed. For people who run their own control plane, and for the
 * sandbox once the KMS emulator is there, so that ActionTrail records the control plane's calls.
 */
export class AlibabaKmsKeyProvider implements KeyProvider {
  private cached?: { keyId: string; at: number };

  constructor(
    private readonly kms: Kms,
    readonly keyId: string,
    private readonly options: { describeCacheMs?: number; now?: () => number } = {},
  ) {}

  async currentKeyId(): Promise<string> {
    const now = (this.options.now ?? Date.now)();
    if (this.cached && now - this.cached.at < (this.options.describeCacheMs ?? 5_000))
      return this.cached.keyId;
    try {
      const res = await this.kms.describeKey(new $Kms.DescribeKeyRequest({ keyId: this.keyId }));
      const meta = res.keyMetadata;
      if (meta?.keyState !== 'Enabled')
        throw new Error(`KMS key ${this.keyId} is ${meta?.keyState ?? 'unknown'}`);
      if (!meta.primaryKeyVersion) throw new Error(`KMS key ${this.keyId} reports no primary key version`);
      const keyId = composeKeyId(meta.keyId ?? this.keyId, meta.primaryKeyVersion);
      this.cached = { keyId, at: now };
      return keyId;
    } catch (err) {
      throw normalizeError(err, { service: 'kms', operation: 'DescribeKey' });
    }
  }

  async encrypt(plaintext: Buffer): Promise<EncryptResult> {
    try {
      const res = await this.kms.encrypt(
        new $Kms.EncryptRequest({ keyId: this.keyId, plaintext: plaintext.toString('base64') }),
      );
      if (!res.ciphertextBlob || !res.keyVersionId)
        throw new Error('KMS Encrypt returned no ciphertext or key version');
      return {
        ciphertext: Buffer.from(res.ciphertextBlob, 'utf8'),
        keyId: composeKeyId(res.keyId ?? this.keyId, res.keyVersionId),
        annotations: { [KEY_VERSION_ANNOTATION]: Buffer.from(res.keyVersionId) },
      };
    } catch (err) {
      throw normalizeError(err, { service: 'kms', operation: 'Encrypt' });
    }
  }

  async decrypt(ciphertext: Buffer): Promise<Buffer> {
    try {
      const res = await this.kms.decrypt(
        new $Kms.DecryptRequest({ ciphertextBlob: ciphertext.toString('utf8') }),
      );
      if (res.plaintext === undefined) throw new Error('KMS Decrypt returned no plaintext');
      return Buffer.from(res.plaintext, 'base64');
    } catch (err) {
      throw normalizeError(err, { service: 'kms', operation: 'Decrypt' });
    }
  }
}

import type Kms from '@alicloud/kms20160120';
import * as $Kms from '@alicloud/kms20160120';
import { normalizeError } from '../../shared/errors';
import type { EncryptResult, KeyProvider } from './key-provider';

/** Where the open-source ACK plugin stores the KMS key version with each sealed seed. */
export const ACK_KEY_VERSION_ANNOTATION = 'x-acs-kms-key-version-id.ack.alibabacloud.com';
const HEALTH_CHECK = Buffer.from('healthcheck');

/**
 * Behaves like the open-source ACK KMS plugin (AliyunContainerService/ack-kms-plugin, `plugin/server_v2.go`
 * and `plugin/kms.go`): `key_id` is the configured CMK id, the same before and after a rotation; the KMS
 * `KeyVersionId` of each Encrypt goes only into the annotation stored with the sealed seed; and `Status`
 * encrypts and decrypts a health-check string on every call. With it, a rotation changes nothing the API
 * server acts on: it keeps its seed (sealed under the old version) until it restarts, while ActionTrail
 * shows the managed role encrypting with the new version every minute.
 */
export class AckConstantKeyIdProvider implements KeyProvider {
  constructor(
    private readonly kms: Kms,
    readonly keyId: string,
  ) {}

  async healthCheck(): Promise<void> {
    const sealed = await this.encrypt(HEALTH_CHECK);
    const opened = await this.decrypt(sealed.ciphertext);
    if (!opened.equals(HEALTH_CHECK))
      throw new Error('the health check did not decrypt to what it encrypted');
  }

  async currentKeyId(): Promise<string> {
    return this.keyId;
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
        keyId: this.keyId,
        annotations: { [ACK_KEY_VERSION_ANNOTATION]: Buffer.from(res.keyVersionId) },
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

import type Kms from '@alicloud/kms20160120';
import { AlibabaKmsKeyProvider } from './alibaba-provider';
import { type EncryptResult, KEY_VERSION_ANNOTATION } from './key-provider';

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
export class AckConstantKeyIdProvider extends AlibabaKmsKeyProvider {
  constructor(kms: Kms, keyId: string) {
    super(kms, keyId);
  }

  async healthCheck(): Promise<void> {
    const sealed = await this.encrypt(HEALTH_CHECK);
    const opened = await this.decrypt(sealed.ciphertext);
    if (!opened.equals(HEALTH_CHECK))
      throw new Error('the health check did not decrypt to what it encrypted');
  }

  override async currentKeyId(): Promise<string> {
    return this.keyId;
  }

  override async encrypt(plaintext: Buffer): Promise<EncryptResult> {
    const sealed = await super.encrypt(plaintext);
    const version = sealed.annotations[KEY_VERSION_ANNOTATION] ?? Buffer.alloc(0);
    return {
      ciphertext: sealed.ciphertext,
      keyId: this.keyId,
      annotations: { [ACK_KEY_VERSION_ANNOTATION]: version },
    };
  }
}

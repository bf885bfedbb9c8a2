import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';

/**
 * Where the KMS v2 plugin gets its key encryption. The key id it reports names the key *and* its current
 * primary version (`<keyId>/<keyVersionId>`), so kube-apiserver sees a new key id after a rotation and
 * derives new DEKs: that is what makes "re-encrypt under the new version" observable in etcd.
 */
export interface KeyProvider {
  /** The key id for Status (this provider's: the key and its current primary version). */
  currentKeyId(): Promise<string>;
  /** Run on every Status call, when the provider does one (the ACK plugin encrypts and decrypts a string). */
  healthCheck?(): Promise<void>;
  encrypt(plaintext: Buffer): Promise<EncryptResult>;
  decrypt(ciphertext: Buffer, keyId: string, annotations: Record<string, Buffer>): Promise<Buffer>;
}

export interface EncryptResult {
  ciphertext: Buffer;
  keyId: string;
  annotations: Record<string, Buffer>;
}

/** Annotation keys must be fully-qualified DNS names; the values are stored in etcd in plaintext. */
export const KEY_VERSION_ANNOTATION = 'key-version.ack-kms-sentinel.io';

export const composeKeyId = (keyId: string, keyVersionId: string): string => `${keyId}/${keyVersionId}`;

export function splitKeyId(composite: string): { keyId: string; keyVersionId: string } {
  const at = composite.lastIndexOf('/');
  if (at <= 0 || at === composite.length - 1)
    throw new Error(`not a <keyId>/<keyVersionId> key id: ${composite}`);
  return { keyId: composite.slice(0, at), keyVersionId: composite.slice(at + 1) };
}

interface Version {
  id: string;
  key: Buffer;
}

/**
 * An in-process key with versions and rotation: AES-256-GCM under the version's key, the version id recorded
 * in the ciphertext. Old versions keep decrypting after a rotation, as KMS promises.
 */
export class InProcessKeyProvider implements KeyProvider {
  private readonly versions: Version[] = [];

  constructor(readonly keyId = 'key-sandbox-0001') {
    this.rotate();
  }

  get primaryVersionId(): string {
    return this.primary().id;
  }

  /** Makes a new primary version; returns the new key id. */
  rotate(): string {
    this.versions.push({ id: randomUUID(), key: randomBytes(32) });
    return composeKeyId(this.keyId, this.primary().id);
  }

  async currentKeyId(): Promise<string> {
    return composeKeyId(this.keyId, this.primary().id);
  }

  async encrypt(plaintext: Buffer): Promise<EncryptResult> {
    const version = this.primary();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', version.key, iv);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const id = Buffer.from(version.id, 'utf8');
    return {
      ciphertext: Buffer.concat([Buffer.from([id.length]), id, iv, body, cipher.getAuthTag()]),
      keyId: composeKeyId(this.keyId, version.id),
      annotations: { [KEY_VERSION_ANNOTATION]: Buffer.from(version.id) },
    };
  }

  async decrypt(ciphertext: Buffer): Promise<Buffer> {
    const idLength = ciphertext[0] ?? 0;
    const versionId = ciphertext.subarray(1, 1 + idLength).toString('utf8');
    const version = this.versions.find((v) => v.id === versionId);
    if (!version) throw new Error(`unknown key version ${versionId}`);
    const rest = ciphertext.subarray(1 + idLength);
    const decipher = createDecipheriv('aes-256-gcm', version.key, rest.subarray(0, 12));
    decipher.setAuthTag(rest.subarray(rest.length - 16));
    return Buffer.concat([decipher.update(rest.subarray(12, rest.length - 16)), decipher.final()]);
  }

  private primary(): Version {
    const v = this.versions.at(-1);
    if (!v) throw new Error('no key version');
    return v;
  }
}

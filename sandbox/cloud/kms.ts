import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { ApiError, type CallContext } from './api';
import type { KeyState, SecretState } from './state';

/**
 * KMS 2016-01-20, the operations the suite and the control plane's KMS plugin use, with the real refusals
 * (docs/cloud-facts.md#kms-api). Ciphertexts are real AES-256-GCM under the key version, which they name, so old
 * versions keep decrypting after a rotation.
 */
const WRITE_ACTIONS = new Set([
  'CreateKey',
  'CreateKeyVersion',
  'CreateAlias',
  'CreateSecret',
  'PutSecretValue',
  'UpdateRotationPolicy',
  'SetDeletionProtection',
  'DisableKey',
  'EnableKey',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
]);
export const isKmsWrite = (action: string): boolean => WRITE_ACTIONS.has(action);

const required = (ctx: CallContext, name: string): string => {
  const v = ctx.params[name];
  if (v === undefined || v === '') {
    throw new ApiError(
      400,
      'MissingParameter',
      `The input parameter "${name}" that is mandatory for processing this request is not supplied.`,
    );
  }
  return v;
};

const bool = (ctx: CallContext, name: string): boolean => {
  const v = required(ctx, name);
  if (v !== 'true' && v !== 'false')
    throw new ApiError(400, 'InvalidParameter', `The parameter "${name}" must be true or false.`);
  return v === 'true';
};

const page = (ctx: CallContext) => {
  const number = Number(ctx.params.PageNumber ?? '1');
  const size = Number(ctx.params.PageSize ?? '10');
  if (!Number.isInteger(number) || number < 1)
    throw new ApiError(400, 'InvalidParameter', 'The parameter "PageNumber" is invalid.');
  if (!Number.isInteger(size) || size < 1 || size > 100)
    throw new ApiError(400, 'InvalidParameter', 'The parameter "PageSize" is invalid.');
  return { number, size };
};

/** KMS takes a key id, a key ARN, an alias (`alias/<name>`) or an alias ARN wherever it takes a KeyId. */
function findKey(ctx: CallContext, keyId = required(ctx, 'KeyId')): KeyState {
  const { state } = ctx.emulator;
  const alias = /^(?:acs:kms:[^:]*:[^:]*:)?(alias\/.+)$/.exec(keyId)?.[1];
  const id = alias ? state.aliases.find((a) => a.aliasName === alias)?.keyId : keyId;
  const key = state.keys.find((k) => k.keyId === id || k.arn === id);
  if (!key) throw new ApiError(404, 'Forbidden.KeyNotFound', 'The specified Key is not found.');
  return key;
}

function findSecret(ctx: CallContext): SecretState {
  const name = required(ctx, 'SecretName');
  const secret = ctx.emulator.state.secrets.find((x) => x.secretName === name);
  if (!secret) throw new ApiError(404, 'Forbidden.ResourceNotFound', 'The specified secret is not found.');
  return secret;
}

function usable(key: KeyState): void {
  if (key.keyState === 'Disabled') throw new ApiError(409, 'Rejected.Disabled', 'The key is disabled.');
  if (key.keyState === 'PendingDeletion')
    throw new ApiError(409, 'Rejected.PendingDeletion', 'The key is pending deletion.');
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function parseInterval(value: string): number {
  const m = /^(\d+)([dhms])$/.exec(value);
  if (!m) throw new ApiError(400, 'InvalidParameter', 'The parameter "RotationInterval" is invalid.');
  const seconds =
    Number(m[1]) * ({ d: 86_400, h: 3_600, m: 60, s: 1 } as const)[m[2] as 'd' | 'h' | 'm' | 's'];
  if (seconds < 7 * 86_400 || seconds > 730 * 86_400) {
    throw new ApiError(
      400,
      'InvalidParameter',
      'The parameter "RotationInterval" must be between 7 and 730 days.',
    );
  }
  return seconds;
}

export function newVersion(now: number): KeyState['versions'][number] {
  return { keyVersionId: randomUUID(), creationDate: iso(now), material: randomBytes(32).toString('base64') };
}

/** Makes a new primary version (manual rotation, or the automatic policy when it is due). */
export function rotate(key: KeyState, now: number): string {
  const version = newVersion(now);
  key.versions.push(version);
  key.primaryKeyVersion = version.keyVersionId;
  key.lastRotationDate = version.creationDate;
  if (key.automaticRotation === 'Enabled' && key.rotationIntervalSeconds) {
    key.nextRotationDate = iso(now + key.rotationIntervalSeconds * 1000);
  }
  return version.keyVersionId;
}

export function createKeyState(
  accountId: string,
  region: string,
  now: number,
  keyId = `key-${randomUUID().replace(/-/g, '').slice(0, 20)}`,
): KeyState {
  const version = newVersion(now);
  return {
    keyId,
    arn: `acs:kms:${region}:${accountId}:key/${keyId}`,
    keyState: 'Enabled',
    creationDate: iso(now),
    description: '',
    keySpec: 'Aliyun_AES_256',
    versions: [version],
    primaryKeyVersion: version.keyVersionId,
    automaticRotation: 'Disabled',
    lastRotationDate: version.creationDate,
    deletionProtection: 'Disabled',
  };
}

function metadata(key: KeyState) {
  return {
    KeyId: key.keyId,
    Arn: key.arn,
    KeyState: key.keyState,
    KeyUsage: 'ENCRYPT/DECRYPT',
    KeySpec: key.keySpec,
    Origin: 'Aliyun_KMS',
    ProtectionLevel: 'SOFTWARE',
    CreationDate: key.creationDate,
    Creator: 'emulator',
    Description: key.description,
    PrimaryKeyVersion: key.primaryKeyVersion,
    LastRotationDate: key.lastRotationDate,
    AutomaticRotation: key.automaticRotation,
    ...(key.rotationIntervalSeconds ? { RotationInterval: `${key.rotationIntervalSeconds}s` } : {}),
    ...(key.nextRotationDate && key.automaticRotation === 'Enabled'
      ? { NextRotationDate: key.nextRotationDate }
      : {}),
    DeletionProtection: key.deletionProtection,
    ...(key.deletionProtectionDescription
      ? { DeletionProtectionDescription: key.deletionProtectionDescription }
      : {}),
    ...(key.deleteDate ? { DeleteDate: key.deleteDate } : {}),
    MaterialExpireTime: '',
  };
}

// Ciphertext blob: base64 of JSON-free bytes: "ks1" | keyId len | keyId | version len | version | iv | ct | tag.
function seal(key: KeyState, plaintext: Buffer, context: string): string {
  const version = key.versions.find((v) => v.keyVersionId === key.primaryKeyVersion);
  if (!version) throw new ApiError(500, 'InternalFailure', 'The primary key version is missing.');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(version.material, 'base64'), iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const kid = Buffer.from(key.keyId);
  const vid = Buffer.from(version.keyVersionId);
  return Buffer.concat([
    Buffer.from('ks1'),
    Buffer.from([kid.length]),
    kid,
    Buffer.from([vid.length]),
    vid,
    iv,
    body,
    cipher.getAuthTag(),
  ]).toString('base64');
}

function open(
  ctx: CallContext,
  blob: string,
  context: string,
): { key: KeyState; versionId: string; plaintext: Buffer } {
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.subarray(0, 3).toString() !== 'ks1' || bytes.length < 40) {
    throw new ApiError(400, 'Rejected.InvalidCiphertext', 'The CiphertextBlob is invalid.');
  }
  let at = 3;
  const kidLength = bytes[at++] ?? 0;
  const keyId = bytes.subarray(at, at + kidLength).toString();
  at += kidLength;
  const vidLength = bytes[at++] ?? 0;
  const versionId = bytes.subarray(at, at + vidLength).toString();
  at += vidLength;
  const key = findKey(ctx, keyId);
  usable(key);
  const version = key.versions.find((v) => v.keyVersionId === versionId);
  if (!version) throw new ApiError(400, 'Rejected.InvalidCiphertext', 'The CiphertextBlob is invalid.');
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      Buffer.from(version.material, 'base64'),
      bytes.subarray(at, at + 12),
    );
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    const plaintext = Buffer.concat([
      decipher.update(bytes.subarray(at + 12, bytes.length - 16)),
      decipher.final(),
    ]);
    return { key, versionId, plaintext };
  } catch {
    throw new ApiError(
      400,
      'Rejected.InvalidCiphertext',
      'The CiphertextBlob or EncryptionContext is invalid.',
    );
  }
}

function encryptionContext(ctx: CallContext): string {
  const raw = ctx.params.EncryptionContext;
  if (!raw) return '';
  try {
    const parsed = JSON.parse(raw) as Record<string, string>;
    return JSON.stringify(Object.fromEntries(Object.entries(parsed).sort()));
  } catch {
    throw new ApiError(400, 'InvalidParameter', 'The parameter "EncryptionContext" must be a JSON object.');
  }
}

export function kmsAction(ctx: CallContext): Record<string, unknown> {
  const { emulator } = ctx;
  const now = emulator.now();
  switch (ctx.action) {
    case 'CreateKey': {
      const key = createKeyState(emulator.state.accountId, emulator.state.region, now);
      key.description = ctx.params.Description ?? '';
      emulator.state.keys.push(key);
      return { KeyMetadata: metadata(key) };
    }
    case 'DescribeKey':
      return { KeyMetadata: metadata(findKey(ctx)) };
    case 'CreateSecret': {
      const secretName = required(ctx, 'SecretName');
      if (emulator.state.secrets.some((x) => x.secretName === secretName))
        throw new ApiError(409, 'Rejected.ResourceExist', 'The secret already exists.');
      const versionId = required(ctx, 'VersionId');
      emulator.state.secrets.push({
        secretName,
        versions: [
          { versionId, data: required(ctx, 'SecretData'), createTime: iso(now), stages: ['ACSCurrent'] },
        ],
      });
      return { SecretName: secretName, VersionId: versionId };
    }
    case 'PutSecretValue': {
      // A new version becomes ACSCurrent; the old current becomes ACSPrevious (the one before loses it).
      const secret = findSecret(ctx);
      const versionId = required(ctx, 'VersionId');
      if (secret.versions.some((v) => v.versionId === versionId))
        throw new ApiError(409, 'Rejected.ResourceExist', 'The secret version already exists.');
      for (const v of secret.versions) {
        v.stages = v.stages.includes('ACSCurrent')
          ? ['ACSPrevious']
          : v.stages.filter((x) => x !== 'ACSPrevious');
      }
      secret.versions.push({
        versionId,
        data: required(ctx, 'SecretData'),
        createTime: iso(now),
        stages: ['ACSCurrent'],
      });
      return {
        SecretName: secret.secretName,
        VersionId: versionId,
        VersionStages: { VersionStage: ['ACSCurrent'] },
      };
    }
    case 'GetSecretValue': {
      const secret = findSecret(ctx);
      const stage = ctx.params.VersionStage || (ctx.params.VersionId ? undefined : 'ACSCurrent');
      const v = secret.versions.find(
        (x) =>
          (!stage || x.stages.includes(stage)) &&
          (!ctx.params.VersionId || x.versionId === ctx.params.VersionId),
      );
      if (!v) throw new ApiError(404, 'Forbidden.ResourceNotFound', 'The secret version is not found.');
      return {
        SecretName: secret.secretName,
        VersionId: v.versionId,
        CreateTime: v.createTime,
        SecretData: v.data,
        SecretDataType: 'text',
        VersionStages: { VersionStage: v.stages },
      };
    }
    case 'CreateAlias': {
      const aliasName = required(ctx, 'AliasName');
      if (!/^alias\/[a-zA-Z0-9:/_-]{1,249}$/.test(aliasName))
        throw new ApiError(400, 'InvalidParameter', 'The parameter "AliasName" is invalid.');
      if (emulator.state.aliases.some((a) => a.aliasName === aliasName))
        throw new ApiError(409, 'Rejected.AlreadyExists', 'The specified alias already exists.');
      emulator.state.aliases.push({ aliasName, keyId: findKey(ctx).keyId });
      return {};
    }
    case 'ListKeys': {
      const { number, size } = page(ctx);
      const keys = emulator.state.keys.slice((number - 1) * size, number * size);
      return {
        TotalCount: emulator.state.keys.length,
        PageNumber: number,
        PageSize: size,
        Keys: { Key: keys.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })) },
      };
    }
    case 'ListKeyVersions': {
      const key = findKey(ctx);
      const { number, size } = page(ctx);
      return {
        TotalCount: key.versions.length,
        PageNumber: number,
        PageSize: size,
        KeyVersions: {
          KeyVersion: key.versions
            .slice((number - 1) * size, number * size)
            .map((v) => ({ KeyId: key.keyId, KeyVersionId: v.keyVersionId, CreationDate: v.creationDate })),
        },
      };
    }
    case 'DescribeKeyVersion': {
      const key = findKey(ctx);
      const id = required(ctx, 'KeyVersionId');
      const v = key.versions.find((x) => x.keyVersionId === id);
      if (!v)
        throw new ApiError(404, 'Forbidden.KeyVersionNotFound', 'The specified KeyVersion is not found.');
      return { KeyVersion: { KeyId: key.keyId, KeyVersionId: v.keyVersionId, CreationDate: v.creationDate } };
    }
    case 'CreateKeyVersion': {
      const key = findKey(ctx);
      usable(key);
      const id = rotate(key, now);
      return { KeyVersion: { KeyId: key.keyId, KeyVersionId: id, CreationDate: key.lastRotationDate } };
    }
    case 'UpdateRotationPolicy': {
      const key = findKey(ctx);
      const enable = bool(ctx, 'EnableAutomaticRotation');
      if (enable) {
        key.rotationIntervalSeconds = parseInterval(required(ctx, 'RotationInterval'));
        key.automaticRotation = 'Enabled';
        key.nextRotationDate = iso(Date.parse(key.lastRotationDate) + key.rotationIntervalSeconds * 1000);
      } else {
        key.automaticRotation = 'Disabled';
        delete key.nextRotationDate;
      }
      return {};
    }
    case 'SetDeletionProtection': {
      const key = findKey(ctx, required(ctx, 'ProtectedResourceArn'));
      key.deletionProtection = bool(ctx, 'EnableDeletionProtection') ? 'Enabled' : 'Disabled';
      if (ctx.params.DeletionProtectionDescription)
        key.deletionProtectionDescription = ctx.params.DeletionProtectionDescription;
      return {};
    }
    case 'DisableKey': {
      const key = findKey(ctx);
      if (key.keyState === 'PendingDeletion')
        throw new ApiError(409, 'Rejected.PendingDeletion', 'The key is pending deletion.');
      key.keyState = 'Disabled';
      return {};
    }
    case 'EnableKey': {
      const key = findKey(ctx);
      if (key.keyState === 'PendingDeletion')
        throw new ApiError(409, 'Rejected.PendingDeletion', 'The key is pending deletion.');
      key.keyState = 'Enabled';
      return {};
    }
    case 'ScheduleKeyDeletion': {
      const key = findKey(ctx);
      const days = Number(required(ctx, 'PendingWindowInDays'));
      if (!Number.isInteger(days) || days < 7 || days > 366) {
        throw new ApiError(
          400,
          'InvalidParameter',
          'The parameter "PendingWindowInDays" must be between 7 and 366.',
        );
      }
      if (key.deletionProtection === 'Enabled') {
        throw new ApiError(
          403,
          'Forbidden.DeletionProtection',
          'The key is protected from deletion; disable deletion protection first.',
        );
      }
      key.keyState = 'PendingDeletion';
      key.deleteDate = iso(now + days * 86_400_000);
      return {};
    }
    case 'CancelKeyDeletion': {
      const key = findKey(ctx);
      if (key.keyState !== 'PendingDeletion')
        throw new ApiError(409, 'Rejected.KeyStateNotPendingDeletion', 'The key is not pending deletion.');
      key.keyState = 'Disabled';
      delete key.deleteDate;
      return {};
    }
    case 'Encrypt': {
      const key = findKey(ctx);
      usable(key);
      const plaintext = Buffer.from(required(ctx, 'Plaintext'), 'base64');
      if (plaintext.length > 6144)
        throw new ApiError(400, 'InvalidParameter', 'The parameter "Plaintext" is too long.');
      const blob = seal(key, plaintext, encryptionContext(ctx));
      return { KeyId: key.keyId, KeyVersionId: key.primaryKeyVersion, CiphertextBlob: blob };
    }
    case 'Decrypt': {
      const { key, versionId, plaintext } = open(
        ctx,
        required(ctx, 'CiphertextBlob'),
        encryptionContext(ctx),
      );
      return { KeyId: key.keyId, KeyVersionId: versionId, Plaintext: plaintext.toString('base64') };
    }
    case 'GenerateDataKey': {
      const key = findKey(ctx);
      usable(key);
      const spec = ctx.params.KeySpec ?? 'AES_256';
      const bytes = ctx.params.NumberOfBytes
        ? Number(ctx.params.NumberOfBytes)
        : spec === 'AES_128'
          ? 16
          : 32;
      if (!Number.isInteger(bytes) || bytes < 1 || bytes > 1024)
        throw new ApiError(400, 'InvalidParameter', 'The parameter "NumberOfBytes" is invalid.');
      const plaintext = randomBytes(bytes);
      return {
        KeyId: key.keyId,
        KeyVersionId: key.primaryKeyVersion,
        Plaintext: plaintext.toString('base64'),
        CiphertextBlob: seal(key, plaintext, encryptionContext(ctx)),
      };
    }
    default:
      throw new ApiError(
        404,
        'InvalidAction.NotFound',
        'Specified api is not found, please check your url and method.',
      );
  }
}

/** Rotates every key whose automatic rotation is due by the sandbox clock; returns the keys rotated. */
export function rotateDueKeys(keys: KeyState[], now: number): KeyState[] {
  const rotated: KeyState[] = [];
  for (const key of keys) {
    if (key.automaticRotation !== 'Enabled' || key.keyState !== 'Enabled' || !key.nextRotationDate) continue;
    if (Date.parse(key.nextRotationDate) <= now) {
      rotate(key, now);
      rotated.push(key);
    }
  }
  return rotated;
}

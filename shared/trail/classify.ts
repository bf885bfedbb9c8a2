import {
  type ActionTrailEvent,
  eventClusterId,
  eventKeyId,
  isOwnManagedRoleCall,
} from '../events/actiontrail';

/**
 * What an ActionTrail event means for the suite: encryption activity by the ACK control plane, a KMS refusal
 * the control plane met (it cannot decrypt Secrets: critical), or a change that endangers a cluster.
 */
export type FindingKind = 'encryption-activity' | 'kms-refusal' | 'sensitive-change';

export interface Finding {
  kind: FindingKind;
  severity: 'critical' | 'warning' | 'info';
  eventName: string;
  eventId: string;
  eventTime: Date;
  /** The key's id (an alias the event named resolved through `Watched.aliases`). */
  keyId?: string;
  /** The key as the event named it, when that was not its id (an alias). */
  keyRef?: string;
  clusterId?: string;
  /** One line for a person. */
  summary: string;
}

export interface Watched {
  keys: ReadonlySet<string>;
  clusters: ReadonlySet<string>;
  /** Aliases named by events, resolved to key ids (`withResolvedAliases`). */
  aliases?: ReadonlyMap<string, string>;
  /** This account (managed-role calls of other accounts are no evidence); else each event's recipient. */
  accountId?: string;
}

const CRYPTO = new Set([
  'Encrypt',
  'Decrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncrypt',
]);

/** Is this write a danger to a cluster whose Secrets the key encrypts? (The vendor document's warnings.) */
function danger(e: ActionTrailEvent): string | undefined {
  const p = e.requestParameters ?? {};
  switch (e.eventName) {
    case 'DisableKey':
      return 'the key was disabled: the API server can no longer decrypt Secrets';
    case 'ScheduleKeyDeletion':
      return `the key was scheduled for deletion${p.PendingWindowInDays ? ` in ${p.PendingWindowInDays} days` : ''}: the API server will lose its Secrets`;
    case 'DeleteKeyMaterial':
      return 'the key material was deleted';
    case 'UpdateRotationPolicy':
      return String(p.EnableAutomaticRotation) === 'false' ? 'automatic rotation was turned off' : undefined;
    case 'SetDeletionProtection':
      return String(p.EnableDeletionProtection) === 'false'
        ? 'deletion protection was turned off'
        : undefined;
    case 'UpdateKMSEncryption':
      return p.disable_encryption === true || String(p.disable_encryption) === 'true'
        ? 'Secret encryption at rest was turned off'
        : undefined;
    default:
      return undefined;
  }
}

/** A successful write the vendor document warns about (key disabled or deleted, encryption turned off, …). */
export const isSensitiveChange = (e: ActionTrailEvent): boolean => !e.errorCode && danger(e) !== undefined;

export function classify(e: ActionTrailEvent, watched: Watched): Finding | undefined {
  const keyRef = eventKeyId(e);
  const keyId = (keyRef && watched.aliases?.get(keyRef)) || keyRef;
  const clusterId = eventClusterId(e);
  const base = {
    eventName: e.eventName,
    eventId: e.eventId,
    eventTime: e.eventTime,
    ...(keyId ? { keyId } : {}),
    ...(keyRef && keyRef !== keyId ? { keyRef } : {}),
    ...(clusterId ? { clusterId } : {}),
  };
  if (
    e.serviceName.toLowerCase() === 'kms' &&
    CRYPTO.has(e.eventName) &&
    isOwnManagedRoleCall(e, watched.accountId)
  ) {
    if (keyId && watched.keys.size > 0 && !watched.keys.has(keyId)) return undefined;
    if (e.errorCode) {
      return {
        ...base,
        kind: 'kms-refusal',
        severity: 'critical',
        summary: `KMS refused ${e.eventName} of ${keyId ?? 'a key'} to the ACK control plane: ${e.errorCode}`,
      };
    }
    return {
      ...base,
      kind: 'encryption-activity',
      severity: 'info',
      summary: `the ACK control plane called ${e.eventName} with ${keyId ?? 'a key'}`,
    };
  }
  const why = e.errorCode ? undefined : danger(e);
  if (!why) return undefined;
  const inUse =
    (keyId !== undefined && watched.keys.has(keyId)) ||
    (clusterId !== undefined && watched.clusters.has(clusterId));
  if (!inUse) return undefined;
  return {
    ...base,
    kind: 'sensitive-change',
    severity: 'critical',
    summary: `${why} (${e.eventName} by ${e.userIdentity.userName ?? e.userIdentity.type})`,
  };
}

export interface BatchSummary {
  events: number;
  encryptionByKey: Record<string, { ok: number; refused: number; last?: string }>;
  critical: number;
}

export function summarize(events: number, findings: Finding[]): BatchSummary {
  const encryptionByKey: BatchSummary['encryptionByKey'] = {};
  for (const f of findings) {
    if (f.kind === 'sensitive-change' || !f.keyId) continue;
    const entry = encryptionByKey[f.keyId] ?? { ok: 0, refused: 0 };
    encryptionByKey[f.keyId] = entry;
    if (f.kind === 'kms-refusal') entry.refused++;
    else entry.ok++;
    const t = f.eventTime.toISOString();
    if (!entry.last || t > entry.last) entry.last = t;
  }
  return { events, encryptionByKey, critical: findings.filter((f) => f.severity === 'critical').length };
}

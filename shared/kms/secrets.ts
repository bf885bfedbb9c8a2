import type { CloudClients } from '../cloud/clients';
import { ConfigError, normalizeError } from '../errors';
import { registerSecret } from '../log';

/**
 * Settings kept in KMS Secrets Manager instead of the function's configuration (which anyone allowed to read
 * the function sees): GetSecretValue through the KMS SDK's generic call, cached per instance, so a rotated
 * secret is picked up without a redeploy. The previous version (stage ACSPrevious) is returned too: callers
 * accept it for a grace period after the rotation, so rotating does not break clients mid-flight.
 */
export interface SecretVersions {
  current: string;
  /** When the current version was created (its rotation). */
  currentSince?: Date;
  previous?: string;
}

const TTL_MS = 5 * 60_000;
const cache = new Map<string, { at: number; value: SecretVersions }>();

async function version(
  clients: Pick<CloudClients, 'kmsRpc'>,
  name: string,
  stage: 'ACSCurrent' | 'ACSPrevious',
): Promise<{ data: string; createTime?: string } | undefined> {
  try {
    const body = await clients.kmsRpc('GetSecretValue', { SecretName: name, VersionStage: stage });
    const data = body.SecretData;
    if (typeof data !== 'string' || data === '') return undefined;
    registerSecret(data);
    return { data, ...(typeof body.CreateTime === 'string' ? { createTime: body.CreateTime } : {}) };
  } catch (err) {
    if (stage === 'ACSPrevious' && normalizeError(err).statusCode === 404) return undefined;
    throw err;
  }
}

/**
 * The current (and previous) value of a KMS secret. `maxAgeMs` forces a fresh read of a value cached longer
 * than that (the webhook asks for one when a signature matches neither version).
 */
export async function kmsSecret(
  clients: Pick<CloudClients, 'kmsRpc'>,
  name: string,
  now: number,
  maxAgeMs = TTL_MS,
): Promise<SecretVersions> {
  const hit = cache.get(name);
  if (hit && now - hit.at < maxAgeMs) return hit.value;
  const current = await version(clients, name, 'ACSCurrent');
  // A setting names this secret and it holds nothing: the configuration is incomplete until someone stores a
  // value (as when a channel list read from KMS does not parse, runtime/services.ts).
  if (!current)
    throw new ConfigError(`KMS secret ${name} has no current value`, { code: 'EmptySecret', service: 'kms' });
  const previous = await version(clients, name, 'ACSPrevious');
  const value: SecretVersions = {
    current: current.data,
    ...(current.createTime ? { currentSince: new Date(current.createTime) } : {}),
    ...(previous ? { previous: previous.data } : {}),
  };
  cache.set(name, { at: now, value });
  return value;
}

/** The values a caller accepts now: the current one, and the previous one within `graceMs` of the rotation. */
export function acceptedValues(v: SecretVersions, now: number, graceMs: number): string[] {
  const inGrace = v.previous !== undefined && v.currentSince && now - v.currentSince.getTime() < graceMs;
  return inGrace && v.previous ? [v.current, v.previous] : [v.current];
}

/** For tests: forget cached values. */
export function clearKmsSecretCache(): void {
  cache.clear();
}

import type { CloudClients } from '../cloud/clients';
import { discoverClusters, type TargetCluster } from '../cluster/discovery';
import type { SentinelConfig } from '../config';
import { normalizeError } from '../errors';
import { type ActionTrailEvent, eventKeyId, isKeyAlias } from '../events/actiontrail';
import { describeKey } from '../kms/keys';
import type { Logger } from '../log';
import type { Notification } from '../notify';
import { type Finding, isSensitiveChange, type Watched } from './classify';

/**
 * What rotation-watch and trail-verify watch. Guard-rail alerts cover every configured target cluster
 * whatever its encryption state *now*: by the time an `UpdateKMSEncryption` that turned encryption off reaches
 * us, CS already reports the cluster without encryption, so a set built from encrypted clusters only would
 * never alert on the one change it exists for. Keys are the explicit ones, or every key a target cluster
 * names (Secrets written under a key stay sealed by it after encryption is turned off, so deleting it still
 * hurts). Rotation jobs are for `rotationKeys` and clusters with encryption on only.
 */
export interface WatchedTargets {
  clusters: TargetCluster[];
  /** Keys whose rotation starts jobs: explicit, or those of clusters with encryption on. */
  rotationKeys: string[];
  watched: Watched;
}

export async function watchedTargets(
  clients: Pick<CloudClients, 'csRoa' | 'kmsRpc'>,
  config: Pick<SentinelConfig, 'clusters' | 'clusterKeys' | 'keys'>,
  accountId?: string,
  log?: Logger,
): Promise<WatchedTargets> {
  const clusters = await discoverClusters(clients, config);
  const keyOf = (c: TargetCluster) => (c.keyId ? [c.keyId] : []);
  // An explicit key may be an alias (the configuration allows it); clusters and events name key ids.
  const aliases = new Map<string, string>();
  if (config.keys.mode === 'explicit') {
    for (const ref of config.keys.keyIds.filter(isKeyAlias)) {
      try {
        aliases.set(ref, (await describeKey(clients, ref)).keyId);
      } catch (err) {
        // One alias KMS no longer resolves must not stop the alerts and jobs of every other key.
        log?.warn('could not resolve a configured key alias', {
          alias: ref,
          error: normalizeError(err).toJSON(),
        });
      }
    }
  }
  const rotationKeys =
    config.keys.mode === 'explicit'
      ? [...new Set(config.keys.keyIds.flatMap((k) => (isKeyAlias(k) ? (aliases.get(k) ?? []) : [k])))]
      : [...new Set(clusters.filter((c) => c.encryptionEnabled).flatMap(keyOf))];
  return {
    clusters,
    rotationKeys,
    watched: {
      keys: new Set([...rotationKeys, ...clusters.flatMap(keyOf)]),
      clusters: new Set(clusters.map((c) => c.clusterId)),
      aliases,
      ...(accountId ? { accountId } : {}),
    },
  };
}

/** The clusters with encryption on that a rotation of `keyId` concerns. */
export const clustersEncryptedBy = (t: WatchedTargets, keyId: string): TargetCluster[] =>
  t.clusters.filter((c) => c.encryptionEnabled && c.keyId === keyId);

/**
 * Events may name a key by alias (`alias/x`, or its ARN) where the watched set holds key ids. KMS resolves
 * an alias with DescribeKey; each distinct alias of a batch is resolved once, and only for the sensitive
 * changes: our own DescribeKey lands in the trail too, and resolving the aliases of every event would feed
 * trail-verify its own calls forever. A failed resolution is logged, never fatal.
 */
export async function withResolvedAliases(
  events: readonly ActionTrailEvent[],
  watched: Watched,
  clients: Pick<CloudClients, 'kmsRpc'>,
  log: Logger,
): Promise<Watched> {
  const aliases = new Set(
    events
      .filter(isSensitiveChange)
      .map(eventKeyId)
      .filter((k): k is string => k !== undefined && isKeyAlias(k)),
  );
  if (aliases.size === 0) return watched;
  const resolved = new Map(watched.aliases ?? []);
  for (const alias of aliases) {
    if (resolved.has(alias)) continue;
    try {
      resolved.set(alias, (await describeKey(clients, alias)).keyId);
    } catch (err) {
      log.warn('could not resolve a key alias named by an event', {
        alias,
        error: normalizeError(err).toJSON(),
      });
    }
  }
  return { ...watched, aliases: resolved };
}

/** The target clusters a finding endangers: those using its key, or the cluster it names. */
export const affectedClusters = (t: Pick<WatchedTargets, 'clusters'>, f: Finding): string[] =>
  t.clusters
    .filter((c) => (f.keyId !== undefined && c.keyId === f.keyId) || c.clusterId === f.clusterId)
    .map((c) => c.clusterId);

/** The one wording of a critical alert, whichever function saw the event. */
export function alertFor(f: Finding, affected: string[]): Notification {
  const title =
    f.kind === 'kms-refusal'
      ? `KMS refused the ACK control plane: ${f.keyId ?? 'a key'}`
      : `${f.eventName} on ${f.keyId ?? f.clusterId}`;
  return {
    severity: 'critical',
    title,
    text: `${f.summary}. Clusters affected: ${affected.join(', ') || 'none known'}.`,
    details: {
      eventId: f.eventId,
      eventTime: f.eventTime.toISOString(),
      ...(f.keyRef && f.keyRef !== f.keyId ? { keyRef: f.keyRef } : {}),
      keyId: f.keyId,
      clusterId: f.clusterId,
      clusters: affected,
    },
  };
}

import type { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { CloudClients } from '../cloud/clients';
import type { TargetCluster } from '../cluster/discovery';
import {
  type ProofSettings,
  readSealingEvidence,
  type SealingEvidence,
  seedPending,
  unproven,
} from '../cluster/sealing';
import { normalizeError } from '../errors';
import type { ActionTrailEvent } from '../events/actiontrail';
import type { LoadedState } from '../jobs/store';
import { describeKey, type KeyInfo } from '../kms/keys';
import { doneFor, keyVersionCensus, type SecretStore } from '../reencrypt/secrets-api';
import { findManagedRoleEvents } from '../trail/evidence';
import { jobCheck } from './job-check';
import { stateWriters } from './state-writers';

/**
 * The audit of one cluster: each check answers pass / warn / fail (or manual, where the suite cannot read the
 * thing) with its evidence and the exact remedy. The checks follow the vendor document's prerequisites and
 * warnings.
 */
export type Status = 'pass' | 'warn' | 'fail' | 'manual';

export interface Check {
  id: string;
  title: string;
  status: Status;
  evidence: string;
  remedy?: string;
}

export interface ClusterAudit {
  clusterId: string;
  name: string;
  keyId?: string;
  checks: Check[];
  coverage?: {
    total: number;
    current: number;
    share: number;
    keyVersionId: string;
    sinceRotation?: string;
    /**
     * What the API servers prove (`shared/cluster/sealing.ts`): `proven` when they made a new seed after the
     * rotation (only marks written under that proof count), `unproven` when their metrics cannot be read,
     * `not-effective` when a rewrite now would not re-seal anything.
     */
    proof: 'proven' | 'unproven' | 'not-effective';
    proofReason: string;
  };
  timeline: Array<{ time: string; eventName: string; who: string; error?: string }>;
  status: Status;
}

export interface AuditOptions {
  /** A GET of `/metrics` on the cluster (new connection each call): the API servers' sealing evidence. */
  getRaw?: (path: string) => Promise<{ status: number; body: string }>;
  /** The live API servers' identities (their leases), so the evidence is read from each. */
  apiServerIdentities?: () => Promise<string[] | undefined>;
  /** For the check of who else can write the state ConfigMap. */
  rbac?: RbacAuthorizationV1Api;
  stateNamespace?: string;
  /** The proof settings (`SENTINEL_REENCRYPT_PROOF`, `SENTINEL_API_SERVERS`). */
  proof?: ProofSettings;
  /** The cluster's state as the job store reads it, for the job check; and when a job counts as dead. */
  jobState?: () => Promise<LoadedState>;
  staleAfterMs?: number;
  /** How far back ActionTrail evidence counts (default 7 days). */
  evidenceWindowMs?: number;
  /** How long after a rotation incomplete coverage is a failure rather than a warning (default 24 h). */
  coverageGraceMs?: number;
  now?: () => number;
  /** Shared by the clusters of one audit (`keyCache()`): each key is described and looked up once. */
  cache?: KeyCache;
}

const worst = (statuses: Status[]): Status =>
  statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'pass';

/** Managed-role crypto calls of a key, refusals included, newest first. */
/**
 * What the clusters of one audit that share a key share: its DescribeKey and its ActionTrail activity.
 * LookupEvents allows 2 calls a second for the whole account, so an audit of a hundred clusters over ten keys
 * looks up ten keys, not a hundred clusters.
 */
export interface KeyCache {
  keys: Map<string, Promise<KeyInfo>>;
  activity: Map<string, Promise<ActionTrailEvent[]>>;
}
export const keyCache = (): KeyCache => ({ keys: new Map(), activity: new Map() });

function once<T>(map: Map<string, Promise<T>> | undefined, id: string, load: () => Promise<T>): Promise<T> {
  if (!map) return load();
  let p = map.get(id);
  if (!p) {
    p = load();
    map.set(id, p);
  }
  return p;
}

async function managedRoleActivity(
  clients: Pick<CloudClients, 'actionTrailRpc'>,
  keyId: string,
  since: Date,
  until: Date,
): Promise<ActionTrailEvent[]> {
  const events = await findManagedRoleEvents(clients, {
    keyId,
    since,
    until,
    eventNames: ['Encrypt', 'Decrypt', 'GenerateDataKey'],
    maxPages: 1,
    includeRefused: true,
  });
  return events.sort((a, b) => b.eventTime.getTime() - a.eventTime.getTime());
}

/**
 * Share of the cluster's Secrets done for the key's current version (metadata only, paged): with the API
 * servers' proof readable, only marks written under it count.
 */
async function coverage(secrets: SecretStore, keyVersionId: string, proven: boolean) {
  const census = await keyVersionCensus(secrets);
  return { total: census.total, current: doneFor(census, keyVersionId, proven) };
}

/** The API servers' evidence for the key's last rotation, or why there is none. */
async function sealing(key: KeyInfo, options: AuditOptions): Promise<SealingEvidence> {
  const { getRaw, apiServerIdentities } = options;
  if (!getRaw) return unproven("the audit was not given access to the API servers' /metrics");
  const source = { getRaw, apiServerIdentities: async () => apiServerIdentities?.() };
  return readSealingEvidence(source, key, options.proof).catch((err) =>
    unproven(`reading the API servers' evidence failed: ${normalizeError(err).message}`),
  );
}

/**
 * Anyone beyond the suite, the cluster admins and the control plane who can write the state ConfigMap can mark
 * a version complete or forge a checkpoint: the check fails on them, and names everyone it counted.
 */
async function stateWritersCheck(rbac: RbacAuthorizationV1Api, namespace: string): Promise<Check> {
  const title = `Only the suite and cluster admins can write its state ConfigMap (namespace ${namespace})`;
  try {
    const writers = await stateWriters(rbac, namespace);
    const named = (trust: string) => {
      const of = writers.filter((w) => w.trust === trust);
      const shown = of.slice(0, 10).map((w) => `${w.subject} (${w.via})`);
      return { count: of.length, list: `${shown.join('; ')}${of.length > 10 ? '; …' : ''}` };
    };
    const trusted = ['suite', 'cluster-admin', 'control-plane']
      .map((t) => ({ t, ...named(t) }))
      .filter((n) => n.count > 0)
      .map((n) => `${n.t}: ${n.list}`)
      .join(' | ');
    const others = named('other');
    if (others.count === 0)
      return {
        id: 'state-writers',
        title,
        status: 'pass',
        evidence: `${writers.length} subject(s) may write it, none beyond the suite and cluster admins${trusted ? ` (${trusted})` : ''}`,
      };
    return {
      id: 'state-writers',
      title,
      status: 'fail',
      evidence: `${others.count} subject(s) beyond the suite and cluster admins may write it: ${others.list}`,
      remedy: `Remove write access to configmaps in ${namespace} from these subjects (a group such as system:authenticated is everyone in it): they could mark a key version re-encrypted or forge a job's checkpoint.`,
    };
  } catch (err) {
    return {
      id: 'state-writers',
      title,
      status: 'warn',
      evidence: `reading RBAC failed: ${normalizeError(err).message}`,
      remedy:
        "Give the suite's identity list on roles, rolebindings, clusterroles and clusterrolebindings (deploy/rbac.yaml).",
    };
  }
}

export async function auditCluster(
  clients: Pick<CloudClients, 'kmsRpc' | 'actionTrailRpc'>,
  cluster: TargetCluster,
  secrets: SecretStore | undefined,
  options: AuditOptions = {},
): Promise<ClusterAudit> {
  const now = options.now?.() ?? Date.now();
  const checks: Check[] = [];
  const result: ClusterAudit = {
    clusterId: cluster.clusterId,
    name: cluster.name,
    checks,
    timeline: [],
    status: 'pass',
  };
  checks.push(encryptionCheck(cluster));
  if (cluster.encryptionEnabled && cluster.keyId) {
    result.keyId = cluster.keyId;
    const key = await keyOrCheck(clients, cluster.keyId, checks, options.cache);
    if (key) {
      checks.push(...keyChecks(key, cluster));
      checks.push(...(await evidenceChecks(clients, key, now, options, result)));
      if (secrets) checks.push(await coverageCheck(secrets, key, now, options, result));
    }
  }
  if (options.rbac && options.stateNamespace)
    checks.push(await stateWritersCheck(options.rbac, options.stateNamespace));
  if (options.jobState) checks.push(await jobCheck(options.jobState, now, options.staleAfterMs ?? 3_600_000));
  checks.push(...manualChecks());
  result.status = worst(checks.map((c) => c.status));
  return result;
}

function encryptionCheck(cluster: TargetCluster): Check {
  return !cluster.encryptionEnabled || !cluster.keyId
    ? {
        id: 'encryption',
        title: 'Secret encryption at rest is on',
        status: 'fail',
        evidence: 'DescribeClusterDetail meta_data: Secret encryption is off',
        remedy:
          "ACK console → the cluster → Basic Information → Security and Auditing → turn on Secret Encryption with a KMS key in the cluster's region (API: UpdateKMSEncryption).",
      }
    : {
        id: 'encryption',
        title: 'Secret encryption at rest is on',
        status: 'pass',
        evidence: `encrypted with KMS key ${cluster.keyId}`,
      };
}

/** The key, or a failed `key-state` check saying why it could not be read. */
async function keyOrCheck(
  clients: Pick<CloudClients, 'kmsRpc'>,
  keyId: string,
  checks: Check[],
  cache?: KeyCache,
): Promise<KeyInfo | undefined> {
  try {
    return await once(cache?.keys, keyId, () => describeKey(clients, keyId));
  } catch (err) {
    checks.push({
      id: 'key-state',
      title: 'The KMS key is usable',
      status: 'fail',
      evidence: `DescribeKey failed: ${normalizeError(err).message}`,
      remedy: "Make sure the key exists and the auditor's role may call kms:DescribeKey.",
    });
    return undefined;
  }
}

/** The key's state, region, deletion protection and rotation policy. */
function keyChecks(key: KeyInfo, cluster: TargetCluster): Check[] {
  const checks: Check[] = [];
  checks.push(
    key.keyState === 'Enabled'
      ? {
          id: 'key-state',
          title: 'The KMS key is Enabled',
          status: 'pass',
          evidence: `KeyState ${key.keyState}`,
        }
      : {
          id: 'key-state',
          title: 'The KMS key is Enabled',
          status: 'fail',
          evidence: `KeyState ${key.keyState}: the API server cannot encrypt or decrypt Secrets`,
          remedy:
            key.keyState === 'PendingDeletion'
              ? 'KMS console → the key → Cancel deletion (API: CancelKeyDeletion), then enable it.'
              : 'KMS console → the key → Enable (API: EnableKey).',
        },
  );
  const keyRegion = /^acs:kms:([^:]+):/.exec(key.arn)?.[1];
  checks.push(
    !keyRegion || !cluster.regionId || keyRegion === cluster.regionId
      ? {
          id: 'key-region',
          title: "The key is in the cluster's region",
          status: 'pass',
          evidence: `key region ${keyRegion ?? 'unknown'}, cluster region ${cluster.regionId || 'unknown'}`,
        }
      : {
          id: 'key-region',
          title: "The key is in the cluster's region",
          status: 'fail',
          evidence: `key in ${keyRegion}, cluster in ${cluster.regionId}`,
          remedy: "Create a key in the cluster's region and switch Secret encryption to it.",
        },
  );
  checks.push(
    key.deletionProtection === 'Enabled'
      ? {
          id: 'deletion-protection',
          title: 'Deletion protection is on',
          status: 'pass',
          evidence: 'DeletionProtection Enabled',
        }
      : {
          id: 'deletion-protection',
          title: 'Deletion protection is on',
          status: 'warn',
          evidence: `DeletionProtection ${key.deletionProtection ?? 'Disabled'}: deleting the key would make the API server unavailable`,
          remedy: `KMS console → the key → enable deletion protection (API: SetDeletionProtection ProtectedResourceArn=${key.arn} EnableDeletionProtection=true).`,
        },
  );
  checks.push(
    key.automaticRotation === 'Enabled'
      ? {
          id: 'rotation',
          title: 'Automatic rotation is configured',
          status: 'pass',
          evidence: `every ${key.rotationInterval ?? '?'}; next rotation ${key.nextRotationDate ?? 'unknown'}`,
        }
      : {
          id: 'rotation',
          title: 'Automatic rotation is configured',
          status: 'warn',
          evidence: `AutomaticRotation ${key.automaticRotation}`,
          remedy: `KMS console → the key → Automatic rotation (API: UpdateRotationPolicy KeyId=${key.keyId} EnableAutomaticRotation=true RotationInterval=365d).`,
        },
  );

  return checks;
}

/** ActionTrail: refusals and use of the key by the managed role in the window; fills the timeline. */
async function evidenceChecks(
  clients: Pick<CloudClients, 'actionTrailRpc'>,
  key: KeyInfo,
  now: number,
  options: AuditOptions,
  result: ClusterAudit,
): Promise<Check[]> {
  const checks: Check[] = [];
  const window = options.evidenceWindowMs ?? 7 * 86_400_000;
  try {
    const events = await once(options.cache?.activity, key.keyId, () =>
      managedRoleActivity(clients, key.keyId, new Date(now - window), new Date(now)),
    );
    result.timeline = events.slice(0, 50).map((e) => ({
      time: e.eventTime.toISOString(),
      eventName: e.eventName,
      who: e.userIdentity.userName ?? e.userIdentity.type,
      ...(e.errorCode ? { error: e.errorCode } : {}),
    }));
    const refused = events.filter((e) => e.errorCode);
    const ok = events.filter((e) => !e.errorCode);
    checks.push(
      refused.length > 0
        ? {
            id: 'kms-refusals',
            title: 'KMS does not refuse the control plane',
            status: 'fail',
            evidence: `${refused.length} refused call(s), latest ${refused[0]?.eventName} ${refused[0]?.errorCode} at ${refused[0]?.eventTime.toISOString()}`,
            remedy:
              'Enable the key, and check the AliyunCSManagedSecurityRole authorization and the KMS key policy.',
          }
        : {
            id: 'kms-refusals',
            title: 'KMS does not refuse the control plane',
            status: 'pass',
            evidence: 'no refused call by aliyuncsmanagedsecurityrole in the window',
          },
    );
    checks.push(
      ok.length > 0
        ? {
            id: 'evidence',
            title: 'ActionTrail shows the control plane using the key',
            status: 'pass',
            evidence: `${ok.length} Encrypt/Decrypt/GenerateDataKey call(s) by aliyuncsmanagedsecurityrole; latest ${ok[0]?.eventTime.toISOString()}`,
          }
        : {
            id: 'evidence',
            title: 'ActionTrail shows the control plane using the key',
            status: 'warn',
            evidence: `no call by aliyuncsmanagedsecurityrole in the last ${Math.round(window / 86_400_000)} day(s) (a KMS v2 API server calls KMS only at start-up, rotation and DEK cache misses)`,
            remedy:
              'Check the ActionTrail console (Event Query, service Kms, user aliyuncsmanagedsecurityrole); write a Secret or rotate the key to produce fresh evidence.',
          },
    );
  } catch (err) {
    checks.push({
      id: 'evidence',
      title: 'ActionTrail shows the control plane using the key',
      status: 'warn',
      evidence: `LookupEvents failed: ${normalizeError(err).message}`,
      remedy: "Allow actiontrail:LookupEvents to the auditor's role.",
    });
  }

  return checks;
}

/**
 * Re-encryption coverage: the share of Secrets carrying the mark of the key's primary version, and whether
 * the API servers prove that those rewrites re-sealed them. "proven" needs both; "unproven" when the metrics
 * cannot be read; "not effective" when a rewrite now would not re-seal anything (case c).
 */
async function coverageCheck(
  secrets: SecretStore,
  key: KeyInfo,
  now: number,
  options: AuditOptions,
  result: ClusterAudit,
): Promise<Check> {
  const title = 'Secrets are re-encrypted for the current key version';
  try {
    const evidence = await sealing(key, options);
    const proof = evidence.verdict === 'effective' ? 'proven' : evidence.verdict;
    const c = await coverage(secrets, key.primaryKeyVersion, proof !== 'unproven');
    const share = c.total === 0 ? 1 : c.current / c.total;
    const since = key.lastRotationDate ? now - Date.parse(key.lastRotationDate) : undefined;
    result.coverage = {
      ...c,
      share,
      keyVersionId: key.primaryKeyVersion,
      ...(key.lastRotationDate ? { sinceRotation: key.lastRotationDate } : {}),
      proof,
      proofReason: evidence.reason,
    };
    const late = since !== undefined && since > (options.coverageGraceMs ?? 86_400_000);
    const status: Status =
      proof === 'not-effective'
        ? seedPending(evidence)
          ? 'warn'
          : 'fail'
        : share < 1
          ? late
            ? 'fail'
            : 'warn'
          : proof === 'proven'
            ? 'pass'
            : 'warn';
    const counted = `${c.current} of ${c.total} Secrets (${Math.floor(share * 1000) / 10}%) rewritten for ${key.primaryKeyVersion}${proof === 'proven' ? " under the API servers' proof" : ''}${since !== undefined ? `; rotated ${Math.round(since / 3_600_000)} h ago` : ''}`;
    return {
      id: 'coverage',
      title,
      status,
      evidence: `${proof === 'not-effective' ? 'not effective' : proof}: ${counted}. ${evidence.reason}`,
      ...(status === 'pass' ? {} : { remedy: coverageRemedy(proof, key, seedPending(evidence)) }),
    };
  } catch (err) {
    return {
      id: 'coverage',
      title,
      status: 'warn',
      evidence: `listing Secrets failed: ${normalizeError(err).message}`,
      remedy: "Give the suite's identity list on secrets (deploy/rbac.yaml).",
    };
  }
}

function coverageRemedy(
  proof: NonNullable<ClusterAudit['coverage']>['proof'],
  key: KeyInfo,
  pending = false,
): string {
  if (pending)
    return "The API servers' KMS plugin refused to seal a new seed (its Encrypt failed); kube-apiserver tries again on its own. Check KMS (throttling, the key's state, the managed role's permissions), then audit again in a few minutes; the reencrypt job waits for the seed before it sweeps.";
  if (proof === 'not-effective')
    return 'Have the control plane make a new data-key seed (a restart or upgrade of its API servers); the reencrypt job waits for it and then sweeps. Keep the previous key version enabled until then.';
  const run = `ack-kms-sentinel reencrypt --kubeconfig <cluster kubeconfig> --cluster-id <id> --key-version ${key.primaryKeyVersion}`;
  return proof === 'unproven'
    ? `${run}; and let the suite's identity get /metrics (deploy/rbac.yaml) so the re-encryption can be proven.`
    : run;
}

/** What the suite cannot read (least privilege) and a person must check. */
function manualChecks(): Check[] {
  const checks: Check[] = [];
  checks.push({
    id: 'ram-deny',
    title: 'RAM denies cs:UpdateKMSEncryption to everyone who should not change it',
    status: 'manual',
    evidence: 'the suite does not read RAM policies (least privilege)',
    remedy:
      'Attach a policy with {"Effect":"Deny","Action":["cs:UpdateKMSEncryption"],"Resource":["*"]} to the RAM users and roles that must not turn Secret encryption on or off.',
  });
  checks.push({
    id: 'network',
    title: 'The control plane can reach KMS (100.64.0.0/10)',
    status: 'manual',
    evidence: 'security group and network ACL rules are not readable by the suite',
    remedy:
      "Allow 100.64.0.0/10 in the security group's outbound rules and in the VPC network ACL inbound and outbound rules.",
  });
  return checks;
}

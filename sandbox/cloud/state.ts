import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterGrant } from '../../shared/cluster/permissions';
import type { ActionTrailEvent } from '../../shared/events/actiontrail';

/** Everything the emulated cloud remembers. Plain data, so it can be saved to a directory and loaded back. */
export interface KeyVersionState {
  keyVersionId: string;
  creationDate: string;
  /** AES-256 key material, base64. */
  material: string;
}

export interface KeyState {
  keyId: string;
  arn: string;
  keyState: 'Enabled' | 'Disabled' | 'PendingDeletion';
  creationDate: string;
  description: string;
  keySpec: 'Aliyun_AES_256';
  versions: KeyVersionState[];
  primaryKeyVersion: string;
  automaticRotation: 'Enabled' | 'Disabled';
  rotationIntervalSeconds?: number;
  lastRotationDate: string;
  nextRotationDate?: string;
  deletionProtection: 'Enabled' | 'Disabled';
  deletionProtectionDescription?: string;
  deleteDate?: string;
}

/** A KMS Secrets Manager secret: versions with their stages (ACSCurrent, ACSPrevious). */
export interface SecretState {
  secretName: string;
  versions: Array<{ versionId: string; data: string; createTime: string; stages: string[] }>;
}

export interface ClusterState {
  clusterId: string;
  name: string;
  regionId: string;
  clusterType: 'ManagedKubernetes' | 'Kubernetes' | 'ExternalKubernetes';
  profile: 'Default' | 'Edge' | 'Serverless' | 'Lingjun';
  clusterSpec: string;
  state: string;
  currentVersion: string;
  created: string;
  tags: Array<{ key: string; value: string }>;
  encryptionKeyId?: string;
  disableEncryption: boolean;
  lastKmsChange?: string;
  /** The kubeconfig DescribeClusterUserKubeconfig hands out (the local control plane's). */
  kubeconfig: string;
}

export interface LogRecord {
  time: number;
  contents: Record<string, string>;
}

export interface EmulatorState {
  accountId: string;
  region: string;
  /** Milliseconds the sandbox clock runs ahead of the real one (tests advance it). */
  clockOffsetMs: number;
  keys: KeyState[];
  /** KMS aliases: `alias/<name>` → key id. */
  aliases: Array<{ aliasName: string; keyId: string }>;
  secrets: SecretState[];
  clusters: ClusterState[];
  events: ActionTrailEvent[];
  /** The ActionTrail trail's SLS logstore: shard → records. */
  trailLogstore: LogRecord[][];
  /** Whether the account authorized the AliyunCSManagedSecurityRole system role (absent: yes). */
  managedRoleAuthorized?: boolean;
  /** RAM roles (STS assumes them): each role's id is the uid ACK grants to and issues kubeconfigs for. */
  ramRoles?: Array<{ roleName: string; roleId: string; createDate: string }>;
  /** CS GrantPermissions: uid of a RAM user or role → every grant it holds. */
  permissions?: Record<string, ClusterGrant[]>;
  /** OSS buckets: name → key → object (base64 body). */
  buckets: Record<string, Record<string, { body: string; contentType: string }>>;
}

export const emptyState = (accountId: string, region: string): EmulatorState => ({
  accountId,
  region,
  clockOffsetMs: 0,
  keys: [],
  aliases: [],
  secrets: [],
  clusters: [],
  events: [],
  trailLogstore: [[]],
  buckets: {},
});

const FILE = 'emulator-state.json';

export function saveState(dir: string, state: EmulatorState): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${FILE}.tmp`), JSON.stringify(state));
  writeFileSync(join(dir, FILE), readFileSync(join(dir, `${FILE}.tmp`)));
}

export function loadState(dir: string): EmulatorState | undefined {
  try {
    const raw = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as EmulatorState;
    // Dates come back as strings; ActionTrail events keep eventTime as a Date in memory.
    raw.buckets ??= {};
    raw.aliases ??= [];
    raw.secrets ??= [];
    raw.events = raw.events.map((e) => ({ ...e, eventTime: new Date(e.eventTime as unknown as string) }));
    return raw;
  } catch {
    return undefined;
  }
}

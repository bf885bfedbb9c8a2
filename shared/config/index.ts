import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors';
import { CLUSTER_ID, KEY_ID } from '../events/fields';
import { registerSecret } from '../log';
import { DEFAULT_CONCURRENCY, STRATEGIES, type Strategy } from '../reencrypt/defaults';
import { type NotifyChannelConfig, parseNotifyChannels } from './channels';
import { type Fix, parseFixes } from './fixes';
import { bad, durationMs, endpointUrl, list, type Problem, type Setting, setting } from './settings';

export type { NotifyChannelConfig } from './channels';

/**
 * The suite's one configuration, read from environment variables (the function environment `s.yaml` sets).
 * The CLI may also read a JSON file of the same variable names. Every setting is validated at start-up; a bad
 * one fails with the variable's name, what is wrong, and an example of a good value. Secret-valued settings
 * are never echoed, and are registered with the log redaction guard.
 */
export type ClusterTargets =
  | { mode: 'explicit'; clusterIds: string[] }
  | {
      mode: 'discover';
      regionId: string;
      profile?: string;
      clusterSpec?: string;
      tags: Record<string, string>;
    };

export type WatchedKeys = { mode: 'explicit'; keyIds: string[] } | { mode: 'from-clusters' };

export interface EndpointOverride {
  /** `http` or `https` */
  protocol: 'http' | 'https';
  /** `host:port`, what the Tea SDKs call `endpoint` */
  host: string;
  /** The full URL: what ali-oss takes as `endpoint`, and where the SLS reader pulls from */
  url: string;
}

export const SERVICES = ['kms', 'cs', 'actiontrail', 'fc', 'sls', 'oss', 'ram'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface SentinelConfig {
  region: string;
  accountId?: string;
  clusters: ClusterTargets;
  keys: WatchedKeys;
  /** An explicit cluster → KMS key mapping, used instead of reading `DescribeClusterDetail`'s `meta_data`. */
  clusterKeys: Record<string, string>;
  stateNamespace: string;
  /**
   * Which API server address the kubeconfigs name: `private` (CS `PrivateIpAddress=true`, for functions in the
   * clusters' VPC) or `public` (the cluster's internet endpoint).
   */
  clusterEndpoint: 'public' | 'private';
  reencrypt: {
    strategy: Strategy;
    concurrency: number;
    pageSize: number;
    /**
     * With the API servers' evidence: how long after a rotation to wait for them to make a new seed before
     * concluding they will not (case c). Without it: the wait before sweeping without proof.
     */
    adoptionDelayMs: number;
    /**
     * Where adoption is proven: `metrics` (the API servers' `/metrics`; unreadable, nothing is proven) or
     * `actiontrail` (the metrics are not read: every result is "rewritten, not proven").
     */
    proof: 'metrics' | 'actiontrail';
    /** The longest a job waits for the control plane to adopt the new key version. */
    adoptionTimeoutMs: number;
    /** Margin kept free before the function timeout to save the checkpoint and hand over. */
    budgetMarginMs: number;
    /** A job that has not saved progress for this long is presumed dead, and rotation-watch starts it again. */
    staleAfterMs: number;
    /** Polite mode: writes in flight follow the sweep's own latency (shared/reencrypt/throttle.ts). */
    polite: boolean;
    /** The etcd space guard: etcd's quota, and the share of it past which growth pauses the sweep. */
    etcdQuotaBytes: number;
    etcdQuotaShare: number;
    functionName: string;
    /**
     * How many API servers serve each cluster, as the operator states it: the set the proof needs when the
     * suite's identity cannot list the kube-system identity leases (without either, nothing is proven).
     */
    apiServers?: number;
  };
  /** The webhook starts jobs and reads their status through this function (it holds the kubeconfigs). */
  rotationWatchFunction: string;
  fleet: {
    /** Clusters a tick (rotation-watch) or an audit works on at once. */
    concurrency: number;
    /**
     * How often rotation-watch reads every target cluster's state even though no watched key moved (between
     * such ticks, a cluster recorded as done for its key's primary version is not read at all).
     */
    fullCheckMs: number;
  };
  notify: NotifyChannelConfig[];
  webhookSecret?: string;
  /**
   * Settings whose value lives in KMS Secrets Manager (`kms-secret://<name>`): the secret's name, read at
   * run time (`shared/kms/secrets.ts`), never kept in the function's configuration.
   */
  kmsSecrets: { webhookSecret?: string; notify?: string; stateSecret?: string };
  /**
   * The key of the done record's HMAC (`SENTINEL_STATE_SECRET`), read by rotation-watch alone: without it the
   * record is not used (every tick reads every cluster).
   */
  stateSecret?: string;
  /** How long after a KMS secret's rotation its previous version is still accepted (webhook signatures). */
  secretGraceMs: number;
  audit: {
    /**
     * The suite's OSS bucket: audit reports (JSON and HTML) under `audits/`, and rotation-watch's record of
     * the key versions each cluster is done with under `state/`.
     */
    reportBucket?: string;
    /** How far back ActionTrail evidence counts. */
    evidenceWindowMs: number;
    /** Opt-in fixes on keys in use that lack them (`SENTINEL_AUDIT_REMEDIATE`); none by default. */
    remediate: Fix[];
    /** The automatic rotation interval the `rotation-policy` fix sets, in days. */
    rotationIntervalDays: number;
  };
  /** The ActionTrail trail's SLS project and logstore: the only place trail-verify reads (never the event's). */
  trail: { project?: string; logstore?: string };
  endpoints: Partial<Record<ServiceName, EndpointOverride>>;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export type Env = Record<string, string | undefined>;

const K8S_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const REGION = /^[a-z]{2,}-[a-z0-9-]+$/;

const SETTINGS = {
  region: setting({
    name: 'SENTINEL_REGION',
    fallbacks: ['ALIBABA_CLOUD_REGION_ID', 'FC_REGION'],
    example: 'cn-hangzhou',
    parse: (v) => (REGION.test(v) ? v : bad('must be an Alibaba Cloud region id')),
  }),
  accountId: setting({
    name: 'SENTINEL_ACCOUNT_ID',
    fallbacks: ['FC_ACCOUNT_ID', 'ALIBABA_CLOUD_ACCOUNT_ID'],
    example: '1234567890123456',
    optional: true,
    parse: (v) => (/^\d{6,20}$/.test(v) ? v : bad('must be the numeric Alibaba Cloud account id')),
  }),
  clusterIds: setting({
    name: 'SENTINEL_CLUSTER_IDS',
    example: 'c8d3a1b2e4f5a6b7c8d9e0f1a2b3c4d5e,c0ffee0123456789abcdef0123456789a',
    optional: true,
    parse: list((v) => (CLUSTER_ID.test(v) ? v : bad(`"${v}" is not an ACK cluster id`))),
  }),
  clusterProfile: setting({
    name: 'SENTINEL_CLUSTER_PROFILE',
    example: 'Edge',
    optional: true,
    parse: (v) =>
      ['Default', 'Edge', 'Serverless', 'Lingjun'].includes(v)
        ? v
        : bad('must be one of Default, Edge, Serverless, Lingjun'),
  }),
  clusterEndpoint: setting({
    name: 'SENTINEL_CLUSTER_ENDPOINT',
    example: 'private',
    default: 'public',
    parse: (v) =>
      v === 'public' || v === 'private'
        ? v
        : bad('must be "public" (the API server\'s internet endpoint) or "private" (its VPC address)'),
  }),
  clusterSpec: setting({
    name: 'SENTINEL_CLUSTER_SPEC',
    example: 'ack.pro.small',
    optional: true,
    parse: (v) =>
      /^ack\.[a-z0-9.]+$/.test(v) ? v : bad('must be an ACK cluster spec such as ack.pro.small'),
  }),
  clusterTags: setting({
    name: 'SENTINEL_CLUSTER_TAGS',
    example: 'env=prod,team=platform',
    optional: true,
    parse: (v) => {
      const tags: Record<string, string> = {};
      for (const pair of v.split(',').map((part) => part.trim())) {
        const [key, value, extra] = pair.split('=');
        if (!key || value === undefined || extra !== undefined) return bad(`"${pair}" is not key=value`);
        tags[key.trim()] = value.trim();
      }
      return tags;
    },
  }),
  keyIds: setting({
    name: 'SENTINEL_KMS_KEY_IDS',
    example: 'key-hzz630494463ejqjx****,alias/ack-secrets',
    optional: true,
    parse: list((v) => (KEY_ID.test(v) ? v : bad(`"${v}" is not a KMS key id, alias or ARN`))),
  }),
  clusterKeys: setting({
    name: 'SENTINEL_CLUSTER_KEYS',
    example: 'c8d3a1b2e4f5=key-hzz630494463ejqjx****',
    optional: true,
    parse: (v) => {
      const map: Record<string, string> = {};
      for (const pair of v.split(',').map((part) => part.trim())) {
        const [cluster, key, extra] = pair.split('=').map((part) => part.trim());
        if (!cluster || !key || extra !== undefined || !CLUSTER_ID.test(cluster) || !KEY_ID.test(key)) {
          return bad(`"${pair}" is not clusterId=keyId`);
        }
        map[cluster] = key;
      }
      return map;
    },
  }),
  stateNamespace: setting({
    name: 'SENTINEL_STATE_NAMESPACE',
    example: 'ack-kms-sentinel',
    default: 'ack-kms-sentinel',
    parse: (v) =>
      v.length <= 63 && K8S_NAME.test(v) ? v : bad('must be a Kubernetes namespace name (RFC 1123 label)'),
  }),
  strategy: setting({
    name: 'SENTINEL_REENCRYPT_STRATEGY',
    example: 'annotate',
    default: 'annotate',
    parse: (v) =>
      (STRATEGIES as readonly string[]).includes(v)
        ? (v as Strategy)
        : bad(`must be ${STRATEGIES.map((name) => `"${name}"`).join(' or ')}`),
  }),
  concurrency: setting({
    name: 'SENTINEL_REENCRYPT_CONCURRENCY',
    example: '64',
    default: String(DEFAULT_CONCURRENCY),
    parse: (v) => intIn(v, 1, 256),
  }),
  pageSize: setting({
    name: 'SENTINEL_REENCRYPT_PAGE_SIZE',
    example: '500',
    default: '500',
    parse: (v) => intIn(v, 1, 5000),
  }),
  adoptionDelay: setting({
    name: 'SENTINEL_REENCRYPT_ADOPTION_DELAY',
    example: '3m',
    default: '3m',
    parse: durationMs,
  }),
  proof: setting({
    name: 'SENTINEL_REENCRYPT_PROOF',
    example: 'metrics',
    default: 'metrics',
    parse: (v) => (v === 'metrics' || v === 'actiontrail' ? v : bad('must be "metrics" or "actiontrail"')),
  }),
  adoptionTimeout: setting({
    name: 'SENTINEL_REENCRYPT_ADOPTION_TIMEOUT',
    example: '30m',
    default: '30m',
    parse: durationMs,
  }),
  budgetMargin: setting({
    name: 'SENTINEL_REENCRYPT_BUDGET_MARGIN',
    example: '30s',
    default: '30s',
    parse: durationMs,
  }),
  apiServers: setting({
    name: 'SENTINEL_API_SERVERS',
    example: '3',
    optional: true,
    parse: (v) => intIn(v, 1, 64),
  }),
  polite: setting({
    name: 'SENTINEL_REENCRYPT_POLITE',
    example: 'true',
    default: 'true',
    parse: (v) => (v === 'true' || v === 'false' ? v === 'true' : bad('must be "true" or "false"')),
  }),
  etcdQuota: setting({
    name: 'SENTINEL_ETCD_QUOTA',
    example: '8Gi',
    // etcd's own default --quota-backend-bytes.
    default: '2Gi',
    parse: (v) => {
      const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(v);
      const bytes = m ? Number(m[1]) * 1024 ** ['', 'Ki', 'Mi', 'Gi'].indexOf(m[2] ?? '') : Number.NaN;
      return bytes >= 1024 * 1024
        ? bytes
        : bad("must be etcd's --quota-backend-bytes, e.g. 8Gi or 2147483648");
    },
  }),
  etcdQuotaShare: setting({
    name: 'SENTINEL_ETCD_QUOTA_SHARE',
    example: '0.8',
    default: '0.8',
    parse: (v) => {
      const share = Number(v);
      return /^0?\.\d+$|^1(\.0*)?$/.test(v) && share > 0 && share <= 1
        ? share
        : bad('must be a fraction of the quota above 0 and at most 1, e.g. 0.8');
    },
  }),
  staleAfter: setting({
    name: 'SENTINEL_REENCRYPT_STALE_AFTER',
    example: '1h',
    default: '1h',
    parse: durationMs,
  }),
  fleetConcurrency: setting({
    name: 'SENTINEL_FLEET_CONCURRENCY',
    example: '16',
    default: '16',
    parse: (v) => intIn(v, 1, 64),
  }),
  fullCheck: setting({
    name: 'SENTINEL_FULL_CHECK_INTERVAL',
    example: '24h',
    default: '24h',
    parse: durationMs,
  }),
  rotationWatchFunction: setting({
    name: 'SENTINEL_ROTATION_WATCH_FUNCTION',
    example: 'ack-kms-sentinel-rotation-watch',
    default: 'ack-kms-sentinel-rotation-watch',
    parse: (v) => (/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(v) ? v : bad('must be an FC 3.0 function name')),
  }),
  reencryptFunction: setting({
    name: 'SENTINEL_REENCRYPT_FUNCTION',
    example: 'ack-kms-sentinel-reencrypt',
    default: 'ack-kms-sentinel-reencrypt',
    parse: (v) => (/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(v) ? v : bad('must be an FC 3.0 function name')),
  }),
  notify: setting({
    name: 'SENTINEL_NOTIFY_CHANNELS',
    example:
      '[{"type":"webhook","url":"https://hooks.example.com/kms","secret":"<32+ chars>"}] or kms-secret://ack-kms-sentinel-channels',
    default: '[]',
    secret: true,
    parse: (v) => kmsSecretName(v, 'ack-kms-sentinel-channels') ?? parseNotifyChannels(v),
  }),
  webhookSecret: setting({
    name: 'SENTINEL_WEBHOOK_SECRET',
    example:
      '<a random string of at least 32 characters, e.g. from `openssl rand -hex 32`> or kms-secret://ack-kms-sentinel-webhook',
    optional: true,
    secret: true,
    parse: (v) =>
      kmsSecretName(v, 'ack-kms-sentinel-webhook') ??
      (v.length >= 32 ? v : bad(`must be at least 32 characters long (it has ${v.length})`)),
  }),
  stateSecret: setting({
    name: 'SENTINEL_STATE_SECRET',
    example: 'kms-secret://ack-kms-sentinel-state',
    optional: true,
    secret: true,
    parse: (v) =>
      kmsSecretName(v, 'ack-kms-sentinel-state') ??
      (v.length >= 32 ? v : bad(`must be at least 32 characters long (it has ${v.length})`)),
  }),
  // Short: a rotated-out webhook secret (leaked, or held by someone who left) stays valid this long.
  secretGrace: setting({
    name: 'SENTINEL_SECRET_GRACE',
    example: '15m',
    default: '15m',
    parse: (v) => {
      const ms = durationMs(v);
      return typeof ms === 'number' && ms > 24 * 3_600_000 ? bad('must be at most 24h') : ms;
    },
  }),
  reportBucket: setting({
    name: 'SENTINEL_REPORT_BUCKET',
    example: 'ack-kms-sentinel-1234567890123456-cn-hangzhou',
    optional: true,
    parse: (v) =>
      /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(v)
        ? v
        : bad('must be an OSS bucket name (3-63 lower-case letters, digits, dashes)'),
  }),
  trailProject: setting({
    name: 'SENTINEL_TRAIL_PROJECT',
    example: 'actiontrail-1234567890123456',
    optional: true,
    parse: (v) =>
      /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(v) ? v : bad('must be an SLS project name (3-63 a-z, 0-9, -)'),
  }),
  trailLogstore: setting({
    name: 'SENTINEL_TRAIL_LOGSTORE',
    example: 'actiontrail_ack-kms-sentinel',
    optional: true,
    parse: (v) =>
      /^[a-z0-9_][a-z0-9_-]{1,61}[a-z0-9_]$/.test(v)
        ? v
        : bad('must be an SLS logstore name (3-63 a-z, 0-9, _, -)'),
  }),
  remediate: setting({
    name: 'SENTINEL_AUDIT_REMEDIATE',
    example: 'deletion-protection,rotation-policy',
    optional: true,
    parse: (v) => {
      const fixes = parseFixes(v);
      return typeof fixes === 'string' ? bad(fixes) : fixes;
    },
  }),
  rotationInterval: setting({
    name: 'SENTINEL_AUDIT_ROTATION_INTERVAL_DAYS',
    example: '365',
    default: '365',
    parse: (v) => intIn(v, 7, 2_555),
  }),
  evidenceWindow: setting({
    name: 'SENTINEL_AUDIT_EVIDENCE_WINDOW',
    example: '168h',
    default: '168h',
    parse: durationMs,
  }),
  logLevel: setting({
    name: 'SENTINEL_LOG_LEVEL',
    example: 'info',
    default: 'info',
    parse: (v) =>
      v === 'debug' || v === 'info' || v === 'warn' || v === 'error'
        ? v
        : bad('must be debug, info, warn or error'),
  }),
} satisfies Record<string, Setting<unknown>>;

/**
 * The suite's bucket when SENTINEL_REPORT_BUCKET is unset: OSS bucket names are global, so the default carries
 * the account and the region (a fixed name is owned by whoever created it first, and collides across regions).
 */
export const defaultReportBucket = (accountId: string, region: string): string =>
  `ack-kms-sentinel-${accountId}-${region}`;

const KMS_SECRET = 'kms-secret://';

/**
 * `kms-secret://<name>`: a KMS Secrets Manager secret. Each setting has its name prefix, the only secrets
 * the RAM policy lets the functions that need it read: the webhook's signing secret is for the webhook alone.
 */
function kmsSecretName(v: string, prefix: string): { kmsSecret: string } | Problem | undefined {
  if (!v.startsWith(KMS_SECRET)) return undefined;
  const name = v.slice(KMS_SECRET.length);
  return name.startsWith(prefix) && /^[\w/+=.@-]{1,192}$/.test(name)
    ? { kmsSecret: name }
    : bad(`must name a KMS secret whose name starts with ${prefix} (kms-secret://${prefix})`);
}

const literal = <T>(v: T | { kmsSecret: string } | undefined): T | undefined =>
  typeof v === 'object' && v !== null && 'kmsSecret' in v ? undefined : v;
const kmsName = (v: unknown): string | undefined =>
  typeof v === 'object' && v !== null && 'kmsSecret' in v
    ? (v as { kmsSecret: string }).kmsSecret
    : undefined;

function intIn(v: string, min: number, max: number): number | Problem {
  if (!/^\d+$/.test(v)) return bad(`must be a whole number between ${min} and ${max}`);
  const n = Number(v);
  return n >= min && n <= max ? n : bad(`must be between ${min} and ${max}`);
}

const endpointSetting = (service: ServiceName) =>
  setting({
    name: `SENTINEL_ENDPOINT_${service.toUpperCase()}`,
    example: `http://127.0.0.1:4566 (or https://${service}.cn-hangzhou.aliyuncs.com)`,
    optional: true,
    parse: endpointUrl,
  });

/** Settings only the webhook is given (s.yaml): its signing secret is for the webhook alone. */
/**
 * Secret-valued settings only one function reads, so only that function's environment carries them: the
 * webhook's signing secret, and the done record's HMAC key (rotation-watch's alone: a holder of the webhook
 * secret must not be able to forge the record).
 */
export const FUNCTION_ONLY_SETTINGS: Readonly<Record<string, 'webhook' | 'rotation-watch'>> = {
  [SETTINGS.webhookSecret.name]: 'webhook',
  [SETTINGS.stateSecret.name]: 'rotation-watch',
};

/**
 * Every setting the functions read, in the order s.yaml lists them: what `npm run deploy:env` writes into
 * s.yaml and what deploy:check validates each function's environment against.
 */
export const SETTING_TABLE: ReadonlyArray<Setting<unknown>> = [
  ...Object.values(SETTINGS),
  ...SERVICES.map((service) => endpointSetting(service)),
];

/** Reads one setting; a bad value is recorded as a problem (every problem is reported at once) and reads as undefined. */
type Read = <T>(spec: Setting<T>) => T | undefined;

/** Where the clusters and keys are: named, or discovered by profile, spec and tags. */
function targetSettings(read: Read, problems: string[]) {
  const region = read(SETTINGS.region);
  const clusterIds = read(SETTINGS.clusterIds);
  const profile = read(SETTINGS.clusterProfile);
  const clusterSpec = read(SETTINGS.clusterSpec);
  const tags = read(SETTINGS.clusterTags);
  if (clusterIds && (profile || clusterSpec || tags)) {
    problems.push(
      'SENTINEL_CLUSTER_IDS: cannot be combined with SENTINEL_CLUSTER_PROFILE, SENTINEL_CLUSTER_SPEC or SENTINEL_CLUSTER_TAGS; ' +
        'name the clusters, or describe them for discovery (example: SENTINEL_CLUSTER_PROFILE=Edge)',
    );
  }
  const keyIds = read(SETTINGS.keyIds);
  return {
    region: region ?? '',
    clusters: clusterIds
      ? { mode: 'explicit' as const, clusterIds }
      : {
          mode: 'discover' as const,
          regionId: region ?? '',
          ...(profile ? { profile } : {}),
          ...(clusterSpec ? { clusterSpec } : {}),
          tags: tags ?? {},
        },
    keys: keyIds ? { mode: 'explicit' as const, keyIds } : { mode: 'from-clusters' as const },
  };
}

function endpointSettings(read: Read): SentinelConfig['endpoints'] {
  const endpoints: SentinelConfig['endpoints'] = {};
  for (const service of SERVICES) {
    const e = read(endpointSetting(service));
    if (e) endpoints[service] = e;
  }
  return endpoints;
}

/** The secret-valued settings: a literal value, or the name of the KMS secret that holds it. */
function secretSettings(
  read: Read,
): Pick<SentinelConfig, 'notify' | 'webhookSecret' | 'kmsSecrets' | 'stateSecret'> {
  const notify = read(SETTINGS.notify);
  const webhookSecret = read(SETTINGS.webhookSecret);
  const stateSecret = read(SETTINGS.stateSecret);
  return {
    notify: literal(notify) ?? [],
    webhookSecret: literal(webhookSecret),
    stateSecret: literal(stateSecret),
    kmsSecrets: {
      ...(kmsName(stateSecret) ? { stateSecret: kmsName(stateSecret) } : {}),
      ...(kmsName(webhookSecret) ? { webhookSecret: kmsName(webhookSecret) } : {}),
      ...(kmsName(notify) ? { notify: kmsName(notify) } : {}),
    },
  };
}

const reencryptSettings = (read: Read): SentinelConfig['reencrypt'] => ({
  strategy: read(SETTINGS.strategy) ?? 'annotate',
  concurrency: read(SETTINGS.concurrency) ?? 0,
  pageSize: read(SETTINGS.pageSize) ?? 0,
  adoptionDelayMs: read(SETTINGS.adoptionDelay) ?? 0,
  adoptionTimeoutMs: read(SETTINGS.adoptionTimeout) ?? 0,
  proof: read(SETTINGS.proof) ?? 'metrics',
  budgetMarginMs: read(SETTINGS.budgetMargin) ?? 0,
  staleAfterMs: read(SETTINGS.staleAfter) ?? 0,
  polite: read(SETTINGS.polite) ?? true,
  etcdQuotaBytes: read(SETTINGS.etcdQuota) ?? 0,
  etcdQuotaShare: read(SETTINGS.etcdQuotaShare) ?? 0.8,
  functionName: read(SETTINGS.reencryptFunction) ?? '',
  ...optional('apiServers', read(SETTINGS.apiServers)),
});

const optional = <K extends string, T>(key: K, value: T | undefined) =>
  (value === undefined ? {} : { [key]: value }) as Partial<Record<K, T>>;

const auditSettings = (read: Read): SentinelConfig['audit'] => ({
  reportBucket: read(SETTINGS.reportBucket),
  evidenceWindowMs: read(SETTINGS.evidenceWindow) ?? 0,
  remediate: read(SETTINGS.remediate) ?? [],
  rotationIntervalDays: read(SETTINGS.rotationInterval) ?? 365,
});

/**
 * Reads and validates the configuration. All problems are collected, so one start-up names every bad setting.
 * `file` is an optional JSON object of the same variable names (the CLI's `--config`); the environment wins.
 */
export function loadConfig(env: Env = process.env, options: { file?: string } = {}): SentinelConfig {
  const source: Env = { ...(options.file ? readConfigFile(options.file) : {}), ...env };
  const problems: string[] = [];
  const read: Read = (spec) => {
    const result = spec.read(source);
    if (result.ok) return result.value;
    problems.push(result.problem);
    return undefined;
  };
  const config = {
    ...targetSettings(read, problems),
    endpoints: endpointSettings(read),
    ...secretSettings(read),
    accountId: read(SETTINGS.accountId),
    clusterKeys: read(SETTINGS.clusterKeys) ?? {},
    stateNamespace: read(SETTINGS.stateNamespace) ?? '',
    clusterEndpoint: read(SETTINGS.clusterEndpoint) ?? 'public',
    reencrypt: reencryptSettings(read),
    rotationWatchFunction: read(SETTINGS.rotationWatchFunction) ?? '',
    fleet: {
      concurrency: read(SETTINGS.fleetConcurrency) ?? 16,
      fullCheckMs: read(SETTINGS.fullCheck) ?? 0,
    },
    secretGraceMs: read(SETTINGS.secretGrace) ?? 0,
    audit: auditSettings(read),
    trail: { project: read(SETTINGS.trailProject), logstore: read(SETTINGS.trailLogstore) },
    logLevel: read(SETTINGS.logLevel) ?? 'info',
  } satisfies SentinelConfig;

  if (problems.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      path: problems.map((p) => p.split(':')[0]).join(','),
    });
  }
  registerSecret(config.webhookSecret);
  for (const channel of config.notify) {
    registerSecret(channel.secret);
    registerSecret(channel.url);
  }
  return config;
}

export function readConfigFile(file: string): Env {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    // Never V8's JSON message: it quotes the text around the error, which may be a secret-valued setting.
    const e = err as NodeJS.ErrnoException;
    const position = /position (\d+)/.exec(e.message)?.[1];
    const why = e.code
      ? `cannot be read (${e.code})`
      : `is not valid JSON${position ? ` (error at character ${position})` : ''}`;
    throw new ConfigError(`Invalid configuration file ${file}: ${why}`, { path: file });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      `Invalid configuration file ${file}: must be a JSON object of setting names, e.g. {"SENTINEL_REGION": "cn-hangzhou"}`,
      { path: file },
    );
  }
  const env: Env = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!/^SENTINEL_[A-Z0-9_]+$/.test(key)) {
      throw new ConfigError(
        `Invalid configuration file ${file}: "${key}" is not a setting (names start with SENTINEL_)`,
        {
          path: `${file}:${key}`,
        },
      );
    }
    env[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return env;
}

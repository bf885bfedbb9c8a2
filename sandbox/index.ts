import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as $Kms from '@alicloud/kms20160120';
import { kubernetesRoles, roleName, suiteGrants } from '../shared/cluster/permissions';
import { IDENTITY_ROLE } from '../shared/cluster/rbac';
import { setGrants } from './cloud/ack-permissions';
import type { Credential } from './cloud/api';
import { type ConsoleClients, consoleClients } from './cloud/console-clients';
import { resolveLoopbackSubdomains } from './cloud/dns';
import { CloudEmulator } from './cloud/emulator';
import { controlServer } from './control-api';
import { ControlPlane, type ControlPlaneInfo } from './controlplane/controlplane';
import {
  certificateKubeconfig,
  issueClientCertificate,
  syncGrantedBindings,
} from './controlplane/identities';
import type { BalancerMode } from './controlplane/load-balancer';
import { AckConstantKeyIdProvider } from './kms-plugin/ack-provider';
import { AlibabaKmsKeyProvider } from './kms-plugin/alibaba-provider';
import { composeKeyId } from './kms-plugin/key-provider';

/**
 * The local sandbox: a real control plane whose Secrets are encrypted by the KMS v2 plugin, which encrypts
 * through the emulated Alibaba Cloud KMS with the managed role's credentials, so ActionTrail shows the
 * control plane's calls as on a real ACK cluster; the emulator also serves CS (one ACK Edge Pro cluster backed
 * by the local control plane), ActionTrail, SLS, EventBridge and FC. A small control API on loopback lets
 * tests and people act on it from another process.
 */
export interface CloudInfo {
  /** One endpoint for every emulated service (KMS, CS, ActionTrail, FC, SLS). */
  endpoint: string;
  region: string;
  accountId: string;
  user: { accessKeyId: string; accessKeySecret: string };
  managedRole: { accessKeyId: string; accessKeySecret: string; securityToken: string };
  clusterId: string;
  kmsKeyId: string;
  reportBucket: string;
}

/**
 * How the sandbox's KMS plugin names keys: `versioned` (the default) reports `<key>/<version>` as its key id,
 * so the API server makes a new seed after each rotation; `constant-key-id` behaves like the open-source ACK
 * plugin (the CMK id, constant; the version only in an annotation; an Encrypt + Decrypt health check in
 * every Status), so a rotation changes nothing until the API server restarts.
 */
export type PluginMode = 'versioned' | 'constant-key-id';
export const PLUGIN_MODES: readonly PluginMode[] = ['versioned', 'constant-key-id'];

export interface SandboxInfo extends ControlPlaneInfo {
  /**
   * The control API (`sandbox/control-api.ts`): `GET /kms`, `POST /kms/rotate`, `POST /kms/wait-adoption`,
   * `POST /kms/wait-seal`, `POST /kms/refuse-encrypt` (`{refuse}`: the plugins fail every Encrypt while true),
   * `POST /apiserver/probe-kms` (one KMS health probe: a Status call when the last answer is old enough;
   * `{apiServer: i}` for one API server), `POST /apiserver/restart` (all, or `{apiServer: i}`),
   * `POST /lb/mode` (`{mode}`), `POST /cloud/trail-trigger`.
   */
  control: string;
  pluginMode: PluginMode;
  /** The KMS key the plugin encrypts with, and its current key id (`<key>/<version>`). */
  kmsKeyId: string;
  kmsKeyIdWithVersion: string;
  cloud: CloudInfo;
}

export interface Sandbox {
  info: SandboxInfo;
  controlPlane: ControlPlane;
  cloud: CloudEmulator;
  stop(): Promise<void>;
}

function cloudInfo(cloud: CloudEmulator, role: Credential, kmsKeyId: string): CloudInfo {
  return {
    endpoint: cloud.url,
    region: cloud.state.region,
    accountId: cloud.state.accountId,
    user: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
    managedRole: {
      accessKeyId: role.accessKeyId,
      accessKeySecret: role.accessKeySecret,
      securityToken: role.securityToken ?? '',
    },
    clusterId: SANDBOX_CLUSTER_ID,
    kmsKeyId,
    reportBucket: SANDBOX_REPORT_BUCKET,
  };
}

export const SANDBOX_CLUSTER_ID = 'c-sandbox-edge-pro';

/**
 * The five functions' RAM roles exist (s.yaml's `role`, named as the functions); the sandbox cluster issues
 * each the kubeconfig ACK would (its role id in a client certificate) and binds them as GrantPermissions does.
 */
async function grantFunctionRoles(cloud: CloudEmulator, controlPlane: ControlPlane, options: SandboxOptions) {
  const { info } = controlPlane;
  const certDir = join(info.workDir, 'certs');
  cloud.clusterAccess.set(SANDBOX_CLUSTER_ID, {
    kubeconfigFor: (uid) =>
      certificateKubeconfig(
        info.apiServer,
        info.caFile,
        SANDBOX_CLUSTER_ID,
        uid,
        issueClientCertificate(certDir, uid),
      ),
    applyGrants: (uid, bindings) =>
      syncGrantedBindings(
        (method, path, body) => controlPlane.adminRequest(method, path, body),
        uid,
        bindings,
      ),
  });
  const { region } = cloud.state;
  for (const fn of ['rotation-watch', 'reencrypt', 'trail-verify', 'audit', 'webhook'])
    cloud.roleIdOf(roleName(fn, region));
  if (options.grantFunctionRoles === false) return;
  const grants = suiteGrants(SANDBOX_CLUSTER_ID, info.stateNamespace).filter(
    (g) => info.leaseAccess || g.role_name !== IDENTITY_ROLE,
  );
  for (const role of kubernetesRoles(region)) await setGrants(cloud, cloud.roleIdOf(role), grants);
}
/**
 * The sandbox's own clients (the KMS plugin's, the user's) talk to a process on this machine, which may be
 * busy running the whole test suite on two cores: generous timeouts, so load is not mistaken for failure.
 */
export const SANDBOX_TIMEOUTS = { connectTimeoutMs: 30_000, readTimeoutMs: 60_000 };
export const SANDBOX_KEY_ID = 'key-sandbox-0001';
export const SANDBOX_REPORT_BUCKET = 'ack-kms-sentinel-reports';

const keys = (c: Credential) => ({
  accessKeyId: c.accessKeyId,
  accessKeySecret: c.accessKeySecret,
  ...(c.securityToken ? { securityToken: c.securityToken } : {}),
});

/** The sandbox account's user, as a person at the console acts: KMS, CS and ActionTrail on the local cloud. */
export function sandboxUserClients(info: Pick<SandboxInfo, 'cloud'>): ConsoleClients {
  const { cloud } = info;
  const endpoint = {
    protocol: 'http' as const,
    host: cloud.endpoint.slice('http://'.length),
    url: cloud.endpoint,
  };
  return consoleClients(
    { region: cloud.region, endpoints: { kms: endpoint, cs: endpoint, actiontrail: endpoint } },
    cloud.user,
    { timeouts: SANDBOX_TIMEOUTS },
  );
}

export interface SandboxOptions {
  workDir?: string;
  stateDir?: string;
  plugin?: PluginMode;
  /** More kube-apiserver flags (the benchmark turns on the in-tree storage version migrator's API). */
  apiServerArgs?: string[];
  /**
   * `none`: the cluster starts without Secret encryption (CS reports it off, the API server writes
   * plaintext) until UpdateKMSEncryption turns it on.
   */
  encryption?: 'kms' | 'none';
  /** How many kube-apiservers, behind a load balancer when more than one (default 1). */
  apiServers?: number;
  /** How the load balancer spreads connections (default `round-robin`). */
  loadBalancer?: BalancerMode;
  /** `false`: the suite's identity (the cluster's kubeconfig in CS) may not list the identity leases. */
  leaseAccess?: boolean;
  /** etcd's `--quota-backend-bytes` and the API server's `--etcd-compaction-interval` (the etcd space guard's demo). */
  etcdQuotaBytes?: number;
  compactionIntervalSeconds?: number;
  /**
   * `false`: the functions' RAM roles start with no grant in the cluster (run `grant` as a deployment does);
   * by default they hold the suite's roles, as `grant` leaves them.
   */
  grantFunctionRoles?: boolean;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const pluginMode = options.plugin ?? 'versioned';
  resolveLoopbackSubdomains();
  const cloud = await CloudEmulator.start(options.stateDir ? { stateDir: options.stateDir } : {});
  try {
    const key = cloud.state.keys.find((k) => k.keyId === SANDBOX_KEY_ID) ?? cloud.createKey(SANDBOX_KEY_ID);
    cloud.createBucket(SANDBOX_REPORT_BUCKET);
    const endpoint = { protocol: 'http' as const, host: cloud.host, url: cloud.url };
    const endpoints = {
      kms: endpoint,
      cs: endpoint,
      actiontrail: endpoint,
      fc: endpoint,
      sls: endpoint,
      oss: endpoint,
    };
    const config = { region: cloud.state.region, accountId: cloud.state.accountId, endpoints };
    const role = cloud.managedRole(SANDBOX_CLUSTER_ID);
    // The control plane's KMS plugin calls the emulated KMS through the official SDK, as the managed role.
    const kms = consoleClients(config, keys(role), { timeouts: SANDBOX_TIMEOUTS }).kms;
    const provider =
      pluginMode === 'constant-key-id'
        ? new AckConstantKeyIdProvider(kms, key.keyId)
        : new AlibabaKmsKeyProvider(kms, key.keyId);
    const encrypted = options.encryption !== 'none';
    const controlPlane = await ControlPlane.start({
      ...(options.apiServerArgs ? { apiServerArgs: options.apiServerArgs } : {}),
      encryption: encrypted ? 'kms' : 'identity',
      provider,
      ...(options.apiServers ? { apiServers: options.apiServers } : {}),
      ...(options.loadBalancer ? { loadBalancer: options.loadBalancer } : {}),
      ...(options.leaseAccess === false ? { leaseAccess: false } : {}),
      ...(options.etcdQuotaBytes ? { etcdQuotaBytes: options.etcdQuotaBytes } : {}),
      ...(options.compactionIntervalSeconds === undefined
        ? {}
        : { compactionIntervalSeconds: options.compactionIntervalSeconds }),
      ...(options.workDir ? { workDir: options.workDir } : {}),
    });
    cloud.addCluster({
      clusterId: SANDBOX_CLUSTER_ID,
      name: 'sandbox-edge-pro',
      ...(encrypted ? { encryptionKeyId: key.keyId } : {}),
      disableEncryption: !encrypted,
      // What DescribeClusterUserKubeconfig hands out: the suite's least-privileged identity.
      kubeconfig: readFileSync(controlPlane.info.restrictedKubeconfig, 'utf8'),
    });
    await grantFunctionRoles(cloud, controlPlane, options);
    // UpdateKMSEncryption on the sandbox cluster switches its control plane, as ACK's does (a restart).
    cloud.encryptionSwitch = async (clusterId, enabled) => {
      if (clusterId === SANDBOX_CLUSTER_ID) await controlPlane.setEncryption(enabled ? 'kms' : 'identity');
    };
    const user = consoleClients(config, keys(cloud.user), { timeouts: SANDBOX_TIMEOUTS });
    const server = controlServer(controlPlane, cloud, key.keyId, async () => {
      const r = await user.kms.createKeyVersion(new $Kms.CreateKeyVersionRequest({ keyId: key.keyId }));
      return composeKeyId(key.keyId, r.keyVersion?.keyVersionId ?? '');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const info: SandboxInfo = {
      ...controlPlane.info,
      control: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      pluginMode,
      kmsKeyId: key.keyId,
      kmsKeyIdWithVersion: composeKeyId(key.keyId, key.primaryKeyVersion),
      cloud: cloudInfo(cloud, role, key.keyId),
    };
    return {
      info,
      controlPlane,
      cloud,
      async stop() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await controlPlane.stop();
        await cloud.stop();
      },
    };
  } catch (err) {
    await cloud.stop();
    throw err;
  }
}

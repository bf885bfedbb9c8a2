import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as $Kms from '@alicloud/kms20160120';
import type { Credential } from './cloud/api';
import { type ConsoleClients, consoleClients } from './cloud/console-clients';
import { resolveLoopbackSubdomains } from './cloud/dns';
import { CloudEmulator } from './cloud/emulator';
import { encodeCursor } from './cloud/sls';
import { ControlPlane, type ControlPlaneInfo } from './controlplane/controlplane';
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
   * The control API: `GET /kms`, `POST /kms/rotate`, `POST /kms/wait-adoption`, `POST /kms/wait-seal`,
   * `POST /kms/refuse-encrypt` (`{refuse}`: the plugin fails every Encrypt while true), `POST /apiserver/probe-kms`
   * (one KMS health probe: a Status call when the last answer is old enough), `POST /apiserver/restart`,
   * `POST /cloud/trail-trigger`.
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

export const SANDBOX_CLUSTER_ID = 'c-sandbox-edge-pro';
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

export async function startSandbox(
  options: {
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
  } = {},
): Promise<Sandbox> {
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
    // UpdateKMSEncryption on the sandbox cluster switches its control plane, as ACK's does (a restart).
    cloud.encryptionSwitch = async (clusterId, enabled) => {
      if (clusterId === SANDBOX_CLUSTER_ID) await controlPlane.setEncryption(enabled ? 'kms' : 'identity');
    };
    const user = consoleClients(config, keys(cloud.user), { timeouts: SANDBOX_TIMEOUTS });
    const server = controlServer(controlPlane, cloud, async () => {
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
      cloud: {
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
        kmsKeyId: key.keyId,
        reportBucket: SANDBOX_REPORT_BUCKET,
      },
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

function controlServer(cp: ControlPlane, cloud: CloudEmulator, rotate: () => Promise<string>): Server {
  let trailDelivered = cloud.trailRecords().length;
  const key = () => cloud.state.keys.find((k) => k.keyId === SANDBOX_KEY_ID);
  const currentKeyId = () => composeKeyId(SANDBOX_KEY_ID, key()?.primaryKeyVersion ?? '');
  return createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = chunks.length
          ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
          : {};
        const route = `${req.method} ${req.url}`;
        if (route === 'GET /kms') {
          return reply(200, {
            keyId: currentKeyId(),
            adoptedKeyId: cp.plugin.adoptedKeyId,
            sealedVersions: cp.plugin.sealedVersions,
            stats: cp.plugin.stats,
          });
        }
        if (route === 'POST /kms/wait-seal') {
          const version = typeof body.version === 'string' ? body.version : (key()?.primaryKeyVersion ?? '');
          const timeoutMs = typeof body.timeoutMs === 'number' ? body.timeoutMs : 120_000;
          await cp.plugin.waitForSeal(version, timeoutMs);
          return reply(200, { sealedVersions: cp.plugin.sealedVersions });
        }
        if (route === 'POST /kms/refuse-encrypt') {
          cp.plugin.refuseEncrypt = body.refuse === true;
          return reply(200, { refuseEncrypt: cp.plugin.refuseEncrypt, stats: cp.plugin.stats });
        }
        if (route === 'POST /apiserver/probe-kms') {
          const probe = await cp.adminRequest('GET', '/healthz/kms-providers');
          return reply(200, { status: probe.status, stats: cp.plugin.stats });
        }
        if (route === 'POST /apiserver/restart') {
          await cp.restartApiServer();
          return reply(200, { sealedVersions: cp.plugin.sealedVersions });
        }
        if (route === 'POST /kms/rotate') return reply(200, { keyId: await rotate() });
        if (route === 'POST /kms/wait-adoption') {
          const keyId = typeof body.keyId === 'string' ? body.keyId : currentKeyId();
          const timeoutMs = typeof body.timeoutMs === 'number' ? body.timeoutMs : 120_000;
          await cp.waitForAdoption(keyId, timeoutMs);
          return reply(200, { adoptedKeyId: cp.plugin.adoptedKeyId });
        }
        if (route === 'POST /cloud/trail-trigger') {
          // The SLS trigger's event for the trail records written since the last call (for another process).
          const total = cloud.trailRecords().length;
          const event = {
            source: {
              endpoint: cloud.url,
              projectName: 'actiontrail-sandbox',
              logstoreName: 'actiontrail_sandbox',
              shardId: 0,
              beginCursor: encodeCursor(trailDelivered),
              endCursor: encodeCursor(total),
            },
            parameter: {},
            jobName: 'sandbox-trail-trigger',
            taskId: `control-${total}`,
            cursorTime: Math.floor(cloud.now() / 1000),
          };
          trailDelivered = total;
          return reply(200, event);
        }
        return reply(404, { error: `no route ${route}` });
      } catch (err) {
        return reply(500, { error: (err as Error).message });
      }
    });
  });
}

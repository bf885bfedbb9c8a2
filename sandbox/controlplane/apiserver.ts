import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { KmsV2Plugin } from '../kms-plugin/plugin';
import { ExitedEarly, type Managed, startProcess, waitFor } from './processes';

/** One of the control plane's API servers, as `ControlPlaneInfo.apiServers` lists it. */
export interface ApiServerInfo {
  /** The sandbox's name for it (`kube-apiserver` when alone, `apiserver-<i>` behind a balancer). */
  name: string;
  /** Its own address (the balancer's backend). */
  url: string;
  /** The host name it runs under: kube-apiserver derives its identity (lease, `apiserver_id_hash`) from it. */
  hostname: string;
}

/**
 * Where a kube-apiserver of several runs: a UTS namespace of its own with its own host name, so its identity
 * differs from its siblings' (k8s.io/apiserver `pkg/server/config.go` hashes `os.Hostname()`), and a mount
 * namespace where its own KMS plugin's socket directory is mounted over the one the shared
 * EncryptionConfiguration names, as each host of a managed control plane has its own plugin at the same path.
 */
export interface HostNamespace {
  hostname: string;
  /** The directory holding this server's plugin socket. */
  pluginDir: string;
  /** The directory the EncryptionConfiguration's endpoint is in. */
  sharedKmsDir: string;
}

export interface ApiServerLaunch {
  binary: string;
  args: string[];
  logFile: string;
  /** Absent for a lone API server: it runs as any process on this machine, under the machine's name. */
  namespace?: HostNamespace;
  adminToken: string;
  caFile: string;
  timeoutMs: number;
}

export class ApiServer {
  private process?: Managed;

  constructor(
    readonly info: ApiServerInfo,
    readonly plugin: KmsV2Plugin,
    private readonly launch: ApiServerLaunch,
  ) {}

  /** Starts kube-apiserver and waits until it is ready. */
  async start(): Promise<void> {
    this.process = await launchApiServer(this.info, this.launch);
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  /** Stops it and starts it again under the same host name (so the same identity), until ready. */
  async restart(): Promise<void> {
    if (!this.process) throw new Error(`${this.info.name} is not running`);
    await this.stop();
    await this.start();
  }

  /**
   * Waits until this API server encrypts with `keyId`. It polls its plugin's Status about once a minute;
   * `/healthz/kms-providers` runs the same check when 20 s have passed since the last one, so poking it every
   * 2 s brings adoption down to ~20 s (docs/cloud-facts.md#kms-v2-internals).
   */
  async waitForAdoption(keyId: string, timeoutMs: number): Promise<void> {
    let done = false;
    const adopted = this.plugin.waitForAdoption(keyId, timeoutMs).finally(() => {
      done = true;
    });
    const poke = (async () => {
      while (!done) {
        await this.adminRequest('GET', '/healthz/kms-providers').catch(() => {});
        await Promise.race([new Promise((r) => setTimeout(r, 2_000)), adopted.catch(() => {})]);
      }
    })();
    await adopted;
    await poke;
    // `adopted` fires when the plugin answers the API server's Encrypt for the new key id, a moment before
    // the API server stores its new encryption state. It does that under the KMS health probe's lock, so an
    // answer to one more probe means the state is stored and every later write uses the new version.
    await this.adminRequest('GET', '/healthz/kms-providers');
  }

  /** A raw request to this API server alone, with the admin token. */
  adminRequest(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    return httpsRequest(this.info.url, method, path, this.launch.adminToken, this.launch.caFile, body);
  }
}

/** The command that starts kube-apiserver: as is, or inside its host namespace (root only: `unshare`). */
function command(launch: ApiServerLaunch): [string, string[]] {
  const ns = launch.namespace;
  if (!ns) return [launch.binary, launch.args];
  // `exec` keeps one process from unshare to kube-apiserver: the signals `Managed.stop` sends reach it.
  const script = 'hostname "$0" && mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return [
    'unshare',
    [
      '--uts',
      '--mount',
      'sh',
      '-c',
      script,
      ns.hostname,
      ns.pluginDir,
      ns.sharedKmsDir,
      launch.binary,
      ...launch.args,
    ],
  ];
}

/** Starts kube-apiserver and waits until it is ready (the self-generated serving certificate holds its CA). */
async function launchApiServer(info: ApiServerInfo, launch: ApiServerLaunch): Promise<Managed> {
  const [binary, args] = command(launch);
  const label = launch.namespace ? `kube-apiserver ${info.name}` : 'kube-apiserver';
  // On a loaded machine kube-apiserver has exited during start-up (seen once in CI, its log gone with the
  // sandbox): it gets three tries, and the error carries the end of its log.
  for (let attempt = 1; ; attempt++) {
    const apiserver = startProcess(label, binary, args, launch.logFile);
    try {
      await waitFor(
        label,
        async () =>
          (await httpsRequest(info.url, 'GET', '/readyz', launch.adminToken, launch.caFile)).status === 200,
        {
          timeoutMs: launch.timeoutMs,
          intervalMs: 250,
          abort: apiserver.exited,
          logTail: () => apiserver.tail(),
        },
      );
      return apiserver;
    } catch (err) {
      await apiserver.stop();
      if (!(err instanceof ExitedEarly) || /address already in use/.test(err.message) || attempt === 3)
        throw err;
      process.stderr.write(`sandbox: ${label} exited during start-up, starting it again (${err.message})\n`);
    }
  }
}

export function httpsRequest(
  base: string,
  method: string,
  path: string,
  token: string,
  caFile: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      `${base}${path}`,
      {
        method,
        ca: readFileSync(caFile),
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

import { createServer, type Server } from 'node:http';
import type { CloudEmulator } from './cloud/emulator';
import { encodeCursor } from './cloud/sls';
import type { ControlPlane } from './controlplane/controlplane';
import { BALANCER_MODES, type BalancerMode } from './controlplane/load-balancer';
import { composeKeyId } from './kms-plugin/key-provider';

/**
 * The sandbox's control API on loopback, for tests and people acting on the sandbox from another process.
 * With several API servers the top-level KMS fields are the first one's; `apiServers` has each one's.
 */
type Body = Record<string, unknown>;
type Route = (body: Body) => Promise<unknown>;

export function controlServer(
  cp: ControlPlane,
  cloud: CloudEmulator,
  keyId: string,
  rotate: () => Promise<string>,
): Server {
  const routes = { ...kmsRoutes(cp, cloud, keyId, rotate), ...apiServerRoutes(cp), ...cloudRoutes(cloud) };
  return createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body) : {};
        const route = `${req.method} ${req.url}`;
        const handler: Route | undefined = Object.hasOwn(routes, route)
          ? routes[route as keyof typeof routes]
          : undefined;
        if (!handler) return reply(404, { error: `no route ${route}` });
        return reply(200, await handler(body));
      } catch (err) {
        return reply(500, { error: (err as Error).message });
      }
    });
  });
}

const numberOr = (value: unknown, fallback: number) => (typeof value === 'number' ? value : fallback);

/** Each API server's plugin: what it adopted and sealed, its call counts, when it last answered Status. */
function perApiServer(cp: ControlPlane) {
  return cp.info.apiServers.map((s, i) => {
    const plugin = cp.plugins[i];
    return {
      name: s.name,
      adoptedKeyId: plugin?.adoptedKeyId,
      sealedVersions: plugin?.sealedVersions,
      stats: plugin?.stats,
      lastStatusAt: plugin?.statusAnswered.at(-1)?.toISOString(),
    };
  });
}

function kmsRoutes(
  cp: ControlPlane,
  cloud: CloudEmulator,
  keyId: string,
  rotate: () => Promise<string>,
): Record<string, Route> {
  const primary = () => cloud.state.keys.find((k) => k.keyId === keyId)?.primaryKeyVersion ?? '';
  return {
    'GET /kms': async () => ({
      keyId: composeKeyId(keyId, primary()),
      adoptedKeyId: cp.plugin.adoptedKeyId,
      sealedVersions: cp.plugin.sealedVersions,
      stats: cp.plugin.stats,
      apiServers: perApiServer(cp),
    }),
    // Resolves once every API server had a seed sealed under the version.
    'POST /kms/wait-seal': async (body) => {
      const version = typeof body.version === 'string' ? body.version : primary();
      await Promise.all(cp.plugins.map((p) => p.waitForSeal(version, numberOr(body.timeoutMs, 120_000))));
      return { sealedVersions: cp.plugin.sealedVersions, apiServers: perApiServer(cp) };
    },
    // Every API server's plugin refuses Encrypt while true: they share the one KMS.
    'POST /kms/refuse-encrypt': async (body) => {
      for (const p of cp.plugins) p.refuseEncrypt = body.refuse === true;
      return { refuseEncrypt: cp.plugin.refuseEncrypt, stats: cp.plugin.stats };
    },
    'POST /kms/rotate': async () => ({ keyId: await rotate() }),
    'POST /kms/wait-adoption': async (body) => {
      const target = typeof body.keyId === 'string' ? body.keyId : composeKeyId(keyId, primary());
      await cp.waitForAdoption(target, numberOr(body.timeoutMs, 120_000));
      return { adoptedKeyId: cp.plugin.adoptedKeyId };
    },
  };
}

function apiServerRoutes(cp: ControlPlane): Record<string, Route> {
  const index = (body: Body) => (typeof body.apiServer === 'number' ? body.apiServer : undefined);
  return {
    // Through the cluster's address, or to `{apiServer: i}` alone.
    'POST /apiserver/probe-kms': async (body) => {
      const probe = await cp.adminRequest('GET', '/healthz/kms-providers', undefined, index(body));
      return { status: probe.status, stats: cp.plugin.stats };
    },
    // Every API server, one after another, or `{apiServer: i}` alone.
    'POST /apiserver/restart': async (body) => {
      await cp.restartApiServer(index(body));
      return { sealedVersions: cp.plugin.sealedVersions, apiServers: perApiServer(cp) };
    },
    'POST /lb/mode': async (body) => {
      if (!BALANCER_MODES.includes(body.mode as BalancerMode))
        throw new Error(`mode must be one of ${BALANCER_MODES.join(', ')}`);
      cp.setLoadBalancerMode(body.mode as BalancerMode);
      return { loadBalancer: cp.info.loadBalancer };
    },
  };
}

function cloudRoutes(cloud: CloudEmulator): Record<string, Route> {
  let trailDelivered = cloud.trailRecords().length;
  return {
    // The SLS trigger's event for the trail records written since the last call (for another process).
    'POST /cloud/trail-trigger': async () => {
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
      return event;
    },
  };
}

import { KubeConfig } from '@kubernetes/client-node';
import { type CloudClients, createCloudClients, createRamRpc, type RpcCaller } from '../shared/cloud/clients';
import { type CloudCredentials, credentialsFromDefaultChain } from '../shared/cloud/credentials';
import { discoverClusters } from '../shared/cluster/discovery';
import { flowControlManifest } from '../shared/cluster/flow-control';
import { applySuiteManifests } from '../shared/cluster/manifests';
import {
  type ClusterGrant,
  type GrantRow,
  grantRole,
  kubernetesRoles,
  type PermissionRecord,
  type PermissionsApi,
  type RoleGrantResult,
} from '../shared/cluster/permissions';
import { loadConfig, type SentinelConfig } from '../shared/config';
import { PoisonError } from '../shared/errors';
import { UsageError } from './output';

export interface GrantFlags {
  clusterId: string[];
  all?: boolean;
  dryRun?: boolean;
  json?: boolean;
  config?: string;
  /** How the deployment names the functions' roles: `<prefix><function>` (default `ack-kms-sentinel-<region>-`). */
  rolePrefix?: string;
  /**
   * A kubeconfig allowed to write RBAC and flow-control objects in the one cluster named (the deployer's): then
   * the in-cluster half too, deploy/rbac.yaml and deploy/apf.yaml with the roles' user ids as its subjects.
   */
  kubeconfig?: string;
}

/** Where `grant` writes and what it calls: the process's own by default, the sandbox's in tests. */
export interface GrantDeps {
  env?: NodeJS.ProcessEnv;
  credentials?: () => Promise<CloudCredentials>;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/** CS GrantPermissions and DescribeUserPermission on the uid of a RAM user or role. */
export function csPermissionsApi(csRoa: CloudClients['csRoa']): PermissionsApi {
  const path = (uid: string) => `/permissions/users/${encodeURIComponent(uid)}`;
  return {
    async describe(uid) {
      const body = await csRoa('DescribeUserPermission', 'GET', path(uid));
      if (!Array.isArray(body))
        throw new PoisonError(`DescribeUserPermission ${uid}: the answer is not a list`, {
          code: 'MalformedResponse',
        });
      return body as PermissionRecord[];
    },
    async grant(uid, grants: ClusterGrant[]) {
      await csRoa('GrantPermissions', 'POST', path(uid), {}, grants);
    },
  };
}

/** A RAM role's id: the uid ACK grants to, and names in the client certificate of the role's kubeconfigs. */
async function roleIdOf(ram: RpcCaller, roleName: string): Promise<string> {
  const body = (await ram('GetRole', { RoleName: roleName })) as { Role?: { RoleId?: string } };
  const id = body.Role?.RoleId;
  if (!id)
    throw new PoisonError(`RAM GetRole ${roleName}: no RoleId in the answer`, { code: 'MalformedResponse' });
  return id;
}

async function targetClusters(flags: GrantFlags, config: SentinelConfig, clients: CloudClients) {
  if (!flags.all) return flags.clusterId;
  const found = (await discoverClusters(clients, config)).map((c) => c.clusterId);
  if (found.length === 0)
    throw new UsageError(
      'grant --all found no cluster: check SENTINEL_CLUSTER_PROFILE, _CLUSTER_SPEC and _CLUSTER_TAGS, or name them with --cluster-id',
    );
  return found;
}

const CHANGE_WORDS: Record<GrantRow['change'], string> = {
  added: 'granted',
  'would-add': 'would grant',
  present: 'already granted',
};

/** A table a person reads: one line per binding, then what was kept. */
function table(results: RoleGrantResult[]): string {
  const rows = results.flatMap((r) => r.rows);
  const head = ['RAM role', 'uid', 'cluster', 'binding', 'change'];
  const cells = rows.map((r) => [r.role, r.uid, r.cluster, r.binding, CHANGE_WORDS[r.change]]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const kept = results.map((r) => `${r.role}: ${r.kept} other grant(s) kept as they were`);
  return [line(head), ...cells.map(line), '', ...kept].join('\n');
}

/**
 * `ack-kms-sentinel grant --cluster-id <id>… | --all [--dry-run] [--json]`: binds each function's RAM role that
 * reaches clusters to the suite's ClusterRoles (deploy/rbac.yaml) through CS GrantPermissions, keeping every
 * other grant the role holds, and reads it back. Exit 0 when every role holds its grants (or, dry, would), 1
 * when one failed, 2 for usage errors.
 */
export async function grantCommand(flags: GrantFlags, deps: GrantDeps = {}): Promise<number> {
  const out = deps.stdout ?? ((t: string) => process.stdout.write(t));
  const err = deps.stderr ?? ((t: string) => process.stderr.write(t));
  if ((flags.all === true) === flags.clusterId.length > 0)
    throw new UsageError('grant needs either --cluster-id <id> (repeatable) or --all, not both');
  if (flags.kubeconfig && flags.clusterId.length !== 1)
    throw new UsageError(
      '--kubeconfig applies the manifests in one cluster: give exactly one --cluster-id with it',
    );
  const env = deps.env ?? process.env;
  const config = loadConfig(
    flags.all ? env : { ...env, SENTINEL_CLUSTER_IDS: flags.clusterId.join(',') },
    flags.config ? { file: flags.config } : {},
  );
  const credentials = await (deps.credentials ?? credentialsFromDefaultChain)();
  const clients = createCloudClients(config, credentials);
  const ram = createRamRpc(config, credentials);
  const clusterIds = await targetClusters(flags, config, clients);
  const api = csPermissionsApi(clients.csRoa);
  const results: RoleGrantResult[] = [];
  let failed = 0;
  for (const name of kubernetesRoles(config.region, flags.rolePrefix)) {
    try {
      const uid = await roleIdOf(ram, name);
      results.push(
        await grantRole(api, { name, uid }, clusterIds, config.stateNamespace, flags.dryRun === true),
      );
    } catch (e) {
      failed++;
      err(`grant: ${name}: ${(e as Error).message}\n`);
    }
  }
  const applied =
    flags.kubeconfig && failed === 0
      ? await applyInCluster(flags.kubeconfig, config.stateNamespace, results, flags.dryRun === true)
      : undefined;
  if (flags.json)
    out(
      `${JSON.stringify({ dryRun: flags.dryRun === true, clusterIds, roles: results, ...(applied ? { applied } : {}) })}\n`,
    );
  else out(`${table(results)}\n${applied ? `\napplied (server-side): ${applied.join(', ')}\n` : ''}`);
  return failed > 0 ? 1 : 0;
}

/**
 * The in-cluster half, where the deployer's kubeconfig allows it: the suite's ClusterRoles and state namespace
 * (deploy/rbac.yaml) and its API Priority and Fairness level (deploy/apf.yaml), whose FlowSchema names the
 * user ids ACK issues the roles just granted, so their requests queue in the suite's own low level.
 */
async function applyInCluster(
  file: string,
  stateNamespace: string,
  results: RoleGrantResult[],
  dryRun: boolean,
): Promise<string[]> {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  const users = results.map((r) => r.uid);
  return applySuiteManifests(kc, stateNamespace, flowControlManifest(users), dryRun);
}

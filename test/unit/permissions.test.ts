import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as $Cs from '@alicloud/cs20151215';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantCommand } from '../../bin/grant-command';
import { FUNCTIONS } from '../../deploy/ram';
import type { ConsoleClients } from '../../sandbox/cloud/console-clients';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import {
  type ClusterGrant,
  grantOf,
  grantRole,
  KUBERNETES_ROLES,
  kubernetesRoles,
  mergeGrants,
  type PermissionRecord,
  type PermissionsApi,
  suiteGrants,
} from '../../shared/cluster/permissions';
import { emulatorClients } from '../helpers/emulator';

const NS = 'ack-kms-sentinel';
const other: ClusterGrant = {
  cluster: 'c-other',
  namespace: 'team-a',
  role_name: 'dev',
  role_type: 'namespace',
  is_custom: false,
  is_ram_role: true,
};

/** CS as documented: GrantPermissions replaces the whole list; DescribeUserPermission reads it back. */
function fakeCs(initial: ClusterGrant[] = [], opts: { drop?: boolean } = {}) {
  let held = [...initial];
  const writes: ClusterGrant[][] = [];
  const api: PermissionsApi = {
    describe: async () =>
      held.map(
        (g): PermissionRecord => ({
          resource_id: g.role_type === 'namespace' ? `${g.cluster}/${g.namespace}` : g.cluster,
          resource_type: g.role_type === 'all-clusters' ? 'console' : g.role_type,
          role_name: g.is_custom ? g.role_name : '',
          role_type: g.is_custom ? 'custom' : g.role_name,
          is_owner: 0,
          is_ram_role: g.is_ram_role ? 1 : 0,
        }),
      ),
    grant: async (_uid, grants) => {
      writes.push(grants);
      held = opts.drop ? grants.slice(1) : [...grants];
    },
  };
  return { api, writes, held: () => held };
}

describe('binding a RAM role as ACK does', () => {
  it('grants the three ClusterRoles where each applies, for a RAM role', () => {
    expect(suiteGrants('c1', NS)).toEqual([
      {
        cluster: 'c1',
        namespace: '',
        role_name: 'ack-kms-sentinel-secrets',
        role_type: 'cluster',
        is_custom: true,
        is_ram_role: true,
      },
      {
        cluster: 'c1',
        namespace: NS,
        role_name: 'ack-kms-sentinel-state',
        role_type: 'namespace',
        is_custom: true,
        is_ram_role: true,
      },
      {
        cluster: 'c1',
        namespace: 'kube-system',
        role_name: 'ack-kms-sentinel-apiserver-identity',
        role_type: 'namespace',
        is_custom: true,
        is_ram_role: true,
      },
    ]);
  });

  it('reads every documented record back as the entry that grants it again, and refuses what it cannot read', () => {
    expect(
      grantOf({ resource_id: 'c1/ns', resource_type: 'namespace', role_type: 'dev', is_ram_role: 1 }),
    ).toEqual({
      cluster: 'c1',
      namespace: 'ns',
      role_name: 'dev',
      role_type: 'namespace',
      is_custom: false,
      is_ram_role: true,
    });
    expect(
      grantOf({ resource_id: 'all-clusters', resource_type: 'console', role_type: 'restricted' }),
    ).toMatchObject({
      cluster: '',
      role_type: 'all-clusters',
      role_name: 'restricted',
    });
    expect(
      grantOf({
        resource_id: 'c1',
        resource_type: 'cluster',
        role_type: 'custom',
        role_name: 'pod-reader',
        is_owner: 0,
      }),
    ).toMatchObject({ role_name: 'pod-reader', is_custom: true, role_type: 'cluster', is_ram_role: false });
    expect(() => grantOf({ resource_id: 'c1', resource_type: 'project', role_type: 'dev' })).toThrow(
      /resource_type/,
    );
    expect(() => grantOf({ resource_id: 'c1', resource_type: 'cluster', role_type: 'superuser' })).toThrow(
      /unknown role/,
    );
    expect(() => grantOf({ resource_id: 'c1', resource_type: 'namespace', role_type: 'dev' })).toThrow(
      /namespace/,
    );
  });

  it('merges: what the identity holds stays, each wanted grant is added once', () => {
    const wanted = suiteGrants('c1', NS);
    const { grants, added } = mergeGrants([other, wanted[0] as ClusterGrant], [...wanted, ...wanted]);
    expect(added).toEqual(wanted.slice(1));
    expect(grants).toEqual([other, ...wanted]);
  });

  it('writes the union, reads it back, and a second run writes nothing', async () => {
    const cs = fakeCs([other]);
    const role = { name: 'ack-kms-sentinel-reencrypt', uid: '300000000000000001' };
    const first = await grantRole(cs.api, role, ['c1'], NS, false);
    expect(first.rows.map((r) => r.change)).toEqual(['added', 'added', 'added']);
    expect(first.kept).toBe(1);
    expect(cs.writes).toEqual([[other, ...suiteGrants('c1', NS)]]);
    const second = await grantRole(cs.api, role, ['c1'], NS, false);
    expect(second.rows.map((r) => r.change)).toEqual(['present', 'present', 'present']);
    expect(cs.writes).toHaveLength(1);
  });

  it('a dry run writes nothing and says what it would grant', async () => {
    const cs = fakeCs();
    const result = await grantRole(cs.api, { name: 'r', uid: '3' }, ['c1', 'c2'], NS, true);
    expect(result.rows.map((r) => [r.cluster, r.change])).toEqual([
      ['c1', 'would-add'],
      ['c1', 'would-add'],
      ['c1', 'would-add'],
      ['c2', 'would-add'],
      ['c2', 'would-add'],
      ['c2', 'would-add'],
    ]);
    expect(cs.writes).toEqual([]);
  });

  it('a grant that did not take (or a lost one) is an error naming it, not a row', async () => {
    const cs = fakeCs([other], { drop: true });
    await expect(grantRole(cs.api, { name: 'r', uid: '3' }, ['c1'], NS, false)).rejects.toThrow(
      /did not take.*ClusterRole dev in team-a/,
    );
  });

  it('binds exactly the roles whose RAM policy lets them ask CS for a kubeconfig', () => {
    const reaching = FUNCTIONS.filter((fn) =>
      readFileSync(join(__dirname, '../../deploy/ram', `${fn}.json`), 'utf8').includes(
        'cs:DescribeClusterUserKubeconfig',
      ),
    ).map((fn) => `ack-kms-sentinel-${fn}`);
    expect([...KUBERNETES_ROLES].sort()).toEqual(reaching.sort());
    expect(kubernetesRoles('sentinel-hz-')).toEqual([
      'sentinel-hz-rotation-watch',
      'sentinel-hz-reencrypt',
      'sentinel-hz-audit',
    ]);
  });
});

describe('the emulated CS permissions, through the official SDK', () => {
  let cloud: CloudEmulator;
  let user: ConsoleClients;
  beforeAll(async () => {
    cloud = await CloudEmulator.start();
    user = emulatorClients(cloud, cloud.user);
    cloud.addCluster({ clusterId: 'c1', kubeconfig: '{}' });
    cloud.addCluster({ clusterId: 'c2', kubeconfig: '{}' });
  });
  afterAll(() => cloud.stop());

  it('GrantPermissions replaces the whole list and DescribeUserPermission reads it in the model the SDK knows', async () => {
    const uid = cloud.roleIdOf('some-role');
    const body = (g: Partial<$Cs.GrantPermissionsRequestBody>) =>
      new $Cs.GrantPermissionsRequestBody({ isCustom: false, isRamRole: true, namespace: '', ...g });
    await user.cs.grantPermissions(
      uid,
      new $Cs.GrantPermissionsRequest({
        body: [
          body({ cluster: 'c1', roleName: 'dev', roleType: 'namespace', namespace: 'a' }),
          body({ cluster: 'c2', roleName: 'ops', roleType: 'cluster' }),
        ],
      }),
    );
    await user.cs.grantPermissions(
      uid,
      new $Cs.GrantPermissionsRequest({
        body: [body({ cluster: 'c2', roleName: 'pod-reader', roleType: 'cluster', isCustom: true })],
      }),
    );
    const read = await user.cs.describeUserPermission(uid);
    expect(read.body?.map((r) => ({ ...r }))).toEqual([
      {
        resourceId: 'c2',
        resourceType: 'cluster',
        roleName: 'pod-reader',
        roleType: 'custom',
        isOwner: 0,
        isRamRole: 1,
      },
    ]);
  });

  it('refuses a bad entry by name, an unknown uid, and a RAM role as the caller', async () => {
    const uid = cloud.roleIdOf('another-role');
    const raw = (entries: unknown) =>
      user.csRoa('GrantPermissions', 'POST', `/permissions/users/${uid}`, {}, entries as unknown[]);
    await expect(
      raw([{ cluster: 'c1', role_type: 'namespace', role_name: 'admin', is_ram_role: true }]),
    ).rejects.toThrow(/body\[0\]: admin cannot be granted in a namespace/);
    await expect(
      raw([{ cluster: 'c-none', role_type: 'cluster', role_name: 'dev', is_ram_role: true }]),
    ).rejects.toThrow(/c-none not found/);
    await expect(
      raw([{ cluster: 'c1', role_type: 'cluster', role_name: 'dev', is_ram_role: false }]),
    ).rejects.toThrow(/is_ram_role/);
    await expect(user.csRoa('DescribeUserPermission', 'GET', '/permissions/users/999')).rejects.toThrow(
      /999/,
    );
    const role = emulatorClients(cloud, cloud.assumeRole('ack-kms-sentinel-reencrypt', 'fc'));
    await expect(
      role.csRoa('DescribeUserPermission', 'GET', `/permissions/users/${uid}`),
    ).rejects.toMatchObject({
      code: 'ForbiddenGrantPermissions',
    });
  });

  it('`grant` binds each cluster-reaching role, keeps its other grants, and is idempotent', async () => {
    for (const role of KUBERNETES_ROLES) cloud.roleIdOf(role);
    const audit = cloud.roleIdOf('ack-kms-sentinel-audit');
    await user.csRoa('GrantPermissions', 'POST', `/permissions/users/${audit}`, {}, [
      {
        cluster: 'c2',
        namespace: '',
        role_type: 'cluster',
        role_name: 'restricted',
        is_custom: false,
        is_ram_role: true,
      },
    ]);
    const env = {
      SENTINEL_REGION: cloud.state.region,
      SENTINEL_ACCOUNT_ID: cloud.state.accountId,
      SENTINEL_ENDPOINT_CS: cloud.url,
      SENTINEL_ENDPOINT_RAM: cloud.url,
      SENTINEL_STATE_NAMESPACE: NS,
    };
    const run = async (flags: { dryRun?: boolean; json?: boolean }) => {
      let stdout = '';
      const code = await grantCommand(
        { clusterId: ['c1'], ...flags },
        { env, credentials: async () => cloud.user, stdout: (t) => (stdout += t), stderr: () => {} },
      );
      return { code, stdout };
    };
    const dry = await run({ dryRun: true });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('would grant');
    expect(cloud.state.permissions?.[cloud.roleIdOf('ack-kms-sentinel-reencrypt')]).toBeUndefined();

    const first = await run({});
    expect(first.stdout.split('\n')[0]).toMatch(/^RAM role +uid +cluster +binding +change$/);
    expect(first.stdout).toContain('ClusterRole ack-kms-sentinel-state in ack-kms-sentinel');
    expect(first.stdout).toContain('ack-kms-sentinel-audit: 1 other grant(s) kept');
    expect(cloud.state.permissions?.[audit]).toContainEqual(
      expect.objectContaining({ cluster: 'c2', role_name: 'restricted' }),
    );
    for (const role of KUBERNETES_ROLES)
      expect(cloud.state.permissions?.[cloud.roleIdOf(role)]).toEqual(
        expect.arrayContaining(suiteGrants('c1', NS)),
      );

    const again = await run({ json: true });
    const parsed = JSON.parse(again.stdout) as { roles: Array<{ rows: Array<{ change: string }> }> };
    expect(parsed.roles.flatMap((r) => r.rows.map((x) => x.change))).toEqual(Array(9).fill('present'));
  });

  it('`grant --all` binds every cluster the configuration targets', async () => {
    let stdout = '';
    const code = await grantCommand(
      { clusterId: [], all: true, dryRun: true, json: true },
      {
        env: {
          SENTINEL_REGION: cloud.state.region,
          SENTINEL_ACCOUNT_ID: cloud.state.accountId,
          SENTINEL_ENDPOINT_CS: cloud.url,
          SENTINEL_ENDPOINT_RAM: cloud.url,
          SENTINEL_CLUSTER_IDS: 'c1,c2',
        },
        credentials: async () => cloud.user,
        stdout: (t) => {
          stdout += t;
        },
        stderr: () => {},
      },
    );
    expect(code).toBe(0);
    const parsed = JSON.parse(stdout) as {
      clusterIds: string[];
      roles: Array<{ rows: Array<{ cluster: string }> }>;
    };
    expect(parsed.clusterIds).toEqual(['c1', 'c2']);
    expect(new Set(parsed.roles.flatMap((r) => r.rows.map((x) => x.cluster)))).toEqual(new Set(['c1', 'c2']));
  });

  it('says what is wrong with the flags', async () => {
    await expect(grantCommand({ clusterId: [] })).rejects.toThrow(
      /--cluster-id <id> \(repeatable\) or --all/,
    );
    await expect(grantCommand({ clusterId: ['c1'], all: true })).rejects.toThrow(/not both/);
  });
});

import * as $Cs from '@alicloud/cs20151215';
import { describe, expect, it } from 'vitest';
import { consoleClients } from '../../sandbox/cloud/console-clients';
import { resolveLoopbackSubdomains } from '../../sandbox/cloud/dns';
import { splitKeyId } from '../../sandbox/kms-plugin/key-provider';
import { readSecretEvidence } from '../../shared/etcd/evidence';
import {
  isManagedSecurityRole,
  parseLookupEventsBody,
  parseSlsTriggerEvent,
  parseTrailLogRecord,
} from '../../shared/events';
import { readShardRange, trailRange } from '../../shared/trail/sls-reader';
import { coreApi, kubeConfig, rotateKey, sandboxInfo, waitForAdoption } from '../helpers/sandbox';
import { kubeConfigText } from '../helpers/secrets';

/** The control plane encrypts through the emulated KMS as the managed role: ActionTrail shows it. */
describe('the sandbox cloud behind the control plane', () => {
  const clients = () => {
    const { cloud } = sandboxInfo();
    const endpoint = {
      protocol: 'http' as const,
      host: cloud.endpoint.replace('http://', ''),
      url: cloud.endpoint,
    };
    return consoleClients(
      {
        region: cloud.region,
        accountId: cloud.accountId,
        endpoints: { kms: endpoint, cs: endpoint, actiontrail: endpoint, fc: endpoint, sls: endpoint },
      },
      cloud.user,
    );
  };

  it('seeds one ACK Edge Pro cluster backed by the local control plane, with Secret encryption on', async () => {
    const { cloud } = sandboxInfo();
    const cs = clients();
    const list = await cs.cs.describeClustersV1(
      new $Cs.DescribeClustersV1Request({
        clusterType: 'ManagedKubernetes',
        profile: 'Edge',
        clusterSpec: 'ack.pro.small',
      }),
    );
    expect(list.body?.clusters?.map((c) => c.clusterId)).toContain(cloud.clusterId);
    const detail = (await cs.csRoa('DescribeClusterDetail', 'GET', `/clusters/${cloud.clusterId}`)) as {
      meta_data: string;
    };
    expect(JSON.parse(detail.meta_data).Capabilities).toEqual({
      EncryptionKMSKeyId: cloud.kmsKeyId,
      DisableEncryption: false,
    });
    const kc = await cs.cs.describeClusterUserKubeconfig(
      cloud.clusterId,
      new $Cs.DescribeClusterUserKubeconfigRequest({ temporaryDurationMinutes: 30 }),
    );
    // The kubeconfig CS hands out reaches the local API server, and a Secret written there is stored under KMS v2.
    const viaCs = kubeConfigText(kc.body?.config ?? '');
    expect(kubeConfig(viaCs).getCurrentCluster()?.server).toBe(sandboxInfo().apiServer);
    await coreApi(sandboxInfo().kubeconfig).createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 'via-cs' }, stringData: { k: 'v' } },
    });
    const read = await coreApi(viaCs).readNamespacedSecret({ namespace: 'default', name: 'via-cs' });
    expect(read.metadata?.name).toBe('via-cs');
    const stored = (await readSecretEvidence(sandboxInfo().etcd, { prefix: '/registry/secrets/default/' }))
      .filter((s) => s.name === 'via-cs')
      .map((s) => [s.storage, s.providerName]);
    expect(stored).toEqual([['kms-v2', sandboxInfo().kmsProviderName]]);
  });

  it('a rotation shows in ActionTrail as the control plane encrypting with the new version, via LookupEvents and the SLS trigger', async () => {
    resolveLoopbackSubdomains();
    const { cloud } = sandboxInfo();
    await fetch(`${sandboxInfo().control}/cloud/trail-trigger`, { method: 'POST' }); // start the trigger's range here
    const { keyId } = await rotateKey();
    await waitForAdoption(keyId);
    const version = splitKeyId(keyId).keyVersionId;
    const admin = coreApi(sandboxInfo().kubeconfig);
    await admin.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 'after-rotation' }, stringData: { k: 'v' } },
    });

    await new Promise((r) => setTimeout(r, 1_100));
    const page = parseLookupEventsBody(
      await clients().actionTrailRpc('LookupEvents', {
        'LookupAttribute.1.Key': 'EventName',
        'LookupAttribute.1.Value': 'Encrypt',
        'LookupAttribute.2.Key': 'ResourceName',
        'LookupAttribute.2.Value': cloud.kmsKeyId,
        MaxResults: '50',
      }),
    );
    const byPlugin = page.events.filter(
      (e) => isManagedSecurityRole(e.userIdentity) && e.responseElements?.KeyVersionId === version,
    );
    expect(byPlugin.length).toBeGreaterThanOrEqual(1);
    expect(byPlugin[0]?.userIdentity.userName).toBe(`aliyuncsmanagedsecurityrole:${cloud.clusterId}`);

    const trigger = parseSlsTriggerEvent(
      await (await fetch(`${sandboxInfo().control}/cloud/trail-trigger`, { method: 'POST' })).text(),
    );
    const fromTrail = [];
    const trail = { project: trigger.source.projectName, logstore: trigger.source.logstoreName };
    const sls = { protocol: 'http' as const, host: new URL(cloud.endpoint).host, url: cloud.endpoint };
    const range = trailRange(trigger, { trail, endpoints: { sls }, region: cloud.region });
    for await (const batch of readShardRange(range, cloud.user)) {
      for (const log of batch) fromTrail.push(parseTrailLogRecord(log.contents));
    }
    const names = fromTrail.map(
      (e) => `${e.eventName}:${isManagedSecurityRole(e.userIdentity) ? 'role' : 'user'}`,
    );
    expect(names).toContain('CreateKeyVersion:user');
    expect(names).toContain('Encrypt:role');
    expect(
      fromTrail.some((e) => e.eventName === 'Encrypt' && e.responseElements?.KeyVersionId === version),
    ).toBe(true);
  });
});

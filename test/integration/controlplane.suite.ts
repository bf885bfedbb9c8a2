import { readFileSync } from 'node:fs';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCluster } from '../../shared/cluster/kube';
import { readSealingEvidence } from '../../shared/cluster/sealing';
import { readSecretEvidence, type StoredSecret, summarize } from '../../shared/etcd/evidence';
import {
  coreApi,
  kmsState,
  pool,
  probeKms,
  refuseEncrypt,
  rotateKey,
  sandboxInfo,
  waitForAdoption,
} from '../helpers/sandbox';
import { seedSecrets, snapshot } from '../helpers/secrets';

/**
 * The sandbox's acceptance: a real API server envelope-encrypts Secrets through our KMS v2 plugin, etcd
 * shows the key version of each, and after a rotation a rewrite moves every Secret to the new version
 * without changing a byte of its data.
 */
const NAMESPACES = ['cp-alpha', 'cp-bravo', 'cp-charlie', 'cp-delta', 'cp-echo'];
const COUNT = 300;

const ours = (s: StoredSecret) => NAMESPACES.includes(s.namespace);

describe('the local control plane with KMS v2 envelope encryption', () => {
  const core = () => coreApi(sandboxInfo().kubeconfig);
  let expected = new Map<string, string>();
  let revisionsBefore = new Map<string, number>();
  let keyV1 = '';
  let keyV2 = '';
  let rotatedKeyAt = new Date();
  let encryptErrors = 0;

  beforeAll(async () => {
    const before = await kmsState();
    keyV1 = before.adoptedKeyId ?? before.keyId;
    encryptErrors = before.stats?.errors ?? 0;
    // The rotation of the second test starts here, with the plugin refusing the new seed's Encrypt (KMS
    // throttled, say): kube-apiserver asks for it at its next Status call, which a probe makes only once the
    // last answer is 20 s old; the seeding below takes that long anyway, and its writes stay under keyV1.
    await refuseEncrypt(true);
    rotatedKeyAt = new Date();
    ({ keyId: keyV2 } = await rotateKey());
    // One immutable Secret (index 7) and one of about 900 KiB (index 11) among 300 small ones.
    expected = await seedSecrets(core(), {
      namespaces: NAMESPACES,
      count: COUNT,
      immutable: [7],
      large: [11],
    });
  });
  afterAll(() => refuseEncrypt(false));

  it('stores every Secret encrypted under the current key version, none in plaintext', async () => {
    const stored = (await readSecretEvidence(sandboxInfo().etcd)).filter(ours);
    expect(stored).toHaveLength(COUNT);
    const summary = summarize(stored);
    expect(summary.plaintext).toBe(0);
    expect(summary.byKeyId).toEqual({ [keyV1]: COUNT });
    expect(
      stored.every((s) => s.storage === 'kms-v2' && s.providerName === sandboxInfo().kmsProviderName),
    ).toBe(true);
    revisionsBefore = new Map(stored.map((s) => [`${s.namespace}/${s.name}`, s.modRevision]));
  });

  it('after a rotation, a rewrite moves every Secret to the new version once a new seed is sealed (a new key id alone is not enough), data unchanged', async () => {
    const { kubeconfig, etcd, kmsKeyId } = sandboxInfo();
    const cluster = openCluster(readFileSync(kubeconfig, 'utf8'));
    const evidence = (at: Date) =>
      readSealingEvidence(cluster, {
        keyId: kmsKeyId,
        // The sandbox's plugin reports `<key>/<version>`: the judged version is the new key id's.
        primaryKeyVersion: keyV2.slice(keyV2.lastIndexOf('/') + 1),
        lastRotationDate: at.toISOString(),
      });
    const [first = ''] = [...expected.keys()];
    const [firstNamespace = '', firstName = ''] = first.split('/');
    const writeFirst = async (value: string) => {
      await core().patchNamespacedSecret(
        {
          namespace: firstNamespace,
          name: firstName,
          body: { metadata: { annotations: { 'cp-write': value } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return (await readSecretEvidence(etcd)).find(
        (s) => s.namespace === firstNamespace && s.name === firstName,
      )?.keyId;
    };
    try {
      // Rotated in beforeAll, with the new seed's Encrypt refused: once a probe has made the API server ask for
      // it, the API server has recorded the new key id from Status and keeps writing with its old seed.
      expect(keyV2).not.toBe(keyV1);
      for (let i = 0; i < 60 && (await probeKms()).stats.errors === encryptErrors; i++)
        await new Promise((r) => setTimeout(r, 1_000));
      const pending = await evidence(rotatedKeyAt);
      expect(pending.verdict, pending.reason).toBe('not-effective');
      expect(pending.apiServers.map((a) => a.state)).toEqual(['seed-pending']);
      expect(pending.reason).toMatch(/reported the new key id but have not sealed a seed for it/);
      expect(await writeFirst('before the new seed'), 'a rewrite now stays under the old version').toBe(
        keyV1,
      );
      await refuseEncrypt(false);
      // kube-apiserver seals the seed at its next Status call.
      await waitForAdoption(keyV2);
      const sealed = await evidence(rotatedKeyAt);
      expect(sealed.verdict, sealed.reason).toBe('effective');
      expect(sealed.apiServers.map((a) => a.state)).toEqual(['new-key-id']);
    } finally {
      await refuseEncrypt(false);
      cluster.close();
    }

    const api = core();
    const rotatedAt = new Date().toISOString();
    await pool([...expected.keys()], 16, async (key) => {
      const [namespace = '', name = ''] = key.split('/');
      await api.patchNamespacedSecret(
        {
          namespace,
          name,
          body: { metadata: { annotations: { 'encryption-key-rotation-time': rotatedAt } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    });

    const stored = (await readSecretEvidence(sandboxInfo().etcd)).filter(ours);
    expect(summarize(stored).byKeyId).toEqual({ [keyV2]: COUNT });
    for (const s of stored) {
      expect(s.modRevision, `${s.namespace}/${s.name} was rewritten`).toBeGreaterThan(
        revisionsBefore.get(`${s.namespace}/${s.name}`) ?? 0,
      );
    }

    // Byte-for-byte: what the API serves now is what was created, including the immutable and the large one.
    const now = await snapshot(api, NAMESPACES);
    expect(new Map([...now].map(([key, s]) => [key, s.digest]))).toEqual(expected);
    const immutable = await api.readNamespacedSecret({ namespace: NAMESPACES[2] ?? '', name: 's-00007' });
    expect(immutable.immutable).toBe(true);
    expect(immutable.metadata?.annotations?.['encryption-key-rotation-time']).toBe(rotatedAt);
  });
});

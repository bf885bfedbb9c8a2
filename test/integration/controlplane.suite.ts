import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSecretEvidence, type StoredSecret, summarize } from '../../shared/etcd/evidence';
import { coreApi, kmsState, pool, rotateKey, sandboxInfo, waitForAdoption } from '../helpers/sandbox';
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

  beforeAll(async () => {
    // One immutable Secret (index 7) and one of about 900 KiB (index 11) among 300 small ones.
    expected = await seedSecrets(core(), {
      namespaces: NAMESPACES,
      count: COUNT,
      immutable: [7],
      large: [11],
    });
    keyV1 = (await kmsState()).keyId;
  });

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

  it('after a rotation and its adoption, a rewrite moves every Secret to the new version, data unchanged', async () => {
    const { keyId: keyV2 } = await rotateKey();
    expect(keyV2).not.toBe(keyV1);
    await waitForAdoption(keyV2);

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

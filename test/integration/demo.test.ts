import { describe, expect, it } from 'vitest';
import { runDemo } from '../helpers/demo';

/** The README's first command: the main job on the embedded default, ending with its summary. */
describe('npm run demo', () => {
  it('rotates the key and ends with every Secret under the new version in etcd, proven by the API server', async () => {
    const { code, stderr, summary } = await runDemo([]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(summary).toMatchObject({
      secrets: 300,
      rewritten: 300,
      failed: 0,
      claimedComplete: true,
      verdict: 'effective',
    });
    // The demo's own account (its table, its log) says what happened when etcd disagrees.
    const account = `${JSON.stringify(summary)}\n${stderr.slice(-4000)}`;
    expect(Object.values(summary.etcdKeyVersionsBefore), account).toEqual([300]);
    expect(Object.keys(summary.etcdKeyVersionsAfter), account).toEqual([
      `${summary.keyId}/${summary.newKeyVersion}`,
    ]);
    expect(summary.sealedByVersionAfter, account).toEqual({ [summary.newKeyVersion]: 300 });
    expect(summary.managedRoleEncryptEvents).toBeGreaterThanOrEqual(1);
    expect(typeof summary.durationMs).toBe('number');
    expect(stderr).toContain('etcd after');
  });
});

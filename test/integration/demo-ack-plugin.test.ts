import { describe, expect, it } from 'vitest';
import { runDemo } from '../helpers/demo';

/**
 * The demo on a control plane whose KMS plugin keeps its key id across rotations (the open-source ACK
 * plugin's behaviour): after a rotation without a restart the suite must not claim a re-encryption, and
 * etcd shows why: every seed is still sealed under the old version.
 */
describe('npm run demo -- --constant-key-id', () => {
  it('claims nothing: the API server proves a rewrite now would change nothing', async () => {
    const { code, stderr, summary } = await runDemo(['--constant-key-id', '--secrets=120']);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(summary).toMatchObject({
      secrets: 120,
      claimedComplete: false,
      verdict: 'not-effective',
      rewritten: 0,
    });
    const [old] = Object.keys(summary.sealedByVersionBefore);
    expect(old).not.toBe(summary.newKeyVersion);
    expect(summary.sealedByVersionBefore).toEqual({ [old ?? '']: 120 });
    expect(summary.sealedByVersionAfter, 'every Secret still sealed under the old version').toEqual({
      [old ?? '']: 120,
    });
  });
});

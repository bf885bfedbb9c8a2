import { describe, expect, it } from 'vitest';
import { runDemo } from '../helpers/demo';

/** The same control plane, restarted after the rotation (a new seed): then the job sweeps, and proves it. */
describe('npm run demo -- --constant-key-id --restart-control-plane', () => {
  it('sweeps after the restart, and every Secret ends sealed under the new version', async () => {
    const { code, stderr, summary } = await runDemo([
      ...['--constant-key-id', '--restart-control-plane'],
      '--secrets=120',
    ]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(summary).toMatchObject({
      secrets: 120,
      claimedComplete: true,
      verdict: 'effective',
      rewritten: 120,
    });
    expect(Object.keys(summary.sealedByVersionBefore)).not.toContain(summary.newKeyVersion);
    expect(summary.sealedByVersionAfter).toEqual({ [summary.newKeyVersion]: 120 });
  });
});

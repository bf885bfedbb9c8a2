import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The launcher is plain CommonJS (it must start before anything is built).
const { chooseEntry } = require('../../bin/launch.js') as {
  chooseEntry: (root: string, canBuild: boolean) => 'bundle' | 'rebuild' | 'missing';
};

/** A checkout with one source file and, optionally, a bundle, with the given modification times (s). */
function checkout(sourceAt: number, bundleAt?: number): string {
  const root = mkdtempSync(join(tmpdir(), 'launch-'));
  mkdirSync(join(root, 'shared', 'log'), { recursive: true });
  const source = join(root, 'shared', 'log', 'index.ts');
  writeFileSync(source, 'export {};\n');
  utimesSync(source, sourceAt, sourceAt);
  if (bundleAt !== undefined) {
    mkdirSync(join(root, 'dist'));
    writeFileSync(join(root, 'dist', 'cli.js'), '');
    utimesSync(join(root, 'dist', 'cli.js'), bundleAt, bundleAt);
  }
  return root;
}

describe('the CLI launcher', () => {
  it('runs the bundle when no source is newer, so a start parses one file', () => {
    expect(chooseEntry(checkout(1_000, 2_000), true)).toBe('bundle');
  });

  it('rebuilds when a source changed since the bundle, or the bundle is missing: a checkout never runs stale code', () => {
    expect(chooseEntry(checkout(3_000, 2_000), true)).toBe('rebuild');
    expect(chooseEntry(checkout(3_000), true)).toBe('rebuild');
  });

  it('without esbuild (no dev dependencies) uses the bundle as it is, and says when there is none', () => {
    expect(chooseEntry(checkout(3_000, 2_000), false)).toBe('bundle');
    expect(chooseEntry(checkout(3_000), false)).toBe('missing');
  });
});

import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tsSources } from '../helpers/sources';

/** Emulators and harnesses stay out of production code paths: production modules never import `sandbox/`. */
const root = join(__dirname, '..', '..');

/** A static import, re-export, `require` or dynamic `import()` of the sandbox or anything in it. */
const SANDBOX_IMPORT =
  /(?:\bfrom\s*|\brequire\s*\(\s*|\bimport\s*\(\s*)['"](?:\.\.?\/)+sandbox(?:\/[^'"]*)?['"]/;

describe('module boundaries', () => {
  it('recognises every way of importing the sandbox', () => {
    for (const line of [
      "import { startSandbox } from '../sandbox';",
      "import { x } from '../../sandbox/cloud/emulator';",
      "export * from '../sandbox/index';",
      "const s = require('../../sandbox');",
      "const s = await import('../sandbox/controlplane');",
    ])
      expect(SANDBOX_IMPORT.test(line), line).toBe(true);
    for (const line of ["import { x } from '../shared/sandboxed';", "const note = 'see sandbox/README';"])
      expect(SANDBOX_IMPORT.test(line), line).toBe(false);
  });

  it.each(['shared', 'bin', 'functions'])('%s/ never imports the sandbox', (dir) => {
    const files = tsSources(join(root, dir));
    expect(files.length).toBeGreaterThan(0);
    const offenders = files
      .filter((f) => SANDBOX_IMPORT.test(readFileSync(f, 'utf8')))
      .map((f) => relative(root, f));
    expect(offenders).toEqual([]);
  });
});

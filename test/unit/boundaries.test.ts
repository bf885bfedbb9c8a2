import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Emulators and harnesses stay out of production code paths: production modules never import `sandbox/`. */
const root = join(__dirname, '..', '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('module boundaries', () => {
  it.each(['shared', 'bin', 'functions'])('%s/ never imports the sandbox', (dir) => {
    const files = sources(join(root, dir));
    expect(files.length).toBeGreaterThan(0);
    const offenders = files
      .filter((f) => /from ['"](\.\.\/)+sandbox\//.test(readFileSync(f, 'utf8')))
      .map((f) => relative(root, f));
    expect(offenders).toEqual([]);
  });
});

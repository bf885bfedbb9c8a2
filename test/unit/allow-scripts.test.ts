import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * package.json's `allowScripts` (npm 11's install-script policy) names every installed dependency that has an
 * install script, each allowed or denied with its reason in docs/decisions.md: `npm ci` then warns about none.
 */
const root = join(__dirname, '../..');
const HOOKS = ['preinstall', 'install', 'postinstall'];

function withInstallScripts(dir: string, found: string[] = []): string[] {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) {
      withInstallScripts(join(dir, entry), found);
      continue;
    }
    const pkgDir = join(dir, entry);
    try {
      const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
        scripts?: Record<string, string>;
      };
      const gyp = existsSync(join(pkgDir, 'binding.gyp'));
      if (HOOKS.some((h) => pkg.scripts?.[h]) || gyp) found.push(`${pkg.name}@${pkg.version}`);
    } catch {
      // not a package
    }
    withInstallScripts(join(pkgDir, 'node_modules'), found);
  }
  return found;
}

describe('allowScripts', () => {
  it('covers every installed dependency with an install script, and nothing else', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      allowScripts?: Record<string, boolean>;
    };
    const policy = Object.keys(pkg.allowScripts ?? {});
    const installed = [...new Set(withInstallScripts(join(root, 'node_modules')))].filter(
      (p) => !p.startsWith('@ack-kms-sentinel/'),
    );
    const covered = (p: string) => policy.some((k) => k === p || k === p.slice(0, p.lastIndexOf('@')));
    expect(installed.filter((p) => !covered(p))).toEqual([]);
    const names = installed.map((p) => p.slice(0, p.lastIndexOf('@')));
    expect(
      policy.filter((k) => !names.includes(k) && !installed.includes(k)),
      'stale entries',
    ).toEqual([]);
    const decisions = readFileSync(join(root, 'docs/decisions.md'), 'utf8');
    for (const k of policy) expect(decisions, `${k}: why`).toContain(`\`${k}\``);
  });
});

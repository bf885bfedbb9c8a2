import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FUNCTION_ONLY_SETTINGS, SETTING_TABLE } from '../shared/config';

/**
 * s.yaml's environment blocks, written from the settings table (shared/config): every setting the functions
 * read reaches them, each as `${env('X', '<default>')}` with the loader's own default, so an unset variable
 * means in FC what it means on a laptop. `npm run deploy:env` rewrites the blocks; test/unit/deploy.test.ts
 * fails when s.yaml and the table differ.
 */
const root = join(__dirname, '..');
export const S_YAML = join(root, 's.yaml');

/**
 * Defaults that are expressions rather than constants. The reports bucket's name is global in OSS: the
 * default carries the account and the region (shared/config `defaultReportBucket`), as deploy:prepare creates it.
 */
const DERIVED_DEFAULTS: Record<string, string> = {
  SENTINEL_REPORT_BUCKET:
    "'ack-kms-sentinel-' + env('SENTINEL_ACCOUNT_ID', '') + '-' + env('SENTINEL_REGION', '')",
};

export const specValue = (name: string, fallback: string | undefined): string =>
  `\${env('${name}', ${DERIVED_DEFAULTS[name] ?? `'${fallback ?? ''}'`})}`;

const line = (indent: string, name: string, fallback: string | undefined) =>
  `${indent}${name}: ${JSON.stringify(specValue(name, fallback))}`;

export type Block = 'all' | 'webhook' | 'rotation-watch';

/** The generated lines of one block: every function's settings, or those of one function alone. */
export function environmentLines(block: Block, indent: string): string[] {
  return SETTING_TABLE.filter((s) => (FUNCTION_ONLY_SETTINGS[s.name] ?? 'all') === block).map((s) =>
    line(indent, s.name, s.default),
  );
}

// `  environment: &environment # BEGIN settings (all)`: a YAML anchor's key line, its settings indented below.
const BEGIN = /^(\s*)[\w-]+: &[\w-]+ # BEGIN settings \((all|webhook|rotation-watch)\)/;
const END = /^\s*# END settings/;

/** s.yaml with each marked block replaced by what the table says it holds. */
export function renderSpec(text: string): string {
  const out: string[] = [];
  const lines = text.split('\n');
  let blocks = 0;
  for (let i = 0; i < lines.length; i++) {
    const current = lines[i] ?? '';
    const begin = BEGIN.exec(current);
    if (!begin) {
      out.push(current);
      continue;
    }
    out.push(current, ...environmentLines(begin[2] as Block, `${begin[1] ?? ''}  `));
    blocks++;
    while (i + 1 < lines.length && !END.test(lines[i + 1] ?? '')) i++;
    if (i + 1 >= lines.length) throw new Error(`s.yaml: "${current.trim()}" has no "# END settings"`);
  }
  if (blocks !== 3) throw new Error(`s.yaml: ${blocks} of the 3 "# BEGIN settings" blocks found`);
  return out.join('\n');
}

if (require.main === module) {
  const before = readFileSync(S_YAML, 'utf8');
  const after = renderSpec(before);
  writeFileSync(S_YAML, after);
  process.stderr.write(before === after ? 's.yaml: up to date\n' : 's.yaml: environment rewritten\n');
}

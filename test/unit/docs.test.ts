import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REQUIRED } from '../../deploy/check';

/**
 * The docs against what they describe, where a relapse is cheap to catch: links that lead nowhere, the
 * deployment's required variables, the functions' sizes in s.yaml.
 */
const root = join(__dirname, '../..');
const pages = ['README.md', ...readdirSync(join(root, 'docs')).map((f) => join('docs', f))].filter((f) =>
  f.endsWith('.md'),
);
const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

describe('the docs', () => {
  it('link only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const page of pages) {
      const text = read(page).replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (!target || /^[a-z]+:/i.test(target)) continue;
        const [path, anchor] = target.split('#');
        const file = path ? resolve(root, dirname(page), path) : join(root, page);
        let content: string;
        try {
          content = statSync(file).isDirectory() ? '' : readFileSync(file, 'utf8');
        } catch {
          broken.push(`${page}: ${target}`);
          continue;
        }
        if (anchor && file.endsWith('.md')) {
          const anchors = [...content.matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1] ?? ''));
          if (!anchors.includes(anchor)) broken.push(`${page}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("say how many variables the deployment requires, as deploy/check.ts's list has them", () => {
    const words = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven'];
    const count = words[Object.keys(REQUIRED).length];
    expect(read('docs/deploy.md')).toMatch(new RegExp(`the first ${count} are required by every function`));
  });

  it('give each function the vCPU and memory s.yaml gives it', () => {
    const spec = parse(read('s.yaml')) as {
      resources: Record<string, { props: { functionName: string; cpu: number; memorySize: number } }>;
    };
    const deploy = read('docs/deploy.md').replace(/\s+/g, ' ');
    for (const { props } of Object.values(spec.resources)) {
      const name = props.functionName.replace(/^ack-kms-sentinel-/, '');
      const memory = props.memorySize >= 1024 ? `${props.memorySize / 1024} GB` : `${props.memorySize} MB`;
      expect(deploy, name).toMatch(new RegExp(`${name} ${props.cpu}( vCPU)? / ${memory}`));
    }
  });
});

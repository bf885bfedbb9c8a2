import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tsSources } from '../helpers/sources';
import { childrenOf, parseCode, parseSource, type SyntaxNode } from '../helpers/syntax';

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

/**
 * Layers you can draw (docs/architecture.md, "Layers"): the folders of `shared/` (a file directly in shared/,
 * such as retry.ts, is a folder of its own) and the value imports between them, which must form no cycle. A
 * value import is what a module needs at run time: `import type`, `export type` and imports whose every name is
 * a `type` are erased, so they are left out; `require()` and `import()` of a path count.
 */
const shared = join(root, 'shared');

const MODULE_STATEMENTS = /^(ImportDeclaration|ExportNamedDeclaration|ExportAllDeclaration)$/;

const typeOnly = (statement: SyntaxNode): boolean => {
  if (statement.importKind === 'type' || statement.exportKind === 'type') return true;
  const names = (statement.specifiers ?? []) as SyntaxNode[];
  return names.length > 0 && names.every((n) => n.importKind === 'type' || n.exportKind === 'type');
};

/** The module paths a file's code imports by value, as written. */
function valueImports(statements: SyntaxNode[]): string[] {
  const found: string[] = [];
  const visit = (node: SyntaxNode) => {
    const source = node.source as SyntaxNode | undefined;
    if (MODULE_STATEMENTS.test(node.type) && source) {
      if (!typeOnly(node)) found.push(String(source.value));
      return;
    }
    const callee = node.callee as SyntaxNode | undefined;
    const [first] = (node.arguments ?? []) as SyntaxNode[];
    const loads = callee?.type === 'Import' || (callee?.type === 'Identifier' && callee.name === 'require');
    if (node.type === 'CallExpression' && loads && first?.type === 'StringLiteral')
      found.push(String(first.value));
    for (const child of childrenOf(node)) visit(child);
  };
  for (const statement of statements) visit(statement);
  return found;
}

/** The file a relative import names (`./x`, `./x.js`, `./dir` for its index.ts); undefined for a package. */
function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec).replace(/\.js$/, '');
  return [`${base}.ts`, join(base, 'index.ts')].find((f) => existsSync(f));
}

/** The node a shared/ file belongs to: its folder, or its own name for a file directly in shared/. */
const nodeOf = (file: string): string => {
  const [first = '', ...rest] = relative(shared, file).split(sep);
  return rest.length === 0 ? first.replace(/\.ts$/, '') : first;
};

/** from → to → the files of `from` that import `to`. */
type FolderGraph = Map<string, Map<string, Set<string>>>;

function folderGraph(): { graph: FolderGraph; importsOf: Map<string, string[]> } {
  const graph: FolderGraph = new Map();
  const importsOf = new Map<string, string[]>();
  for (const file of tsSources(shared)) {
    const targets = valueImports(parseSource(file))
      .map((spec) => resolveImport(file, spec))
      .filter((f): f is string => f !== undefined && !relative(shared, f).startsWith('..'));
    importsOf.set(file, targets);
    for (const target of targets) {
      const [from, to] = [nodeOf(file), nodeOf(target)];
      if (from === to) continue;
      const edges = graph.get(from) ?? new Map<string, Set<string>>();
      graph.set(from, edges.set(to, (edges.get(to) ?? new Set()).add(relative(shared, file))));
    }
  }
  return { graph, importsOf };
}

/** Every elementary cycle, each once, written from its alphabetically first folder: `a → b → a`. */
function cyclesOf(graph: FolderGraph): string[][] {
  const cycles: string[][] = [];
  const nodes = [...graph.keys()].sort();
  for (const start of nodes) {
    const walk = (path: string[]) => {
      for (const next of graph.get(path.at(-1) ?? '')?.keys() ?? []) {
        if (next === start) cycles.push([...path, start]);
        else if (next > start && !path.includes(next)) walk([...path, next]);
      }
    };
    walk([start]);
  }
  return cycles;
}

describe('layers you can draw', () => {
  const { graph, importsOf } = folderGraph();
  const cycles = cyclesOf(graph);
  const named = (cycle: string[]) => cycle.join(' → ');
  /** A cycle with the files behind each of its edges, for whoever has to break it. */
  const explained = (cycle: string[]) =>
    `${named(cycle)}: ${cycle
      .slice(1)
      .map((to, i) => `${cycle[i]} → ${to} in ${[...(graph.get(cycle[i] ?? '')?.get(to) ?? [])].join(', ')}`)
      .join('; ')}`;

  it('tells value imports from type-only ones', () => {
    const code = [
      "import type { A } from './a';",
      "import { type B, type C } from './b';",
      "export type { D } from './d';",
      "import { type E, f } from './e';",
      "import g from './g';",
      "export { h } from './h';",
      "export * from './i';",
      "const j = require('./j');",
      "const k = () => import('./k.js');",
      "import { l } from 'zod';",
    ].join('\n');
    expect(valueImports(parseCode(code))).toEqual(['./e', './g', './h', './i', './j', './k.js', 'zod']);
    expect(
      cyclesOf(
        new Map([
          ['a', new Map([['b', new Set()]])],
          ['b', new Map([['a', new Set()]])],
        ]),
      ),
    ).toEqual([['a', 'b', 'a']]);
  });

  it('no cycle between the folders of shared/ through value imports', () => {
    expect(graph.size).toBeGreaterThan(10);
    expect(cycles.map(explained)).toEqual([]);
  });

  it('config/ imports nothing from a domain folder but leaf modules (errors/ and log/ aside)', () => {
    // A leaf imports nothing from another folder by value, so no cycle can pass through it.
    const leaf = (file: string) => (importsOf.get(file) ?? []).every((f) => nodeOf(f) === nodeOf(file));
    const fromConfig = [...importsOf].filter(([file]) => nodeOf(file) === 'config');
    const offending = fromConfig.flatMap(([file, targets]) =>
      targets
        .filter((t) => !['config', 'errors', 'log'].includes(nodeOf(t)) && !leaf(t))
        .map((t) => `${relative(shared, file)} → ${relative(shared, t)}`),
    );
    expect(fromConfig.length).toBeGreaterThan(0);
    expect(offending).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import { parse } from '@babel/parser';

/**
 * The syntax tree of a source file, for tests that check rules in the code (module boundaries, function
 * lengths). TypeScript 7 (the project's compiler, 7.0.2) is the native port: its package has no JavaScript
 * compiler API, only an "unstable" client that drives the native binary over a pipe. So the tests parse with
 * Babel's parser (`@babel/parser`, TypeScript plugin), small and maintained with Babel, which keeps each node's
 * first and last line and tells `import type` from a value import.
 */
export interface SyntaxNode {
  type: string;
  loc?: { start: { line: number }; end: { line: number } } | null;
  [field: string]: unknown;
}

const isNode = (v: unknown): v is SyntaxNode =>
  typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';

/** The children of a node, in source order: every field that holds a node or a list of them. */
export function childrenOf(node: SyntaxNode): SyntaxNode[] {
  return Object.entries(node).flatMap(([field, v]) =>
    field === 'loc' || field.endsWith('Comments')
      ? []
      : Array.isArray(v)
        ? v.filter(isNode)
        : isNode(v)
          ? [v]
          : [],
  );
}

/** The statements of a text, TypeScript or (with `typescript: false`) plain JavaScript. */
export function parseCode(text: string, typescript = true): SyntaxNode[] {
  const program = parse(text, { sourceType: 'unambiguous', plugins: typescript ? ['typescript'] : [] })
    .program as unknown as { body: SyntaxNode[] };
  return program.body;
}

/** The statements of a `.ts` or `.js` file. */
export const parseSource = (file: string): SyntaxNode[] =>
  parseCode(readFileSync(file, 'utf8'), file.endsWith('.ts'));

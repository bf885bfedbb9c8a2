import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tsSources } from '../helpers/sources';
import { childrenOf, parseCode, parseSource, type SyntaxNode } from '../helpers/syntax';

/**
 * No production function is longer than 80 lines from its first line to its last. Biome's
 * `noExcessiveLinesPerFunction` (biome.json) leaves out blank and comment lines, so a function it passes can span
 * far more; this counts the span, as a reader scrolls it. Functions are found with Babel's parser
 * (test/helpers/syntax.ts says why not TypeScript's): declarations, expressions, arrows and methods, nested
 * ones each on their own (an outer function's span includes its inner ones).
 */
const MAX_LINES = 80;
const root = join(__dirname, '..', '..');

const FUNCTION =
  /^(FunctionDeclaration|FunctionExpression|ArrowFunctionExpression|ObjectMethod|ClassMethod|ClassPrivateMethod)$/;

const nameIn = (v: unknown): string | undefined => {
  const node = v as SyntaxNode | undefined;
  if (node?.type === 'Identifier') return String(node.name);
  if (node?.type === 'PrivateName') return nameIn(node.id);
  if (node?.type === 'StringLiteral') return String(node.value);
  if (node?.type === 'MemberExpression') return nameIn(node.property);
  return undefined;
};

/** What a node names: a variable's, a property's, a method's or a function's own name. */
function labelOf(node: SyntaxNode): string | undefined {
  if (node.type === 'VariableDeclarator') return nameIn(node.id);
  if (node.type === 'AssignmentExpression') return nameIn(node.left);
  if (/^(Object|Class)(Property|Method|PrivateMethod)$/.test(node.type)) return nameIn(node.key);
  if (node.type === 'FunctionDeclaration' || node.type === 'FunctionExpression') return nameIn(node.id);
  return undefined;
}

interface Span {
  name: string;
  line: number;
  lines: number;
}

function functionSpans(statements: SyntaxNode[]): Span[] {
  const spans: Span[] = [];
  const visit = (node: SyntaxNode, handedDown: string | undefined) => {
    const label = labelOf(node) ?? handedDown;
    if (FUNCTION.test(node.type) && node.loc) {
      const name = label ?? '(anonymous)';
      spans.push({ name, line: node.loc.start.line, lines: node.loc.end.line - node.loc.start.line + 1 });
      for (const child of childrenOf(node)) visit(child, `a function in ${name}`);
      return;
    }
    for (const child of childrenOf(node)) visit(child, label);
  };
  for (const statement of statements) visit(statement, undefined);
  return spans;
}

describe('function length', () => {
  it('measures the span, blank and comment lines included, and names each function', () => {
    const body = ['  const a = 1;', '', '  // why', ...Array.from({ length: 75 }, () => '  call();')];
    const spans = functionSpans(
      parseCode(
        [
          'export function long() {',
          ...body,
          '  return items.map((i) => i);',
          '}',
          'const short = () => 1;',
          'class C { run() {} }',
        ].join('\n'),
      ),
    );
    expect(spans).toEqual([
      { name: 'long', line: 1, lines: 81 },
      { name: 'a function in long', line: 80, lines: 1 },
      { name: 'short', line: 82, lines: 1 },
      { name: 'run', line: 83, lines: 1 },
    ]);
  });

  it(`no production function in shared/, functions/ or bin/ spans more than ${MAX_LINES} lines`, () => {
    const files = ['shared', 'functions', 'bin'].flatMap((dir) => tsSources(join(root, dir), { js: true }));
    const measured = files.flatMap((file) =>
      functionSpans(parseSource(file)).map((span) => ({ ...span, file: relative(root, file) })),
    );
    expect(measured.length).toBeGreaterThan(500);
    const tooLong = measured
      .filter((f) => f.lines > MAX_LINES)
      .map((f) => `${f.file}:${f.line} ${f.name}: ${f.lines} lines`);
    expect(tooLong).toEqual([]);
  });
});

#!/usr/bin/env node
// The CLI entry. In a checkout (dev dependencies installed) it runs the TypeScript sources, so it is never
// stale; an installation without them runs the esbuild bundle that `npm run build` makes (dist/cli.js).
const { join } = require('node:path');

let entry;
try {
  require.resolve('tsx/cjs');
  require('tsx/cjs');
  entry = './cli.ts';
} catch {
  entry = join(__dirname, '..', 'dist', 'cli.js');
}
const { main } = require(entry);
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

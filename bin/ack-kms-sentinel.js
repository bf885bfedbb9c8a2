#!/usr/bin/env node
// The CLI entry: the esbuild bundle when `npm run build` made one, the TypeScript sources otherwise.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const bundle = join(__dirname, '..', 'dist', 'cli.js');
if (!existsSync(bundle)) require('tsx/cjs');
const { main } = require(existsSync(bundle) ? bundle : './cli.ts');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

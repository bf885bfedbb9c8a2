#!/usr/bin/env node
// The CLI entry: runs the bundle, rebuilding it first in a checkout whose sources changed (bin/launch.js).
const { realpathSync } = require('node:fs');
const { join } = require('node:path');
const { chooseEntry, loadBundle } = require('./launch');

// The checkout, however the bin was reached (npm links it: node_modules/.bin, a global install of ./bin).
const root = join(realpathSync(__dirname), '..');
let canBuild = true;
try {
  require.resolve('esbuild');
} catch {
  canBuild = false;
}
const choice = chooseEntry(root, canBuild);
if (choice === 'missing') {
  process.stderr.write(
    'ack-kms-sentinel: a bundle in dist/ (cli.js, commands.js or a package apart) is missing; run `npm run build:cli`\n',
  );
  process.exit(2);
}
// The command picks the code cache (bin/launch.js keeps one per command). Only a known command names one: the
// first other word of a command line may be an option's value, which has no business in a file name.
const COMMANDS = ['reencrypt', 'invoke', 'serve', 'audit', 'enable', 'disable', 'grant'];
const command = process.argv.slice(2).find((a) => COMMANDS.includes(a)) ?? '';
const start = () => {
  let main;
  try {
    ({ main } = loadBundle(join(root, 'dist', 'cli.js'), command));
  } catch (err) {
    process.stderr.write(
      `ack-kms-sentinel: cannot load dist/cli.js (${err?.message}); run \`npm run build:cli\`\n`,
    );
    process.exitCode = 2;
    return;
  }
  return main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
};
if (choice === 'rebuild') {
  const { buildCli, buildFailure } = require('./build-cli');
  buildCli(root).then(start, (err) => {
    process.stderr.write(
      `${buildFailure(err)}ack-kms-sentinel: rebuilding dist/ failed (above); run \`npm run build:cli\`\n`,
    );
    process.exitCode = 2;
  });
} else start();

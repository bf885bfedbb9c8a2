// `npm run build:cli` (and `prepare`, so `npm ci` runs it): the CLI as two esbuild bundles. dist/cli.js parses the
// command line (commander and the commands' options: all `--help` and a usage error need); dist/commands.js holds
// the commands themselves (bin/commands.ts and everything they load), read only when a command runs.
const { join } = require('node:path');

// In dist/cli.js, `import('./commands.js')` (bin/cli.ts) becomes a `require` of the other bundle: the launcher's
// `require`, which loads it through its code cache as it loads dist/cli.js (an `import()` of an external file
// would go past it to Node's ESM loader).
const commandsApart = {
  name: 'commands-apart',
  setup(build) {
    build.onResolve({ filter: /^\.\/commands\.js$/ }, (args) =>
      args.namespace === 'commands-apart'
        ? { path: './commands.js', external: true }
        : { path: 'commands', namespace: 'commands-apart' },
    );
    build.onLoad({ filter: /.*/, namespace: 'commands-apart' }, () => ({
      contents: "module.exports = require('./commands.js');",
      loader: 'js',
    }));
  },
};

/** Resolves once both bundles are written (esbuild runs plugins in its asynchronous API only). */
async function buildCli(root = join(__dirname, '..'), outdir = join(root, 'dist')) {
  await require('esbuild').build({
    entryPoints: { cli: join(root, 'bin', 'cli.ts'), commands: join(root, 'bin', 'commands.ts') },
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    // lz4-napi is a native addon; proxy-agent is optional in @kubernetes/client-node.
    external: ['proxy-agent', 'lz4-napi'],
    plugins: [commandsApart],
    logLevel: 'warning',
  });
}

module.exports = { buildCli };
if (require.main === module)
  buildCli().catch(() => {
    process.exitCode = 1; // esbuild has printed why
  });

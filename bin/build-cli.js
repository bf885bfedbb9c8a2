// `npm run build:cli` (and `prepare`, so `npm ci` runs it): the CLI as esbuild bundles. dist/cli.js parses the
// command line (commander and the commands' options: all `--help` and a usage error need); dist/commands.js holds
// the commands themselves (bin/commands.ts and what they load), read only when a command runs; the packages a
// command needs only on some paths (`APART`, bin/launch.js) are bundles of their own, read when first required.
const { mkdirSync } = require('node:fs');
const { basename, dirname, join } = require('node:path');
const { APART, replaceFile } = require('./launch');

/**
 * In dist/cli.js, bin/cli.ts's `import('./commands.js')` becomes a `require` of the other bundle: the launcher's
 * `require`, which loads it through its code cache as it loads dist/cli.js (an `import()` of an external file
 * would go past it to Node's ESM loader).
 */
const commandsApart = (cli) => ({
  name: 'commands-apart',
  setup(build) {
    build.onResolve({ filter: /^\.\/commands\.js$/ }, (args) => {
      if (args.namespace === 'commands-apart') return { path: './commands.js', external: true };
      return args.importer === cli ? { path: 'commands', namespace: 'commands-apart' } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'commands-apart' }, () => ({
      contents: "module.exports = require('./commands.js');",
      loader: 'js',
    }));
  },
});

/**
 * client-node's `dist/config.js` (the `KubeConfig` class) imports `createConfiguration` and `ServerConfiguration`
 * from `gen/index.js`, which re-exports every generated API and model: in a bundle, initialising `KubeConfig`
 * would initialise all ~700 of those modules (~25 ms before a sweep's first request). Here that one import reads
 * the two modules that define them, so a sweep that loads `KubeConfig` alone (`kubeConfigClass`) loads only
 * those; the commands that use the typed API still load the whole package, with the same `KubeConfig`.
 */
const kubeConfigAlone = () => ({
  name: 'kubeconfig-alone',
  setup(build) {
    const config = /[\\/]@kubernetes[\\/]client-node[\\/]dist[\\/]config\.js$/;
    build.onResolve({ filter: /^\.\/gen\/index\.js$/ }, (args) =>
      config.test(args.importer)
        ? { path: join(dirname(args.importer), 'gen', 'index.js'), namespace: 'kubeconfig-alone' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'kubeconfig-alone' }, (args) => ({
      contents:
        "export { createConfiguration } from './configuration.js';\n" +
        "export { ServerConfiguration } from './servers.js';\n",
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
});

/**
 * The packages in `APART` (bin/launch.js) are bundles of their own beside the commands' (dist/client-node.js, …),
 * which the launcher loads, through their code caches, when a command first `require`s one: a sweep reads and
 * deserializes only the commands' bundle (~1 MB), where all in one was ~7 MB, most of it the typed Kubernetes API
 * and the cloud SDKs, which a sweep never calls. A deep path (client-node's `dist/config.js`) stays in the
 * commands' bundle, so client-node's `KubeConfig` has a second copy there (`kubeConfigClass` says why that is
 * safe). Otherwise each package is in one bundle only, so it has one instance, as in `node_modules`; the cloud
 * SDKs' bundles each carry their own copy of the SDK core (@darabonba/typescript, @alicloud/openapi-core), as the
 * function deployments' do, and their models are read by shape.
 */
const packagesApart = () => ({
  name: 'packages-apart',
  setup(build) {
    const names = Object.keys(APART).map((id) => id.replace(/[/.]/g, '\\$&'));
    build.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) =>
      args.namespace === 'packages-apart' ? undefined : { path: args.path, external: true },
    );
    build.onResolve({ filter: /^apart:/ }, (args) => ({
      path: args.path.slice('apart:'.length),
      namespace: 'packages-apart',
    }));
    build.onLoad({ filter: /.*/, namespace: 'packages-apart' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      resolveDir: __dirname,
      loader: 'js',
    }));
  },
});

/**
 * Resolves once both bundles are written, with the build's metafile (esbuild runs plugins in its asynchronous API only). Each is written
 * to a temporary name and renamed, dist/commands.js first: a CLI starting while another rebuilds reads either
 * the old bundles or the new ones, never a half-written file.
 */
async function buildCli(root = join(__dirname, '..'), outdir = join(root, 'dist')) {
  const cli = join(root, 'bin', 'cli.ts');
  const { outputFiles, metafile } = await require('esbuild').build({
    entryPoints: {
      cli,
      commands: join(root, 'bin', 'commands.ts'),
      ...Object.fromEntries(
        Object.entries(APART).map(([id, file]) => [file.replace(/\.js$/, ''), `apart:${id}`]),
      ),
    },
    outdir,
    write: false,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    // lz4-napi is a native addon; proxy-agent is optional in @kubernetes/client-node.
    external: ['proxy-agent', 'lz4-napi'],
    plugins: [commandsApart(cli), kubeConfigAlone(), packagesApart()],
    logLevel: 'warning',
    metafile: true,
  });
  mkdirSync(outdir, { recursive: true });
  const order = (f) => (basename(f.path) === 'cli.js' ? 1 : 0);
  for (const file of [...outputFiles].sort((a, b) => order(a) - order(b)))
    replaceFile(file.path, file.contents);
  return { metafile };
}

/** Why a build failed, for stderr: esbuild has printed a build's own errors already; anything else has not. */
function buildFailure(err) {
  return Array.isArray(err?.errors) && err.errors.length ? '' : `${err?.stack ?? err}\n`;
}

module.exports = { buildCli, buildFailure };
if (require.main === module)
  buildCli().catch((err) => {
    process.stderr.write(buildFailure(err));
    process.exitCode = 1;
  });

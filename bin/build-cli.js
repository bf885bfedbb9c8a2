// `npm run build:cli` (and `prepare`, so `npm ci` runs it): the CLI as one esbuild bundle, dist/cli.js.
const { join } = require('node:path');

function buildCli(root = join(__dirname, '..')) {
  require('esbuild').buildSync({
    entryPoints: [join(root, 'bin', 'cli.ts')],
    outfile: join(root, 'dist', 'cli.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    // lz4-napi is a native addon; proxy-agent is optional in @kubernetes/client-node.
    external: ['proxy-agent', 'lz4-napi'],
    logLevel: 'warning',
  });
}

module.exports = { buildCli };
if (require.main === module) buildCli();

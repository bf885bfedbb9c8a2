// How the CLI starts: the esbuild bundles (dist/cli.js, dist/commands.js and the packages apart, made by
// `npm run build:cli`, which `npm ci` runs through `prepare`) when they are at least as new as every source file
// they are built from; in a checkout whose sources changed since, they are rebuilt first (esbuild, about two
// seconds), so a checkout never runs
// stale code. Without esbuild (an installation without dev dependencies) the bundles are used as they are.
const { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { createHash } = require('node:crypto');
const { Script, constants: vmConstants } = require('node:vm');
const Module = require('node:module');

const SOURCE_DIRS = ['bin', 'shared', 'functions'];

/** The newest modification time of the TypeScript sources under `root`'s source folders (0 when none). */
function newestSource(root) {
  let newest = 0;
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) walk(join(root, d));
  return newest;
}

/** Packages the commands load only on some paths, each a bundle of its own in dist/ (bin/build-cli.js). */
const APART = {
  '@kubernetes/client-node': 'client-node.js',
  '@alicloud/fc20230330': 'fc20230330.js',
  '@alicloud/sls20201230': 'sls20201230.js',
  'ali-oss': 'ali-oss.js',
  zod: 'zod.js',
};
/** The CLI's bundles in dist/ (bin/build-cli.js makes them together), by the module id their code requires. */
const BUNDLED = { './commands.js': 'commands.js', ...APART };
const BUNDLES = ['cli.js', ...Object.values(BUNDLED)];

/** 'bundle' (fresh, or no sources to compare with), 'rebuild' (stale or missing, esbuild at hand) or 'missing'. */
function chooseEntry(root, canBuild) {
  let bundleTime;
  try {
    bundleTime = Math.min(...BUNDLES.map((b) => statSync(join(root, 'dist', b)).mtimeMs));
  } catch {
    return canBuild ? 'rebuild' : 'missing';
  }
  if (!canBuild) return 'bundle';
  return newestSource(root) > bundleTime ? 'rebuild' : 'bundle';
}

/**
 * Writes `data` to `file` through a temporary name beside it and a rename: a reader sees the old file or the new
 * one, never half of one. The temporary file is removed if anything fails; the error is thrown.
 */
function replaceFile(file, data) {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Bundles loaded in this process, by path: each runs once, as a module does. */
const loaded = new Map();

/**
 * Loads a bundle (CommonJS) through V8's code cache, and the bundles it `require`s beside it the same way
 * (dist/cli.js loads dist/commands.js only when a command runs). Most of a start was V8 compiling the 7 MB of
 * the commands' code; with the cache it deserializes what an earlier run compiled instead (Node 22's
 * `module.enableCompileCache()` does the same; Node 20, which the suite supports, lacks it).
 *
 * One cache per command, beside the bundle: `<bundle>.v8cache` for `--help` and usage errors,
 * `<bundle>.<command>.v8cache` for each command, each with what that command compiled and nothing more
 * (deserializing is most of a cached start: one shared cache made every command deserialize what all had
 * compiled). A cache's first line says what it was made from: the SHA-256 of the bundle's bytes, Node's version,
 * and whether that run succeeded. V8 checks its own version and flags, but of the source only its length, so a
 * changed bundle of the same length would otherwise run the old code (npm gives every file of a package the same
 * mtime, so times cannot tell; a CRC-32 and size, the stamp before, is matched by changing four bytes of a
 * comment). Hashing the ~1 MB commands' bundle costs about a millisecond of a start. A missing, stale or rejected cache is written again when the process exits, with
 * every function compiled by then; so is one written by a failed run (a usage error compiles little of a
 * command), the first time the command succeeds. Only beside the bundle: a directory only whoever installed the
 * bundle can write, never a shared temporary one (V8 trusts what it deserializes). Any failure to read or write a
 * cache leaves a normal start.
 */
function loadBundle(bundle, command = '') {
  const known = loaded.get(bundle);
  if (known) return known.exports;
  const name = /^[a-z][a-z-]{0,30}$/.test(command) ? command : '';
  const cacheFile = name ? `${bundle}.${name}.v8cache` : `${bundle}.v8cache`;
  const bytes = readFileSync(bundle);
  const made = {
    bundle: createHash('sha256').update(bytes).digest('hex'),
    node: process.version,
    command: name,
  };
  let cachedData;
  let fromFailedRun = false;
  try {
    const cache = readFileSync(cacheFile);
    const newline = cache.indexOf(10);
    const stamp = JSON.parse(cache.subarray(0, newline).toString());
    if (stamp.bundle === made.bundle && stamp.node === made.node && stamp.command === name) {
      cachedData = cache.subarray(newline + 1);
      fromFailedRun = stamp.ok !== true;
    }
  } catch {
    // no cache yet, or not one of ours
  }
  const script = new Script(Module.wrap(bytes.toString('utf8')), {
    filename: bundle,
    cachedData,
    // `import()` in the bundle resolves as in any CommonJS module (where Node has the constant).
    ...(vmConstants?.USE_MAIN_CONTEXT_DEFAULT_LOADER
      ? { importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER }
      : {}),
  });
  const stale = !cachedData || script.cachedDataRejected;
  if (stale || fromFailedRun) {
    process.once('exit', (code) => {
      if (!stale && code !== 0) return; // a failed run's cache is replaced only by a run that gets further
      try {
        replaceFile(
          cacheFile,
          Buffer.concat([
            Buffer.from(`${JSON.stringify({ ...made, ok: code === 0 })}\n`),
            script.createCachedData(),
          ]),
        );
      } catch {
        // a read-only installation: every start compiles, as without a cache
      }
    });
  }
  const module = new Module(bundle, require.main);
  module.filename = bundle;
  module.paths = Module._nodeModulePaths(dirname(bundle));
  // A bundle's `require` of another of the CLI's bundles (dist/cli.js of dist/commands.js, dist/commands.js of the
  // packages apart) goes through its cache too.
  const plain = Module.createRequire(bundle);
  const bundleRequire = Object.assign(
    (id) =>
      Object.hasOwn(BUNDLED, id) ? loadBundle(join(dirname(bundle), BUNDLED[id]), command) : plain(id),
    plain,
  );
  loaded.set(bundle, module);
  try {
    script.runInThisContext()(module.exports, bundleRequire, module, bundle, dirname(bundle));
  } catch (err) {
    loaded.delete(bundle); // as Node's loader forgets a module that threw: a later require tries again
    throw err;
  }
  module.loaded = true;
  return module.exports;
}

module.exports = { APART, BUNDLES, chooseEntry, newestSource, loadBundle, replaceFile };

// How the CLI starts: the esbuild bundle (dist/cli.js, made by `npm run build:cli`, which `npm ci` runs through
// `prepare`) when it is at least as new as every source file it is built from; in a checkout whose sources
// changed since, the bundle is rebuilt first (esbuild, about a second), so a checkout never runs stale code.
// Without esbuild (an installation without dev dependencies) the bundle is used as it is.
const { readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

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

/** 'bundle' (fresh, or no sources to compare with), 'rebuild' (stale or missing, esbuild at hand) or 'missing'. */
function chooseEntry(root, canBuild) {
  let bundleTime;
  try {
    bundleTime = statSync(join(root, 'dist', 'cli.js')).mtimeMs;
  } catch {
    return canBuild ? 'rebuild' : 'missing';
  }
  if (!canBuild) return 'bundle';
  return newestSource(root) > bundleTime ? 'rebuild' : 'bundle';
}

module.exports = { chooseEntry, newestSource };

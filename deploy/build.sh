#!/usr/bin/env bash
# `npm run build`: one minified CommonJS bundle per function (dist/functions/<name>/index.js, the code s.yaml
# deploys) and the CLI's (bin/build-cli.js). Each bundle holds only what its entry imports.
# Builds the same on any laptop (macOS, arm64): nothing platform-specific is shipped. The SLS SDK loads lz4-napi
# (a native addon, one prebuilt package per platform) at start; PullLogs asks for deflate (node:zlib), so the
# bundles get deploy/lz4-absent.js in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what this script builds is removed first. The CLI's bundles are replaced in place (bin/build-cli.js writes
# each through a temporary name and a rename): a CLI running meanwhile reads the old bundles or the new ones, and
# its code caches beside them stay valid or are rewritten; removing dist/ under it made it rebuild into the
# folder being removed.
# SENTINEL_BUILD_OUT builds the functions elsewhere (a test that must not race another build of dist/).
out_dir="${SENTINEL_BUILD_OUT:-dist}"
rm -rf "$out_dir/functions" "$out_dir/vendor"
common=(--bundle --platform=node --target=node20 --format=cjs --minify --external:proxy-agent --alias:lz4-napi=./deploy/lz4-absent.js --log-level=warning)
# SDKs a function loads only on first use ship beside its bundle, each as its own bundle in node_modules/:
# a cold start parses only what every invocation runs (docs/decisions.md).
vendored=(@alicloud/fc20230330 ali-oss @alicloud/sls20201230 @kubernetes/client-node)
vendor_of() {
  case "$1" in
    trail-verify) echo "@alicloud/fc20230330 @alicloud/sls20201230" ;;
    webhook) echo "@alicloud/fc20230330 ali-oss" ;;
    rotation-watch) echo "@alicloud/fc20230330 ali-oss @kubernetes/client-node" ;;
    audit) echo "@alicloud/fc20230330 ali-oss @kubernetes/client-node" ;;
    *) echo "@alicloud/fc20230330 @kubernetes/client-node" ;;
  esac
}
externals=()
for pkg in "${vendored[@]}"; do externals+=("--external:$pkg"); done
mkdir -p "$out_dir/vendor"
for pkg in "${vendored[@]}"; do
  out="$out_dir/vendor/$pkg"
  mkdir -p "$out"
  echo "module.exports = require('$pkg');" > "$out/entry.js"
  npx esbuild "$out/entry.js" "${common[@]}" --outfile="$out/index.js"
  rm "$out/entry.js"
  echo '{"main":"index.js"}' > "$out/package.json"
done
# The one deep path our code reads (shared/cluster/k8s.ts: client-node's KubeConfig alone, all the CLI's sweep
# loads): a function that reads a cluster loads the whole package anyway, so there it is the vendored bundle.
mkdir -p "$out_dir/vendor/@kubernetes/client-node/dist"
echo "module.exports = require('../index.js');" > "$out_dir/vendor/@kubernetes/client-node/dist/config.js"
for fn in rotation-watch reencrypt trail-verify webhook audit; do
  npx esbuild "functions/$fn/index.ts" "${common[@]}" "${externals[@]}" --outfile="$out_dir/functions/$fn/index.js"
  for pkg in $(vendor_of "$fn"); do
    mkdir -p "$out_dir/functions/$fn/node_modules/$pkg"
    cp -R "$out_dir/vendor/$pkg/." "$out_dir/functions/$fn/node_modules/$pkg/"
  done
done
node bin/build-cli.js

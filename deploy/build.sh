#!/usr/bin/env bash
# `npm run build`: one minified CommonJS bundle per function (dist/functions/<name>/index.js, the code s.yaml
# deploys) and one for the CLI (dist/cli.js). Each bundle holds only what its entry imports.
# lz4-napi (SLS decompression, a native addon) cannot be bundled: trail-verify ships it beside its bundle,
# with the linux-x64-gnu prebuilt that the FC nodejs20 runtime loads.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
common=(--bundle --platform=node --target=node20 --format=cjs --minify --external:proxy-agent --external:lz4-napi --log-level=warning)
for fn in rotation-watch reencrypt trail-verify webhook audit; do
  npx esbuild "functions/$fn/index.ts" "${common[@]}" --outfile="dist/functions/$fn/index.js"
done
mkdir -p dist/functions/trail-verify/node_modules/@antoniomuso
cp -R node_modules/lz4-napi dist/functions/trail-verify/node_modules/
cp -R node_modules/@antoniomuso/lz4-napi-linux-x64-gnu dist/functions/trail-verify/node_modules/@antoniomuso/
npx esbuild bin/cli.ts "${common[@]}" --outfile=dist/cli.js

#!/usr/bin/env bash
# Bundles the CLI into one CommonJS file (what `bin/ack-kms-sentinel.js` runs when it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
npx esbuild bin/cli.ts --bundle --platform=node --target=node20 --format=cjs --minify \
  --outfile=dist/cli.js --external:proxy-agent --log-level=warning

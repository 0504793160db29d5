#!/usr/bin/env bash
# Refreshes the vendored Swagger UI that GET /docs serves (from the npm registry).
# Usage: server/docs-ui/update.sh [version]   (default: the version below)
set -euo pipefail
version="${1:-5.35.0}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "swagger-ui-dist@$version" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
gzip -9 -n -c "$tmp/package/swagger-ui-bundle.js" >"$here/swagger-ui-bundle.js.gz"
gzip -9 -n -c "$tmp/package/swagger-ui.css" >"$here/swagger-ui.css.gz"
cp "$tmp/package/LICENSE" "$tmp/package/NOTICE" "$tmp/package/swagger-ui-bundle.js.LICENSE.txt" "$here/"
echo "swagger-ui-dist $version vendored in $here"

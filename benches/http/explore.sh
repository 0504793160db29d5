#!/usr/bin/env bash
# The console's Explore page in headless Chromium at N stored logs: fills a fresh release
# server as benches/http/queries.sh does, then times (server/tests/console/explore_timing.mjs)
# pressing Enter until the first page of rows is on screen, and loading and scrolling 1,000
# rows. Needs Debian's chromium and `npm ci --prefix server/tests/console`.
#
#   benches/http/explore.sh [stored-logs]        (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
stored="${1:-10000000}"
[ -d server/tests/console/node_modules/playwright-core ] ||
    { echo "needs: npm ci --prefix server/tests/console" >&2; exit 1; }
addr=127.0.0.1:18005
# shellcheck source=benches/http/fill.sh
source benches/http/fill.sh

(cd server/tests/console && node explore_timing.mjs "http://$addr" q@example.com "correct horse battery" "$project")

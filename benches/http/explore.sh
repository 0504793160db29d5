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
cargo build --release -q -p ledger-server -p ledger-tools
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18005
target/release/ledger --listen $addr --data-dir "$work/data" >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
api() { curl -sf -X "$1" "http://$addr$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
token=$(api POST /api/v1/auth/register "" '{"email":"q@example.com","password":"correct horse battery"}' | field token)
project=$(api POST /api/v1/projects "$token" '{"name":"q","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | field id)
key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"q","scopes":["ingest","query"]}' | field key)

echo "== filling to $stored logs"
start=$(date +%s)
while :; do
    n=$(api GET "/api/v1/metrics/usage-stats?days=1" "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["today"]["logs"])')
    [ "$n" -ge "$stored" ] && break
    target/release/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency 4 --duration 30s --seed "$n" >/dev/null
done
echo "filled $n logs in $(( $(date +%s) - start )) s; waiting for the index"
for _ in $(seq 120); do
    lag=$(curl -s "http://$addr/metrics" | awk '/^ledger_index_lag /{print $2}')
    [ "${lag:-1}" = "0" ] && break
    sleep 1
done

(cd server/tests/console && node explore_timing.mjs "http://$addr" q@example.com "correct horse battery" "$project")

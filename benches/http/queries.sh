#!/usr/bin/env bash
# Query latency through HTTP at N stored logs, as a user (and the console's Explore page)
# sees it: fills a fresh release server with N generated logs (`ledgerctl loadgen`, 1,000-log
# batches), waits for the index to catch up, then drives each query with `wrk` (4
# connections, 15 s) and prints its latency percentiles. Needs wrk.
#
#   benches/http/queries.sh [stored-logs]        (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
stored="${1:-10000000}"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p ledger-server -p ledger-tools
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18004
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

hour_ago=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
soon=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)
run() {
    local name="$1" path="$2"
    printf '%-48s ' "$name"
    wrk -t2 -c4 -d15s --latency -H "Authorization: Bearer $key" "http://$addr$path" |
        awk '/Requests\/sec/{rps=$2} / 50%/{p50=$2} / 99%/{p99=$2} /Non-2xx/{bad=$4}
             END{printf "p50 %s  p99 %s  %s req/s  non-2xx %s\n", p50, p99, rps, bad+0}'
}
echo "== 4 connections, 15 s each, at $n logs"
run "explore first page (/logs, last hour, 100)" "/api/v1/logs?start_time=$hour_ago&end_time=$soon&limit=100"
run "explore chart (/metrics/log-volume, 1 h by 1m)" "/api/v1/metrics/log-volume?hours=1&bucket=1m"
run "/logs level=error, 100" "/api/v1/logs?level=error&limit=100"
run "/logs/{service} exact + attr" "/api/v1/logs?service=billing&limit=100"
run "search: term (timeout)" "/api/v1/logs/search?q=timeout&limit=100"
run "search: phrase" "/api/v1/logs/search?q=%22connection%20refused%22&limit=100"
run "search: phrase of common words, no match" "/api/v1/logs/search?q=%22user%20timeout%20payment%22&limit=100"
run "search: attribute" "/api/v1/logs/search?q=attributes.http.status:500&limit=100"
run "/metrics/error-rate 24 h" "/api/v1/metrics/error-rate?hours=24&bucket=5m"
run "/metrics/top-errors 24 h" "/api/v1/metrics/top-errors?hours=24"
run "/metrics/usage-stats" "/api/v1/metrics/usage-stats?days=30"

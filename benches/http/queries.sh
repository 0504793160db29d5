#!/usr/bin/env bash
# Query latency through HTTP at N stored logs, as a user (and the console's Explore page)
# sees it: fills a fresh release server with N generated logs (`ledgerctl loadgen`, 1,000-log
# batches), waits for the index to catch up, then drives each query with `wrk` (three runs
# of 10 s) and prints the medians of its latency percentiles. `/logs` and search run with 4
# connections, the `/metrics` routes with 2: the targets (BENCHMARKS.md) name 4 and 2 concurrent
# clients. Needs wrk.
#
#   benches/http/queries.sh [stored-logs]        (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
stored="${1:-10000000}"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
addr=127.0.0.1:18004
# shellcheck source=benches/http/fill.sh
source benches/http/fill.sh

hour_ago=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
soon=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)
# wrk's latency in ms ("750.00us", "2.15ms", "1.02s").
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f", v}'; }
# Each query three times (10 s each) from $conns connections; prints each run's p50/p99 and
# the medians.
conns=4
run() {
    local name="$1" path="$2" out p50s=() p99s=() bad=0
    printf '%-48s ' "$name"
    for _ in 1 2 3; do
        out=$(wrk -t2 -c"$conns" -d10s --latency -H "Authorization: Bearer $key" "http://$addr$path")
        p50s+=("$(echo "$out" | awk '/ 50%/{print $2}' | ms)")
        p99s+=("$(echo "$out" | awk '/ 99%/{print $2}' | ms)")
        bad=$((bad + $(echo "$out" | awk '/Non-2xx/{n=$4} END{print n+0}')))
    done
    median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
    printf 'p50 %s ms  p99 %s ms (median of 3; p99s %s)  non-2xx %s\n' \
        "$(median "${p50s[@]}")" "$(median "${p99s[@]}")" "${p99s[*]}" "$bad"
}
echo "== 4 connections, 3 runs of 10 s each, at $n logs"
conns=4
run "explore first page (/logs, last hour, 100)" "/api/v1/logs?start_time=$hour_ago&end_time=$soon&limit=100"
run "/logs level=error, 100" "/api/v1/logs?level=error&limit=100"
run "/logs/{service} exact + attr" "/api/v1/logs?service=billing&limit=100"
run "search: term (timeout)" "/api/v1/logs/search?q=timeout&limit=100"
run "search: phrase" "/api/v1/logs/search?q=%22connection%20refused%22&limit=100"
run "search: phrase of common words, no match" "/api/v1/logs/search?q=%22user%20timeout%20payment%22&limit=100"
run "search: attribute" "/api/v1/logs/search?q=attributes.http.status:500&limit=100"
echo "== 2 connections, 3 runs of 10 s each, at $n logs"
conns=2
run "explore chart (/metrics/log-volume, 1 h by 1m)" "/api/v1/metrics/log-volume?hours=1&bucket=1m"
run "/metrics/error-rate 24 h" "/api/v1/metrics/error-rate?hours=24&bucket=5m"
run "/metrics/top-errors 24 h" "/api/v1/metrics/top-errors?hours=24"
run "/metrics/usage-stats" "/api/v1/metrics/usage-stats?days=30"

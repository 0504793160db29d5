#!/usr/bin/env bash
# The overload curve through HTTP: clients posting 1,000-log batches with no backoff at 1, 2,
# 8, 32 and 128 connections, with `wrk` (a standard load tool that never backs off) and with
# `ledgerctl loadgen --no-backoff` (which also reports what a refusal costs). Prints acked
# logs/s per tool and concurrency. Needs wrk (Debian: apt-get install wrk).
#
#   benches/http/overload.sh [seconds-per-run] [connections...]
#
# Runs a release server on 127.0.0.1:18000 over a fresh data directory, with the defaults
# except raised project limits (rate limits, daily quota) so that only capacity refuses.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
shift || true
conns=("$@")
[ ${#conns[@]} -eq 0 ] && conns=(1 2 8 32 128)
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p ledger-server -p ledger-tools
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18000
target/release/ledger --listen $addr --data-dir "$work/data" --pbkdf2-iterations 10000 \
    >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done

api() { curl -sf -X "$1" "http://$addr$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
token=$(api POST /api/v1/auth/register "" '{"email":"bench@example.com","password":"correct horse battery"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
project=$(api POST /api/v1/projects "$token" '{"name":"bench","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"bench","scopes":["ingest","query"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

target/release/ledgerctl generate --count 1000 --seed 7 >"$work/batch.ndjson"
export LEDGER_KEY="$key" LEDGER_BATCH="$work/batch.ndjson" LEDGER_BATCH_LOGS=1000
echo "server pid $pid, batch $(wc -c <"$work/batch.ndjson") bytes, ${secs}s per run"
for c in "${conns[@]}"; do
    echo "== $c connections"
    threads=$(( c < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$c" -d"${secs}s" --timeout 10s -s benches/http/post.lua \
        "http://$addr/api/v1/ingest/batch" | grep -E "^wrk:|Latency"
    target/release/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency "$c" --duration "${secs}s" --no-backoff | grep -E "^logs:|^refused|latency"
done

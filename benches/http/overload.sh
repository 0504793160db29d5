#!/usr/bin/env bash
# The overload curve through HTTP: clients posting 1,000-log batches with no backoff at 1, 2,
# 8, 32 and 128 connections, with `wrk` (a standard load tool that never backs off) and with
# `ledgerctl loadgen --no-backoff` (which also reports what a refusal costs). Each
# concurrency runs LEDGER_BENCH_REPS times (3) per tool, in rounds of every concurrency in a
# rotated order; prints every run, then the median acked logs/s and its ratio to the best
# concurrency, and each concurrency's ratio to its round's best (median over rounds), which
# a drift of the machine's speed between rounds does not move. Needs wrk (apt-get install wrk).
#
#   benches/http/overload.sh [seconds-per-run] [connections...]
#
# Runs a release server on 127.0.0.1:18000 over a fresh data directory, with the defaults
# except raised project limits (rate limits, daily quota) so that only capacity refuses;
# with LEDGER_BENCH_FRESH=1, a new one for every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
shift || true
conns=("$@")
[ ${#conns[@]} -eq 0 ] && conns=(1 2 8 32 128)
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p ledger-server -p ledger-tools
work=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18000
api() { curl -sf -X "$1" "http://$addr$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
# Starts a server over a fresh data directory (stopping the one before) and sets $key to an
# ingest key of a project whose limits only capacity reaches.
start_server() {
    if [ -n "$pid" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work/data" "$work/out"
    target/release/ledger --listen $addr --data-dir "$work/data" --pbkdf2-iterations 10000 \
        >"$work/out" 2>"$work/log" &
    pid=$!
    for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
    local token project
    token=$(api POST /api/v1/auth/register "" '{"email":"bench@example.com","password":"correct horse battery"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    project=$(api POST /api/v1/projects "$token" '{"name":"bench","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"bench","scopes":["ingest","query"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    export LEDGER_KEY="$key"
}
start_server
# LEDGER_BENCH_FRESH=1: every run gets a server of its own over an empty data directory, so
# that no run measures a server the runs before it have filled (one server takes in tens of
# millions of logs over the whole script and slows as it grows).
fresh="${LEDGER_BENCH_FRESH:-0}"

target/release/ledgerctl generate --count 1000 --seed 7 >"$work/batch.ndjson"
export LEDGER_BATCH="$work/batch.ndjson" LEDGER_BATCH_LOGS=1000
reps="${LEDGER_BENCH_REPS:-3}"
echo "server pid $pid, batch $(wc -c <"$work/batch.ndjson") bytes, ${secs}s per run, $reps runs each, fresh server per run: $fresh"
run_wrk() {
    [ "$fresh" = 1 ] && start_server
    local threads=$(( $1 < 2 ? 1 : 2 ))
    w=$(wrk -t"$threads" -c"$1" -d"${secs}s" --timeout 30s -s benches/http/post.lua \
        "http://$addr/api/v1/ingest/batch" | grep '^wrk:')
    echo "run $rep wrk c=$1 $w" | tee -a "$work/results"
}
run_loadgen() {
    [ "$fresh" = 1 ] && start_server
    l=$(target/release/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency "$1" --duration "${secs}s" --no-backoff)
    echo "run $rep loadgen c=$1 $(echo "$l" | grep -E '^logs:|^latency of refusals' | tr '\n' ' ')" \
        | tee -a "$work/results"
}
# Each round starts one concurrency later than the round before and the tools take turns
# going first, so no concurrency always follows the same one (the server grows through the
# run and the machine's speed drifts: a fixed order would put that drift on the curve).
n=${#conns[@]}
for rep in $(seq "$reps"); do
    for k in $(seq 0 $((n - 1))); do
        c=${conns[$(( (k + rep - 1) % n ))]}
        if (( (rep + k) % 2 )); then run_wrk "$c"; run_loadgen "$c"; else run_loadgen "$c"; run_wrk "$c"; fi
    done
done
python3 - "$work/results" <<'PY'
import re, statistics, sys
runs, rounds = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"run (\d+) (\w+) c=(\d+) .*?(?:acked (\d+) logs/s|= (\d+) logs/s)", line)
    if m:
        v = int(m[4] or m[5])
        runs.setdefault((m[2], int(m[3])), []).append(v)
        rounds.setdefault((m[2], int(m[1])), {})[int(m[3])] = v
print("\nmedian acked logs/s (ratio to the tool's best concurrency)")
for tool in ("wrk", "loadgen"):
    med = {c: statistics.median(v) for (t, c), v in runs.items() if t == tool}
    best = max(med.values())
    print(tool.ljust(8), "  ".join(f"c={c}: {m:,.0f} ({m / best:.0%})" for c, m in sorted(med.items())))
print("\nper round, each concurrency's ratio to that round's best; median over rounds")
for tool in ("wrk", "loadgen"):
    ratios = {}
    for (t, _), r in rounds.items():
        if t == tool and r:
            for c, v in r.items():
                ratios.setdefault(c, []).append(v / max(r.values()))
    print(tool.ljust(8), "  ".join(f"c={c}: {statistics.median(v):.0%}" for c, v in sorted(ratios.items())))
PY

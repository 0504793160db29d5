#!/usr/bin/env bash
# A/B of batch ingest between two builds, alternated on the same machine: for each of `runs`
# rounds, a fresh server of each build takes `ledgerctl loadgen` batch load (4 connections ×
# 1,000 logs, 15 s, the same seed for both), then the run waits for the index to catch up.
# Prints per run the logs acknowledged per second over the 15 s and the server's CPU time
# (user + system) per stored log, counted until the index has caught up; then the medians.
# The CPU per log is the steadier figure: acknowledged logs/s swings with when the memtable
# and index-lag limits push back.
#
#   benches/http/ab.sh DIR_A DIR_B [runs]      (default 3 runs)
#
# Each DIR holds a `ledger` and a `ledgerctl` binary, e.g. copies of target/profiling/ after
# `cargo build --profile profiling -p ledger-server -p ledger-tools` at each commit.
set -euo pipefail
a="$1"
b="$2"
runs="${3:-3}"
addr=127.0.0.1:18112
results=$(mktemp)
trap 'rm -f "$results"' EXIT

one() {
    local bin=$1 seed=$2 work pid token project key t0 t1 out n acked
    work=$(mktemp -d)
    "$bin"/ledger --listen $addr --data-dir "$work/data" >"$work/out" 2>"$work/log" &
    pid=$!
    for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
    api() { curl -sf -X "$1" "http://$addr$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
    field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
    token=$(api POST /api/v1/auth/register "" '{"email":"q@example.com","password":"correct horse battery"}' | field token)
    project=$(api POST /api/v1/projects "$token" '{"name":"q","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | field id)
    key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"q","scopes":["ingest","query"]}' | field key)
    ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    t0=$(ticks)
    out=$("$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency 4 --duration 15s --seed "$seed")
    for _ in $(seq 240); do
        lag=$(curl -s "http://$addr/metrics" | awk '/^ledger_index_lag /{print $2}')
        [ "${lag:-1}" = "0" ] && break
        sleep 0.5
    done
    t1=$(ticks)
    n=$(api GET "/api/v1/metrics/usage-stats?days=1" "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["today"]["logs"])')
    acked=$(echo "$out" | awk '/^logs:/ {print $(NF-1)}')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
    python3 -c "print('$bin', $acked, round(($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / $n, 2))"
}

for r in $(seq "$runs"); do
    for bin in "$a" "$b"; do
        one "$bin" "$r" | tee -a "$results"
    done
done
python3 - "$results" "$a" "$b" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for d in sys.argv[2:]:
    mine = [r for r in rows if r[0] == d]
    acked = statistics.median(float(r[1]) for r in mine)
    cpu = statistics.median(float(r[2]) for r in mine)
    print(f"{d}: median {acked:,.0f} logs/s acknowledged, {cpu} µs of server CPU per stored log")
PY

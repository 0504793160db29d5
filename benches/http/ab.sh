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
# shellcheck source=benches/http/server.sh
source "$(dirname "$0")/server.sh"
a="$1"
b="$2"
runs="${3:-3}"
addr=127.0.0.1:18112
results=$(mktemp)
trap 'rm -f "$results"' EXIT

one() {
    local bin=$1 seed=$2 work pid token project key t0 t1 out n acked
    work=$(mktemp -d)
    start_bench_server "$bin" "$work"
    ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    t0=$(ticks)
    out=$("$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency 4 --duration 15s --seed "$seed")
    wait_for_index
    t1=$(ticks)
    n=$(stored_logs)
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

#!/usr/bin/env bash
# Single-log latency in the 10 s right after a batch flood (target: p99 ≤ 5 ms): on a fresh
# release server, `ledgerctl loadgen` floods 1,000-log batches from 4 connections for
# `flood-secs`, then at once sends single logs at 2,000 requests/s from 16 connections for
# 10 s, while the flood's sealing and indexing catch up. Repeats `runs` times on the same
# server (each flood adds to what it stores) and prints each run's single-log line and the
# median p99. Also runs the same single-log load on the quiet server first, for reference.
#
#   benches/http/flood.sh [flood-secs] [runs]      (defaults 15, 3)
#
# LEDGER_SINGLE_ARGS adds loadgen arguments to the single-log phases only, e.g.
# LEDGER_SINGLE_ARGS=--short-slice to tell the server's latency from the measuring tool's
# own waits for a core (a diagnostic; the figures of record are taken without it).
set -euo pipefail
cd "$(dirname "$0")/../.."
flood="${1:-15}"
runs="${2:-3}"
stored=0
addr=127.0.0.1:18006
# shellcheck source=benches/http/fill.sh
source benches/http/fill.sh

single() {
    "$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --mode single \
        --concurrency 16 --rate 2000 --duration 10s --seed "$1" ${LEDGER_SINGLE_ARGS:-} |
        grep -E "latency|logs/s"
}
p99() { grep "^latency" | grep -oE "p99 [0-9.]+" | awk '{print $2}'; }

echo "== quiet server: single logs at 2,000/s for 10 s"
single 1 | tee "$work/quiet"
for r in $(seq "$runs"); do
    echo "== run $r: flood ${flood}s (4 x 1,000-log batches), then single logs at once"
    "$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 1000 \
        --concurrency 4 --duration "${flood}s" --seed $((100 + r)) | grep -E "logs:" || true
    single $((200 + r)) | tee "$work/after-$r"
    p99 <"$work/after-$r" >>"$work/p99s"
    # Let the flood's backlog clear before the next run.
    sleep 20
done
echo "quiet p99: $(p99 <"$work/quiet") ms"
echo "after-flood p99s: $(tr '\n' ' ' <"$work/p99s")ms; median $(sort -n "$work/p99s" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms (target ≤ 5 ms)"

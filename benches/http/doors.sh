#!/usr/bin/env bash
# The front doors against native ingest, through HTTP: `ledgerctl loadgen` posts 1,000-log
# batches from 4 connections for 15 s through each door (native JSON, OTLP/HTTP protobuf,
# Elasticsearch `_bulk`, Loki snappy protobuf), each run on a fresh release server, three
# rounds in rotated order. Prints per run the acknowledged logs/s, the logs/s of its first
# four seconds, and the server's CPU per acknowledged log; then each door's medians and
# their ratio to native's.
#
#   benches/http/doors.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
cargo build --release -q -p ledger-server -p ledger-tools
work=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18111
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
run() {
    rm -rf "$work/data"
    target/release/ledger --data-dir "$work/data" --listen $addr >"$work/out" 2>"$work/log" &
    pid=$!
    for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
    local t0 t1 out
    t0=$(ticks)
    out=$(target/release/ledgerctl loadgen --url "http://$addr" --mode batch --protocol "$1" \
        --concurrency 4 --batch-size 1000 --duration "${secs}s")
    t1=$(ticks)
    kill $pid; wait $pid 2>/dev/null || true
    local logs per_s first4
    logs=$(echo "$out" | awk '/^logs:/ {print $2}')
    per_s=$(echo "$out" | awk '/^logs:/ {print $5}')
    # loadgen prints a line a second: the logs/s of the first four.
    first4=$(echo "$out" | awk '/^t=/ && n < 4 {for (i = 1; i <= NF; i++) if ($(i+1) == "logs/s") {s += $i; n++}} END {print (n ? int(s / n) : 0)}')
    local us
    us=$(python3 -c "print(round(($t1-$t0)/$(getconf CLK_TCK)/max(1,$logs)*1e6, 1))")
    echo "run $2 $1 logs/s $per_s first4s $first4 cpu_us_per_log $us" | tee -a "$work/results"
}
for r in 1 2 3; do
    case $r in
        1) order="native otlp es loki" ;;
        2) order="otlp es loki native" ;;
        3) order="es loki native otlp" ;;
    esac
    for p in $order; do run "$p" "$r"; done
done
python3 - "$work/results" <<'PY'
import statistics, sys
runs = {}
for l in open(sys.argv[1]):
    f = l.split()
    runs.setdefault(f[2], []).append((float(f[4]), float(f[6]), float(f[8])))
med = {p: [statistics.median(x[i] for x in v) for i in range(3)] for p, v in runs.items()}
base = med["native"]
for p in ["native", "otlp", "es", "loki"]:
    m = med[p]
    print(f"{p:7} median logs/s {m[0]:9.0f} ({m[0]/base[0]:.2f} of native)  first 4 s {m[1]:9.0f} ({m[1]/max(1,base[1]):.2f})  cpu/log {m[2]:.1f} us")
PY

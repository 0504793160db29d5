#!/usr/bin/env bash
# Resident memory of the release server (targets: ≤ 512 MiB while ingesting
# 50,000 logs/s; ≤ 1 GiB at 10 M stored logs, idle).
#
#   benches/memory.sh [stored-logs]      (default 10000000)
#
# 1. A fresh server takes 50,000 logs/s (100 batches of 500 a second) for 60 s; RSS is
#    sampled every second.
# 2. Ingest flat out until `stored-logs` are acknowledged; then 60 s idle, sampled.
# 3. SIGTERM, start again on the same data directory (rollups and memtables rebuilt), 30 s
#    idle, sampled.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stored="${1:-10000000}"
port=18411
cd "$root"
# LEDGER_BIN=<path> measures another build of the server (say, one with another allocator).
cargo build --release -p ledger-server -p ledger-tools
work="$(mktemp -d /tmp/ledger-memory.XXXXXX)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start_server() {
    "${LEDGER_BIN:-./target/release/ledger}" --data-dir "$work/data" --listen "127.0.0.1:$port" >> "$work/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server did not start" >&2
    exit 1
}

rss_mib() { awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status"; }

# Samples RSS once a second for $1 seconds into the file $2.
sample() {
    : > "$2"
    for _ in $(seq "$1"); do
        rss_mib >> "$2"
        echo >> "$2"
        sleep 1
    done
}

summary() {
    sort -n "$1" | awk '{ v[NR] = $1 } END { printf "median %d MiB, max %d MiB (%d samples)", v[int((NR + 1) / 2)], v[NR], NR }'
}

start_server
gen=(./target/release/ledgerctl loadgen --url "http://127.0.0.1:$port")

echo "== 1. ingesting 50,000 logs/s for 60 s"
sample 60 "$work/rss-ingest" &
sampler=$!
"${gen[@]}" --mode batch --rate 100 --batch-size 500 --concurrency 8 --duration 60s --seed 1 | tail -4
wait "$sampler"
echo "RSS while ingesting 50,000 logs/s: $(summary "$work/rss-ingest")"
echo "curve (MiB, every 5 s): $(awk 'NR % 5 == 0' "$work/rss-ingest" | tr '\n' ' ')"

echo "== 2. filling to $stored logs"
acked=$(( 100 * 500 * 60 ))
seed=2
while [ "$acked" -lt "$stored" ]; do
    left=$(( stored - acked ))
    secs=$(( left / 120000 + 5 ))
    out=$("${gen[@]}" --mode batch --concurrency 4 --batch-size 1000 --duration "${secs}s" --seed "$seed")
    n=$(echo "$out" | grep -oE 'logs: +[0-9]+ accepted' | grep -oE '[0-9]+')
    acked=$(( acked + n ))
    seed=$(( seed + 1 ))
    echo "  $acked acknowledged"
done
sample 60 "$work/rss-idle"
echo "RSS idle at $acked stored logs: $(summary "$work/rss-idle")"

echo "== 3. restart, idle"
kill -TERM "$pid"
wait "$pid" || true
t0=$(date +%s.%N)
start_server
echo "restart to /health answering: $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s"
sample 30 "$work/rss-restart"
echo "RSS idle after restart at $acked stored logs: $(summary "$work/rss-restart")"
du -sh "$work/data"

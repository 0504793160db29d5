#!/usr/bin/env bash
# Ledger's HTTP batch ingest against the classic design's PostgreSQL, in one run on one
# machine, with the same generated logs (target: ≥ 3 × the classic design in the same run,
# BENCHMARKS.md "The targets at a glance").
#
#   benches/classic/run.sh [logs-per-stream] [ledger-seconds]     (default 1000000, 15)
#
# Classic side: PostgreSQL 15 (initdb, postgres and psql on PATH; run as the `postgres`
# user when this runs as root), the table and indexes of schema.sql, and two `\copy … csv`
# streams at once, each of `logs-per-stream` logs from `ledgerctl generate`. The CSV files
# are written before the clock starts; the time is from the first COPY's start to the last
# one's end. Server settings are PostgreSQL's defaults but for shared_buffers = 4GB and
# max_wal_size = 16GB (so checkpoints do not dominate); fsync and synchronous_commit stay on.
#
# Ledger side: the release server on a fresh data directory, and `ledgerctl loadgen --mode
# batch` (4 × 1,000 logs in flight) for `ledger-seconds`; a log counts when its batch is
# acknowledged (202: durable, and searchable within the refresh interval).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
per="${1:-1000000}"
secs="${2:-15}"
port_pg=55432
port_ledger=18311

for t in initdb postgres psql pg_ctl; do
    command -v "$t" >/dev/null || { echo "classic: $t not found (install PostgreSQL 15)" >&2; exit 2; }
done

cd "$root"
cargo build --release -p ledger-server -p ledger-tools
work="$(mktemp -d /tmp/ledger-classic.XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$work"
    as_pg=(runuser -u postgres --)
fi
cleanup() {
    "${as_pg[@]}" pg_ctl -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    [ -n "${ledger_pid:-}" ] && kill "$ledger_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== generating 2 x $per logs"
./target/release/ledgerctl generate --count "$per" --seed 1 --format csv > "$work/a.csv"
./target/release/ledgerctl generate --count "$per" --seed 2 --format csv > "$work/b.csv"
json_bytes=$(( $(./target/release/ledgerctl generate --count "$per" --seed 1 | wc -c) \
    + $(./target/release/ledgerctl generate --count "$per" --seed 2 | wc -c) - 2 * per ))
chmod a+r "$work"/*.csv

echo "== PostgreSQL"
"${as_pg[@]}" initdb -D "$work/pg" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" pg_ctl -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $port_pg -k $work -c listen_addresses='' -c shared_buffers=4GB -c max_wal_size=16GB" start >/dev/null
pg=(psql -X -q -h "$work" -p "$port_pg" -U postgres -v ON_ERROR_STOP=1)
"${pg[@]}" -f "$here/schema.sql"
cols="timestamp,level,log_type,importance,message,error_type,error_message,stack_trace,service,source,environment,release,platform,language,trace_id,span_id,attributes,error_fingerprint"
start=$(date +%s.%N)
"${pg[@]}" -c "\\copy logs($cols) from '$work/a.csv' csv" &
a=$!
"${pg[@]}" -c "\\copy logs($cols) from '$work/b.csv' csv" &
b=$!
wait "$a" "$b"
end=$(date +%s.%N)
"${pg[@]}" -c "CHECKPOINT"
rows=$("${pg[@]}" -t -A -c "select count(*) from logs")
pg_bytes=$("${pg[@]}" -t -A -c "select pg_total_relation_size('logs')")
pg_rate=$(python3 -c "print(round($rows / ($end - $start)))")
echo "PostgreSQL: $rows logs in $(python3 -c "print(round($end - $start, 1))") s = $pg_rate logs/s;" \
    "$(python3 -c "print(round($pg_bytes / $json_bytes, 3))") bytes on disk per byte of JSON"
"${as_pg[@]}" pg_ctl -D "$work/pg" -m fast stop >/dev/null

echo "== Ledger"
./target/release/ledger --data-dir "$work/ledger" --listen "127.0.0.1:$port_ledger" > "$work/ledger.log" 2>&1 &
ledger_pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port_ledger/health" >/dev/null 2>&1 && break
    sleep 0.1
done
./target/release/ledgerctl loadgen --url "http://127.0.0.1:$port_ledger" --mode batch \
    --concurrency 4 --batch-size 1000 --duration "${secs}s" | tee "$work/loadgen.txt"
ledger_rate=$(grep -oE 'accepted = [0-9]+ logs/s' "$work/loadgen.txt" | grep -oE '[0-9]+')
echo
echo "| figure | classic (PostgreSQL) | Ledger | ratio |"
echo "| --- | --- | --- | --- |"
echo "| ingest, logs/s | $pg_rate | $ledger_rate | $(python3 -c "print(round($ledger_rate / $pg_rate, 2))") × (target ≥ 3 ×) |"

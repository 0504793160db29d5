#!/usr/bin/env bash
# Ledger's HTTP batch ingest against the classic design's PostgreSQL, in one run on one
# machine, with the same generated logs (target: ≥ 3 × the classic design in the same run,
# BENCHMARKS.md "The targets at a glance").
#
#   benches/classic/run.sh [logs-per-stream]     (default 1000000)
#
# Classic side: PostgreSQL 15 (initdb, postgres and psql on PATH; run as the `postgres`
# user when this runs as root), the table and indexes of schema.sql, and two `\copy … csv`
# streams at once, each of `logs-per-stream` logs from `ledgerctl generate`. The CSV files
# are written before the clock starts; the time is from the first COPY's start to the last
# one's end. Server settings are PostgreSQL's defaults but for shared_buffers = 4GB and
# max_wal_size = 16GB (so checkpoints do not dominate); fsync and synchronous_commit stay on.
#
# Ledger side: the release server on a fresh data directory, fed the same two streams of
# logs (as NDJSON, read into memory before the clock starts) by `ledgerctl loadgen --file`,
# 1,000-log batches, 4 in flight, each log sent once (a refused batch is sent again after
# 100 ms). The time is from the first request to the moment the search index holds the last
# log (`ledger_index_lag` 0 on /metrics, polled every 0.1 s), so both sides are timed until
# the logs are durable and searchable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
per="${1:-1000000}"
port_pg=55432
addr=127.0.0.1:18311
# shellcheck source=benches/http/server.sh
source "$root/benches/http/server.sh"

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
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== generating 2 x $per logs"
./target/release/ledgerctl generate --count "$per" --seed 1 --format csv > "$work/a.csv"
./target/release/ledgerctl generate --count "$per" --seed 2 --format csv > "$work/b.csv"
./target/release/ledgerctl generate --count "$per" --seed 1 > "$work/a.ndjson"
./target/release/ledgerctl generate --count "$per" --seed 2 > "$work/b.ndjson"
json_bytes=$(( $(cat "$work"/*.ndjson | wc -c) - 2 * per ))
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
start_bench_server ./target/release "$work"
./target/release/ledgerctl loadgen --url "http://$addr" --key "$key" --mode batch \
    --concurrency 4 --batch-size 1000 --duration 30m \
    --file "$work/a.ndjson" --file "$work/b.ndjson" | tee "$work/loadgen.txt"
sent_end=$(date +%s.%N)
wait_for_index 0.1 3000
searchable=$(date +%s.%N)
[ "${lag:-1}" = "0" ] || { echo "classic: the index did not catch up in 300 s" >&2; exit 1; }
stored=$(stored_logs)
[ "$stored" = "$rows" ] || { echo "classic: Ledger stored $stored logs, PostgreSQL $rows" >&2; exit 1; }
send_secs=$(grep -oE 'accepted \(202\) in [0-9.]+s' "$work/loadgen.txt" | grep -oE '[0-9.]+s$' | tr -d s)
ledger_secs=$(python3 -c "print($send_secs + $searchable - $sent_end)")
ledger_rate=$(python3 -c "print(round($stored / $ledger_secs))")
echo "Ledger: $stored logs acknowledged in $send_secs s, all searchable after $(python3 -c "print(round($ledger_secs, 1))") s = $ledger_rate logs/s"
echo
echo "| figure | classic (PostgreSQL) | Ledger | ratio |"
echo "| --- | --- | --- | --- |"
echo "| ingest of the same $rows logs until searchable, logs/s | $pg_rate | $ledger_rate | $(python3 -c "print(round($ledger_rate / $pg_rate, 2))") × (target ≥ 3 ×) |"

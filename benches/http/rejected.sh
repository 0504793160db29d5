#!/usr/bin/env bash
# What keeping refused items costs accepted logs, through HTTP: wrk posts the same NDJSON
# batch with no backoff from 8 connections, (A) 500 valid logs, (B) the same 500 valid logs
# plus 500 refused ones (an unknown field each), so every B request writes 500 items to the
# rejected-logs list. Three 15 s runs each, alternating; prints the medians of accepted
# logs/s, the rejected-list writer thread's share of the server's CPU, and the bytes it
# dropped. Needs wrk.
#
#   benches/http/rejected.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p ledger-server -p ledger-tools
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18006
target/release/ledger --listen $addr --data-dir "$work/data" --pbkdf2-iterations 10000 \
    >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
api() { curl -sf -X "$1" "http://$addr$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
token=$(api POST /api/v1/auth/register "" '{"email":"r@example.com","password":"correct horse battery"}' | field token)
project=$(api POST /api/v1/projects "$token" '{"name":"r","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | field id)
key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"r","scopes":["ingest","query"]}' | field key)

target/release/ledgerctl generate --count 1000 --seed 11 >"$work/all.ndjson"
head -500 "$work/all.ndjson" >"$work/a.ndjson"
python3 - "$work/all.ndjson" "$work/b.ndjson" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
with open(sys.argv[2], "w") as out:
    for i, l in enumerate(lines):
        if i >= 500:
            d = json.loads(l); d["nope"] = i; l = json.dumps(d)
        out.write(l + "\n")
PY
cpu() { awk '{print $14 + $15}' "$1"; }
writer_ticks() {
    for t in /proc/$pid/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = ledger-rejected ]; then cpu "$t/stat"; fi
    done | awk '{s+=$1} END {print s+0}'
}
export LEDGER_KEY="$key" LEDGER_BATCH_LOGS=500
for rep in 1 2 3; do
    for body in a b; do
        w0=$(writer_ticks); p0=$(cpu /proc/$pid/stat)
        r=$(LEDGER_BATCH="$work/$body.ndjson" wrk -t2 -c8 -d"${secs}s" --timeout 30s \
            -s benches/http/post.lua "http://$addr/api/v1/ingest/batch" | grep '^wrk:')
        w1=$(writer_ticks); p1=$(cpu /proc/$pid/stat)
        echo "run $rep $body $r writer_cpu_share $(python3 -c "print(round(($w1-$w0)/max(1,$p1-$p0)*100, 2))")%" | tee -a "$work/results"
    done
done
python3 - "$work/results" <<'PY'
import re, statistics, sys
acc = {"a": [], "b": []}; share = []
for l in open(sys.argv[1]):
    m = re.match(r"run \d+ (\w) wrk: .* acked (\d+) logs/s writer_cpu_share ([\d.]+)%", l)
    if m:
        acc[m[1]].append(int(m[2]))
        if m[1] == "b": share.append(float(m[3]))
a, b = statistics.median(acc["a"]), statistics.median(acc["b"])
print(f"\nmedian accepted logs/s: A (500 valid) {a:.0f}, B (500 valid + 500 refused) {b:.0f}, B/A {b/a:.2f}")
print(f"rejected-list writer thread: median {statistics.median(share):.2f}% of the server's CPU during B")
PY
echo "dropped: $(curl -s http://$addr/metrics | grep '^ledger_rejected_dropped_bytes_total')"
echo "rejected.redb: $(du -h "$work/data/rejected.redb" | cut -f1)"

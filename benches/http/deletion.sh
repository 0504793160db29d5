#!/usr/bin/env bash
# Deleting 1 % of N stored logs by query, through HTTP, while ingest goes on: fills a fresh
# release server with N generated logs (1 % of them `critical`), measures ingest at 20,000
# logs/s on the idle server (`ledgerctl loadgen`, 100-log batches at 200 requests/s, 30 s),
# then starts `POST /deletions {"level": "critical"}` and the same ingest at once, and
# reports how long the deletion took, what it removed, and the ingest latency meanwhile
# (over the first `ingest-secs` of it: keep that below the deletion's duration, so that the
# figure covers the deletion's work only; loadgen prints a line a second to see each step).
#
#   benches/http/deletion.sh [stored-logs] [ingest-secs]    (defaults 10000000, 100)
set -euo pipefail
cd "$(dirname "$0")/../.."
stored="${1:-10000000}"
during="${2:-100}"
addr=127.0.0.1:18005
# shellcheck source=benches/http/fill.sh
source benches/http/fill.sh

ingest() {
    "$bin"/ledgerctl loadgen --url "http://$addr" --key "$key" --batch-size 100 \
        --concurrency 8 --rate 200 --duration "$1" --seed "$2"
}
critical=$(api GET "/api/v1/logs?level=critical&limit=1" "$key" >/dev/null; \
    curl -s "http://$addr/api/v1/metrics/log-volume?hours=48&bucket=1d" -H "Authorization: Bearer $key" |
    python3 -c 'import json,sys; print(sum(b["by_level"]["critical"] for b in json.load(sys.stdin)["buckets"]))')
echo "== $n logs stored, $critical of them critical"

# Let the fill's last index merges finish before measuring the idle server: wait until the
# server has used under 5 % of a core for 5 s running (a fixed 30 s was not always enough).
quiet() {
    local a b
    for _ in $(seq 120); do
        a=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        sleep 5
        b=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        [ $((b - a)) -lt 25 ] && return
    done
}
quiet
echo "== idle server: ingest at 20,000 logs/s for 30 s"
ingest 30s 900001 | grep -E "latency|logs/s|refused" || true

echo "== the deletion, with the same ingest going on"
t0=$(date +%s.%N)
id=$(api POST "/api/v1/projects/$project/deletions" "$token" '{"level": "critical"}' | field id)
ingest "${during}s" 900002 >"$work/during" &
ingest_pid=$!
while :; do
    d=$(api GET "/api/v1/projects/$project/deletions/$id" "$token")
    state=$(echo "$d" | field state)
    [ "$state" != running ] && break
    sleep 0.2
done
t1=$(date +%s.%N)
echo "deletion $state: $(echo "$d" | field deleted) logs in $(python3 -c "print(round($t1 - $t0, 1))") s"
wait $ingest_pid
echo "ingest during the deletion ($during s from its start):"
grep -E "latency|logs/s|refused" "$work/during" || cat "$work/during"
left=$(curl -s "http://$addr/api/v1/logs?level=critical&limit=1" -H "Authorization: Bearer $key" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["logs"]))')
echo "critical logs left from before the deletion's start: see /logs (newest page holds $left; later ones are untouched by design)"
echo "where the deletion spent its time (server log):"
grep -E "\"deletion (finished|recount)" "$work/log" | tail -3 || true

#!/usr/bin/env bash
# Object storage (issue 16) against Moto's S3 server on this machine, through the release
# binaries: upload throughput, warm vs cold (from the bucket) query latency, rebuild time.
#
#   benches/http/object_store.sh [stored-logs]        (default 10000000)
#
# 1. Fills a writer without a bucket to N logs (`ledgerctl loadgen`), stops it (SIGTERM:
#    everything sealed), restarts it on the same directory with --object-store: its first
#    round uploads every segment, the catalog and the metadata. Upload throughput = bytes and
#    logs in the manifest / time from serving (engine open done) to the first manifest.
# 2. Starts a fresh writer on an empty directory with the same bucket: rebuild time = time
#    to "listening" (download + open), and to a search index that has caught up.
# 3. Latency of 20 distinct queries (each its own twentieth of the stored time range, so no
#    block is cached by a previous one), once on a reader whose cache holds every segment (warm, second pass) and
#    once on a reader with --cache-size-mb 1 after eviction (cold: every block from the
#    bucket by byte range). Prints medians and the ratio.
# Needs moto_server (pip install 'moto[server]').
set -euo pipefail
cd "$(dirname "$0")/../.."
stored="${1:-10000000}"
command -v moto_server >/dev/null || { echo "needs moto_server: pip install 'moto[server]'" >&2; exit 1; }
s3port=18090
moto_server -H 127.0.0.1 -p $s3port >/dev/null 2>&1 &
moto=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$s3port/" >/dev/null && break; sleep 0.2; done
curl -sf -X PUT "http://127.0.0.1:$s3port/bench" >/dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3port AWS_ALLOW_HTTP=true
url=s3://bench/w

addr=127.0.0.1:18091
# shellcheck source=benches/http/fill.sh
source benches/http/fill.sh
trap 'kill $pid $moto ${r1:-} ${r2:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
kill -TERM $pid; wait $pid || true
seg_bytes=$(du -sb "$work/data/segments" | cut -f1)
echo "== $n logs, $seg_bytes bytes of segments"

start_server() { # dir addr flags... ; sets $spid, waits for "listening"
    local dir=$1 a=$2; shift 2
    rm -f "$dir.out"
    target/release/ledger --listen "$a" --data-dir "$dir" --object-store $url "$@" >"$dir.out" 2>>"$dir.log" &
    spid=$!
    for _ in $(seq 6000); do grep -q listening "$dir.out" 2>/dev/null && return; sleep 0.05; done
    echo "server on $dir did not start" >&2; exit 1
}
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1==m{print $2}'; }

echo "== 1. upload: the writer restarted with --object-store uploads everything"
start_server "$work/data" $addr
t0=$(date +%s.%N)
pid=$spid
until awk -v g="$(metric $addr ledger_object_store_manifest_generation)" 'BEGIN{exit !(g >= 1)}'; do sleep 0.2; done
t1=$(date +%s.%N)
up=$(metric $addr ledger_object_store_uploaded_bytes_total)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); b=float(sys.argv[3]); n=float(sys.argv[4]); print(f'upload: {b/1e6:.0f} MB in {s:.1f} s = {b/1e6/s:.1f} MB/s, {n/s:,.0f} logs/s')" "$t0" "$t1" "$up" "$n"
kill -TERM $pid; wait $pid || true

echo "== 2. rebuild: a fresh writer on an empty directory"
t0=$(date +%s.%N)
start_server "$work/fresh" $addr
pid=$spid
t1=$(date +%s.%N)
for _ in $(seq 6000); do [ "$(metric $addr ledger_index_lag)" = "0" ] && break; sleep 0.2; done
t2=$(date +%s.%N)
python3 -c "import sys; a,b,c=map(float,sys.argv[1:4]); print(f'rebuild: serving after {b-a:.1f} s (download, open, index rebuilt from segments), index caught up after {c-a:.1f} s')" "$t0" "$t1" "$t2"
got=$(api GET "/api/v1/metrics/usage-stats?days=1" "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["today"]["logs"])')
echo "rebuilt writer counts $got logs today (filled $n); the key from before works"
kill -TERM $pid; wait $pid || true

echo "== 3. warm vs cold queries on readers"
start_server "$work/r1" 127.0.0.1:18092 --role reader
r1=$spid
start_server "$work/r2" 127.0.0.1:18093 --role reader --cache-size-mb 1
r2=$spid
sleep 4 # the cold reader's first follow round evicts
echo "cold reader keeps $(metric 127.0.0.1:18093 ledger_segment_local_bytes) bytes of segments locally"
# 20 windows across the stored logs' time range, each its own blocks.
edge() { curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:18092/api/v1/logs?limit=1&order=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["logs"][0]["timestamp"])'; }
oldest=$(edge asc) newest=$(edge desc)
queries() {
    python3 - "$oldest" "$newest" <<'PY'
import sys, datetime as dt
p = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
a, b = p(sys.argv[1]), p(sys.argv[2])
step = (b - a) / 20
for i in range(20):
    f = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"/api/v1/logs?start_time={f(a + step * i)}&end_time={f(a + step * (i + 1))}&level=error&limit=100")
PY
}
lat() { # addr -> median ms of the 20 queries
    queries | while read -r q; do
        curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $key" "http://$1$q"
    done | sort -n | awk '{a[NR]=$1} END{printf "%.2f", a[int((NR+1)/2)]*1000}'
}
lat 127.0.0.1:18092 >/dev/null # first pass warms the page cache and block cache
warm=$(lat 127.0.0.1:18092)
cold=$(lat 127.0.0.1:18093)
python3 -c "import sys; w,c=map(float,sys.argv[1:3]); print(f'/logs level=error, 100, 20 distinct time windows: warm median {w:.2f} ms, cold (from the bucket) median {c:.2f} ms, ratio {c/w:.1f}x')" "$warm" "$cold"

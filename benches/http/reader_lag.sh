#!/usr/bin/env bash
# How soon a reader serves what a writer sealed (issue 16: "picks up new segments within
# 10 s"), through the release binaries and Moto's S3 server: a writer with --seal-age-secs 1
# and the default --upload-interval-secs (5), a reader with the default
# --follow-interval-secs (2). Posts one log at a time and times, from its 202, until the
# reader returns it, 10 times; prints each figure, the median and the worst.
#   benches/http/reader_lag.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v moto_server >/dev/null || { echo "needs moto_server: pip install 'moto[server]'" >&2; exit 1; }
cargo build --release -q -p ledger-server
work=$(mktemp -d)
s3port=18190
moto_server -H 127.0.0.1 -p $s3port >/dev/null 2>&1 &
moto=$!
trap 'kill $moto ${w:-} ${r:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$s3port/" >/dev/null && break; sleep 0.2; done
curl -sf -X PUT "http://127.0.0.1:$s3port/lag" >/dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3port AWS_ALLOW_HTTP=true
start() { # name addr flags...
    local d="$work/$1" a=$2; shift 2
    target/release/ledger --listen "$a" --data-dir "$d" --object-store s3://lag/w "$@" >"$d.out" 2>"$d.log" &
    for _ in $(seq 600); do grep -q listening "$d.out" 2>/dev/null && return; sleep 0.1; done
}
start w 127.0.0.1:18191 --seal-age-secs 1; w=$!
api() { curl -sf -X "$1" "http://127.0.0.1:18191$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
token=$(api POST /api/v1/auth/register "" '{"email":"lag@example.com","password":"correct horse battery"}' | field token)
project=$(api POST /api/v1/projects "$token" '{"name":"lag"}' | field id)
key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"k","scopes":["ingest","query"]}' | field key)
api POST /api/v1/ingest/single "$key" "{\"timestamp\":\"$(date -u +%FT%T.%3NZ)\",\"level\":\"info\",\"log_type\":\"logger\",\"importance\":\"standard\",\"message\":\"warm-up\"}" >/dev/null
sleep 8
start r 127.0.0.1:18192 --role reader; r=$!
sleep 3
for i in $(seq 10); do
    id=$(api POST /api/v1/ingest/single "$key" "{\"timestamp\":\"$(date -u +%FT%T.%3NZ)\",\"level\":\"info\",\"log_type\":\"logger\",\"importance\":\"standard\",\"message\":\"probe $i\"}" | field id)
    t0=$(date +%s.%N)
    until curl -sf -o /dev/null -H "Authorization: Bearer $key" "http://127.0.0.1:18192/api/v1/logs/$id"; do sleep 0.05; done
    python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.2f}')" "$t0"
    sleep "0.$((RANDOM % 10))"
done | sort -n | awk '{a[NR]=$1; print "  " $1 " s"} END{printf "median %.2f s, worst %.2f s (seal 1 s + upload interval 5 s + follow interval 2 s at most, plus the transfers)\n", (a[5]+a[6])/2, a[NR]}'

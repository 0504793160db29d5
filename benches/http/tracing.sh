#!/usr/bin/env bash
# What Ledger's own tracing costs, through HTTP: the same release binary without and with
# --otel-endpoint (spans exported to a local OTLP/HTTP sink that answers 200), measured
# with wrk on a cheap authenticated route (GET /api/v1/queue/depth, 8 connections) and
# with `ledgerctl loadgen` batch ingest (1,000-log batches, 4 connections); three 15 s
# runs each, alternating; prints the medians. LEDGER_BIN_BEFORE=<path> adds a third
# binary (e.g. one built before tracing) run the same way, without the flag.
#
#   benches/http/tracing.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p ledger-server -p ledger-tools
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - >"$work/sink.out" 2>&1 <<'PY' &
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", 18099), H).serve_forever()
PY
pids+=($!)
variants=("off target/release/ledger" "on target/release/ledger --otel-endpoint http://127.0.0.1:18099")
[ -n "${LEDGER_BIN_BEFORE:-}" ] && variants+=("before $LEDGER_BIN_BEFORE")
port=18010
declare -A addr key
for v in "${variants[@]}"; do
    name=${v%% *}; cmd=${v#* }
    mkdir -p "$work/$name"
    # shellcheck disable=SC2086
    $cmd --listen 127.0.0.1:$port --data-dir "$work/$name/data" --pbkdf2-iterations 10000 \
        >"$work/$name/out" 2>"$work/$name/log" &
    pids+=($!)
    for _ in $(seq 100); do grep -q listening "$work/$name/out" 2>/dev/null && break; sleep 0.1; done
    a=127.0.0.1:$port
    api() { curl -sf -X "$1" "http://$a$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
    field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
    t=$(api POST /api/v1/auth/register "" '{"email":"t@example.com","password":"correct horse battery"}' | field token)
    p=$(api POST /api/v1/projects "$t" '{"name":"t","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | field id)
    addr[$name]=$a
    key[$name]=$(api POST "/api/v1/projects/$p/keys" "$t" '{"name":"t","scopes":["ingest","query"]}' | field key)
    port=$((port + 1))
done
for rep in 1 2 3; do
    for v in "${variants[@]}"; do
        name=${v%% *}
        r=$(wrk -t2 -c8 -d"${secs}s" --latency -H "Authorization: Bearer ${key[$name]}" \
            "http://${addr[$name]}/api/v1/queue/depth" | awk '/Requests\/sec/{print $2} / 99%/{p=$2} END{print p}' | tr '\n' ' ')
        l=$(target/release/ledgerctl loadgen --url "http://${addr[$name]}" --key "${key[$name]}" \
            --batch-size 1000 --concurrency 4 --duration "${secs}s" | awk '/^logs:/{print $5}')
        echo "run $rep $name query_rps_p99 $r ingest_logs_s $l" | tee -a "$work/results"
    done
done
python3 - "$work/results" <<'PY'
import statistics, sys
runs = {}
for l in open(sys.argv[1]):
    f = l.split()
    runs.setdefault(f[2], []).append((float(f[4]), f[5], float(f[7])))
print("\nmedians: variant, GET /queue/depth req/s, its p99, batch ingest logs/s")
base = None
for name, rs in runs.items():
    q = statistics.median(r[0] for r in rs); i = statistics.median(r[2] for r in rs)
    p99 = sorted(r[1] for r in rs)[1]
    base = base or (q, i)
    print(f"{name:7} {q:9.0f} req/s ({q/base[0]:.2f})  p99 {p99:>8}  {i:8.0f} logs/s ({i/base[1]:.2f})")
PY
echo "spans received by the sink: see the 'on' server's /metrics for requests; sink log: $(wc -c <"$work/sink.out") bytes"

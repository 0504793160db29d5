# Sourced by the HTTP benches. `start_bench_server BIN WORK [FLAGS...]` starts BIN/ledger on $addr
# with its data directory, output and log in WORK, waits until it listens, and makes an
# account (q@example.com), a project with raised rate limits and quota (so that only
# capacity refuses) and a key with the ingest and query scopes. Sets $pid, $token, $project
# and $key.
api() { curl -sf -X "$1" "http://$addr$2" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

start_bench_server() {
    local bin=$1 work=$2
    shift 2
    "$bin"/ledger --listen "$addr" --data-dir "$work/data" "$@" >"$work/out" 2>"$work/log" &
    pid=$!
    for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
    token=$(api POST /api/v1/auth/register "" '{"email":"q@example.com","password":"correct horse battery"}' | field token)
    project=$(api POST /api/v1/projects "$token" '{"name":"q","rate_limit_per_minute":100000000,"rate_limit_per_hour":1000000000,"daily_quota":1000000000000}' | field id)
    key=$(api POST "/api/v1/projects/$project/keys" "$token" '{"name":"q","scopes":["ingest","query"]}' | field key)
}

# `wait_for_index [step] [tries]`: polls /metrics every `step` seconds (0.5), at most `tries`
# times (240, so 120 s), until the search index has every stored log; leaves the last
# reading in $lag (0 once caught up).
wait_for_index() {
    local step=${1:-0.5} tries=${2:-240}
    for _ in $(seq "$tries"); do
        lag=$(curl -s "http://$addr/metrics" | awk '/^ledger_index_lag /{print $2}')
        [ "${lag:-1}" = "0" ] && break
        sleep "$step"
    done
}

# The logs stored today in $key's project.
stored_logs() {
    api GET "/api/v1/metrics/usage-stats?days=1" "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["today"]["logs"])'
}
